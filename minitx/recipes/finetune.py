"""Fine-tune a pretrained BERT on a sentence(-pair) task: a GLUE task from TSV files, or the built-in one.

Devlin et al. (2019) §4.1: put a linear classifier on the pooled [CLS] vector and train everything end to end
with a small learning rate for a few epochs. Works from a minitx pretraining run (``minitx pretrain``) or a real
HF checkpoint such as all-MiniLM-L6-v2.

The built-in task needs no download: **real vs word-shuffled sentences**. Half of the held-out corpus sentences
keep their word order (label 1), half have their words shuffled (label 0). Word order is exactly what a
bag-of-words model cannot see, so beating the majority baseline shows the encoder learnt something about syntax.
"""
import os
from dataclasses import dataclass

import numpy as np

import minitx
from minitx import distributed
from minitx.data.glue import InputExample, encode_examples, task_info
from minitx.models.bert import BertConfig, BertForSequenceClassification, BertModel
from minitx.models.hf_io import read_config
from minitx.tokenizers import WordPieceTokenizer
from minitx.train.arguments import TrainingArguments
from minitx.train.metrics import glue_compute_metrics, majority_baseline
from minitx.train.trainer import Trainer
from minitx.viz.curves import plot_training_curves


@dataclass
class FinetuneSettings:
    num_train_epochs: float = 3.0
    max_steps: int = -1
    batch_size: int = 32
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.1
    max_length: int = 64
    dropout: float = None         # hidden and attention dropout; None keeps the checkpoint's (0 turns it off)
    logging_steps: int = 1        # train loss and learning rate every N steps (1: the curve starts at step 1)
    save_steps: int = None        # a checkpoint every N steps (None: only when interrupted)
    seed: int = 0


def shuffled_sentence_task(sentences: list, seed: int = 0) -> list:
    """``InputExample``s (as the GLUE loaders give): label 1 = the sentence as written, 0 = its words shuffled.

    Sentences whose shuffle happens to equal the original are skipped, so every label is true.
    """
    rng = np.random.default_rng(seed)
    examples = []
    for i, sentence in enumerate(sentences):
        words = sentence.split()
        if len(words) < 4:
            continue
        if i % 2 == 0:
            examples.append(InputExample(f"real-{i}", sentence, None, 1))
            continue
        shuffled = list(words)
        rng.shuffle(shuffled)
        if shuffled != words:
            examples.append(InputExample(f"shuffled-{i}", " ".join(shuffled), None, 0))
    return examples


def load_classifier(model_dir: str, num_labels: int, dropout: float = None) -> BertForSequenceClassification:
    """A sequence classifier whose encoder comes from ``model_dir`` (any BERT checkpoint) and whose head is new;
    ``dropout`` replaces the checkpoint's hidden and attention dropout when given."""
    overrides = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    config = BertConfig.from_dict({**read_config(model_dir), "num_labels": num_labels,
                                   "problem_type": "regression" if num_labels == 1 else None, **overrides})
    model = BertForSequenceClassification(config)
    model.bert.load_state_dict(BertModel.from_pretrained(model_dir).state_dict())
    return model


def finetune(model_dir: str, train_examples: list, eval_examples: list, output_dir: str, task: str = "sst2",
             settings: FinetuneSettings = FinetuneSettings(), disable_tqdm: bool = False,
             resume_from_checkpoint=None) -> dict:
    """Train a classifier on ``train_examples`` and report ``task``'s GLUE metrics on ``eval_examples``."""
    s = settings
    info = task_info(task)
    minitx.manual_seed(s.seed)
    tokenizer = WordPieceTokenizer.from_pretrained(model_dir)
    model = load_classifier(model_dir, info.num_labels, s.dropout)
    train_set = encode_examples(train_examples, tokenizer, s.max_length, task)
    eval_set = encode_examples(eval_examples, tokenizer, s.max_length, task)
    args = TrainingArguments(output_dir=output_dir, num_train_epochs=s.num_train_epochs, max_steps=s.max_steps,
                             per_device_train_batch_size=distributed.per_rank_batch_size(s.batch_size), per_device_eval_batch_size=64,
                             learning_rate=s.learning_rate, weight_decay=0.01, warmup_ratio=s.warmup_ratio,
                             logging_steps=s.logging_steps, seed=s.seed, disable_tqdm=disable_tqdm, plot=False,
                             save_steps=s.save_steps)

    def compute_metrics(prediction):
        logits = prediction.predictions
        preds = logits[:, 0] if info.num_labels == 1 else logits.argmax(-1)
        return glue_compute_metrics(task, preds, prediction.label_ids[0])

    trainer = Trainer(model, args, train_dataset=train_set, eval_dataset=eval_set, compute_metrics=compute_metrics,
                      data_collator=None)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    metrics = trainer.evaluate()
    # after the last evaluation, so its point is on the plot
    plot_training_curves(trainer.log_history, smoothing=0.9, title=f"fine-tuning on {task}: loss (eval: points)",
                         path=os.path.join(output_dir, "curves.png"))
    trainer.save_model(os.path.join(output_dir, "model"), tokenizer)
    majority = majority_baseline([ex.label for ex in eval_examples]) if info.num_labels > 1 else None
    return {**metrics, "majority_baseline": majority, "train_examples": len(train_set),
            "eval_examples": len(eval_set), "model_dir": os.path.join(output_dir, "model")}

