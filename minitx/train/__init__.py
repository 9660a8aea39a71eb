"""Training: ``Trainer`` + ``TrainingArguments`` (trainer.py, arguments.py), checkpoints, metrics."""
