"""Training: metrics (and, later, the Trainer, checkpoints and callbacks)."""
