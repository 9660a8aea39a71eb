"""Pretrain a small BERT from raw text: WordPiece vocab -> MLM + NSP instances -> Trainer.

The recipe of Devlin et al. (2019), §3.1 and appendix A, at laptop scale:

1. train a WordPiece vocabulary on the corpus sentences (``minitx.tokenizers.train_wordpiece``);
2. hold out 10% of the documents; build masked-LM + next-sentence pairs from the rest with masks redrawn
   every epoch (``DynamicMaskingDataset``) and from the held-out ones with fixed masks;
3. train ``BertForPreTraining`` with AdamW + linear warm-up/decay; loss = MLM cross-entropy + NSP cross-entropy;
4. report MLM accuracy on the held-out masks against the *unigram baseline* (always guessing the most frequent
   training token), and NSP accuracy against the majority class.
"""
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

import minitx
from minitx import distributed
from minitx.reference import log_softmax_forward
from minitx.data.pretraining import IGNORE_INDEX, DynamicMaskingDataset, PretrainingConfig, StaticMaskingDataset
from minitx.models.bert import BertConfig, BertForPreTraining
from minitx.tokenizers import train_wordpiece
from minitx.train.arguments import TrainingArguments
from minitx.train.metrics import majority_baseline
from minitx.train.trainer import Trainer
from minitx.viz.curves import plot_training_curves


@dataclass
class BertPretrainingSettings:
    """Sizes for a model that learns something in a few minutes on two CPU cores."""

    vocab_size: int = 2000
    max_seq_length: int = 64
    hidden_size: int = 96
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 192
    position_embedding_type: str = "absolute"  # BERT's learned position vectors, or "alibi" (BertConfig)
    alibi_slopes: tuple = None    # with "alibi": one slope per head (None: the paper's geometric sequence)
    max_steps: int = 600
    batch_size: int = 32
    learning_rate: float = 2e-3   # 1e-3 learns the unigram distribution and stalls there within 300 steps
    warmup_ratio: float = 0.06
    dupe_factor: int = 2
    train_masked_lm_prob: float = 0.15  # share of the training tokens masked (held-out: always 0.15, BERT's)
    eval_fraction: float = 0.1
    dropout: float = 0.1          # hidden and attention dropout (0 turns both off)
    logging_steps: int = 1        # train loss and learning rate every N steps (1: the curve starts at step 1)
    eval_steps: int = None        # evaluate on the held-out set every N steps too, and keep the best weights
                                  # (None: evaluate before and after only)
    save_steps: int = None        # a checkpoint every N steps (None: only when interrupted)
    seed: int = 0


def split_documents(documents: list, eval_fraction: float, seed: int) -> tuple:
    """(train documents, held-out documents), split by document so no sentence leaks across."""
    order = np.random.default_rng(seed).permutation(len(documents))
    n_eval = max(1, int(round(eval_fraction * len(documents))))
    held_out = set(order[:n_eval].tolist())
    return ([d for i, d in enumerate(documents) if i not in held_out],
            [d for i, d in enumerate(documents) if i in held_out])


def masking_configs(s: BertPretrainingSettings) -> tuple:
    """(training, held-out) data configs. The held-out set masks BERT's 15% once (dupe_factor 1), so accuracies
    compare across settings; training masks ``train_masked_lm_prob`` of the tokens, with room for that many
    predictions per sequence (a higher rate gives more MLM signal per step: Wettig et al., 2022, "Should You Mask
    15% in Masked Language Modeling?")."""
    def config(prob: float, dupe_factor: int) -> PretrainingConfig:
        return PretrainingConfig(max_seq_length=s.max_seq_length, dupe_factor=dupe_factor, masked_lm_prob=prob,
                                 max_predictions_per_seq=max(1, round(prob * s.max_seq_length)))
    return config(s.train_masked_lm_prob, s.dupe_factor), config(0.15, 1)


def mlm_nsp_predictions(predictions, batch) -> tuple:
    """Keep only what the metrics need instead of the (B, L, V) logits: MLM argmax (B, L), NSP argmax (B,),
    and each row's MLM negative log-likelihood summed over its masked positions, and its NSP one (B,)."""
    mlm_logits, nsp_logits = predictions
    labels, nsp_labels = batch["labels"], batch["next_sentence_label"]
    mlm_logp = log_softmax_forward(mlm_logits)                                      # (B, L, V)
    picked = np.take_along_axis(mlm_logp, np.maximum(labels, 0)[..., None], -1)[..., 0]
    mlm_nll = -(picked * (labels != IGNORE_INDEX)).sum(-1)                          # (B,)
    nsp_nll = -np.take_along_axis(log_softmax_forward(nsp_logits), nsp_labels[:, None], -1)[:, 0]
    return mlm_logits.argmax(-1), nsp_logits.argmax(-1), mlm_nll, nsp_nll


def mlm_nsp_metrics(prediction) -> dict:
    """MLM loss and accuracy over the masked positions, NSP loss and accuracy over the pairs."""
    mlm_pred, nsp_pred, mlm_nll, nsp_nll = prediction.predictions
    labels, nsp_labels = prediction.label_ids
    masked = labels != IGNORE_INDEX
    return {"mlm_loss": float(mlm_nll.sum() / masked.sum()), "nsp_loss": float(nsp_nll.mean()),
            "mlm_accuracy": float((mlm_pred[masked] == labels[masked]).mean()),
            "nsp_accuracy": float((nsp_pred == nsp_labels).mean())}


def unigram_baseline(train_dataset, eval_dataset) -> float:
    """MLM accuracy of always predicting the most frequent masked-out token of the training set."""
    counts = Counter()
    for i in range(min(len(train_dataset), 2000)):
        labels = np.asarray(train_dataset[i]["labels"])
        counts.update(labels[labels != IGNORE_INDEX].tolist())
    most_common = counts.most_common(1)[0][0]
    eval_labels = np.concatenate([np.asarray(eval_dataset[i]["labels"]) for i in range(len(eval_dataset))])
    eval_labels = eval_labels[eval_labels != IGNORE_INDEX]
    return float((eval_labels == most_common).mean())


def pretrain_bert(documents: list, output_dir: str, settings: BertPretrainingSettings = BertPretrainingSettings(),
                  tokenizer=None, disable_tqdm: bool = False,
                  resume_from_checkpoint=None) -> dict:
    """Run the recipe; the model and tokenizer are saved to ``output_dir/model``. Returns the results dict."""
    s = settings
    minitx.manual_seed(s.seed)
    train_docs, eval_docs = split_documents(documents, s.eval_fraction, s.seed)
    if tokenizer is None:
        # count-scored merges keep frequent words whole (see train_wordpiece), so [MASK] hides a word, not a letter
        tokenizer = train_wordpiece((sentence for doc in train_docs for sentence in doc), vocab_size=s.vocab_size,
                                    score="count")
    train_config, eval_config = masking_configs(s)
    train_set = DynamicMaskingDataset(train_docs, tokenizer.tokenize, tokenizer.vocab, train_config, seed=s.seed)
    eval_set = StaticMaskingDataset(eval_docs, tokenizer.tokenize, tokenizer.vocab, eval_config, seed=s.seed + 1)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=s.hidden_size,
                        num_hidden_layers=s.num_hidden_layers, num_attention_heads=s.num_attention_heads,
                        intermediate_size=s.intermediate_size, max_position_embeddings=s.max_seq_length,
                        pad_token_id=tokenizer.pad_token_id, hidden_dropout_prob=s.dropout,
                        attention_probs_dropout_prob=s.dropout, position_embedding_type=s.position_embedding_type,
                        alibi_slopes=s.alibi_slopes)
    model = BertForPreTraining(config)
    args = TrainingArguments(output_dir=output_dir, max_steps=s.max_steps, per_device_train_batch_size=distributed.per_rank_batch_size(s.batch_size),
                             per_device_eval_batch_size=64, learning_rate=s.learning_rate, weight_decay=0.01,
                             warmup_ratio=s.warmup_ratio, logging_steps=s.logging_steps, eval_steps=s.eval_steps,
                             seed=s.seed,
                             disable_tqdm=disable_tqdm, plot=False,
                             save_steps=s.save_steps, load_best_model_at_end=bool(s.eval_steps))
    trainer = Trainer(model, args, train_dataset=train_set, eval_dataset=eval_set,
                      data_collator=None, compute_metrics=mlm_nsp_metrics,
                      preprocess_logits_for_metrics=mlm_nsp_predictions)
    before = trainer.evaluate()
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    after = trainer.final_metrics()
    curves = os.path.join(output_dir, "curves.png")
    plot_training_curves(trainer.log_history, metrics=["loss", "eval_mlm_loss", "eval_nsp_loss"], smoothing=0.9,
                         title=f"BERT {s.num_hidden_layers}L/{s.hidden_size}H"
                               f"{' (ALiBi)' if s.position_embedding_type == 'alibi' else ''} pretraining: MLM + NSP loss "
                               f"(eval: points)", path=curves)
    model_dir = os.path.join(output_dir, "model")
    trainer.save_model(model_dir, tokenizer)
    losses = [e["loss"] for e in trainer.log_history if "loss" in e]
    return {
        "model_dir": model_dir, "train_instances": len(train_set), "eval_instances": len(eval_set),
        "first_logged_loss": losses[0], "last_logged_loss": losses[-1],
        "mlm_loss_before": before["eval_mlm_loss"], "mlm_loss_after": after["eval_mlm_loss"],
        "nsp_loss_before": before["eval_nsp_loss"], "nsp_loss_after": after["eval_nsp_loss"],
        "weights_from_step": after.get("step", trainer.global_step),
        "mlm_accuracy": after["eval_mlm_accuracy"], "unigram_baseline": unigram_baseline(train_set, eval_set),
        "nsp_accuracy": after["eval_nsp_accuracy"],
        "nsp_majority_baseline": majority_baseline([eval_set[i]["next_sentence_label"] for i in range(len(eval_set))]),
        "curves": curves, "log": os.path.join(output_dir, "log.jsonl"),
    }

