"""Pretrain a small GPT-2 from raw text: byte-level BPE -> fixed-length blocks -> next-token prediction.

Radford et al. (2019) at laptop scale: the documents are encoded with a freshly trained byte-level BPE,
joined with ``<|endoftext|>`` between documents, and cut into blocks of ``block_size`` tokens. Each block is a
training example whose labels are its own ids: ``GPT2LMHeadModel`` shifts them, so position t learns to
predict token t + 1 (the causal mask keeps it from looking ahead).
"""
import os
from dataclasses import dataclass

import numpy as np

import minitx
from minitx import distributed
from minitx.models.gpt2 import GPT2Config, GPT2LMHeadModel
from minitx.tokenizers.bpe import train_bpe
from minitx.train.arguments import TrainingArguments
from minitx.train.trainer import Trainer
from minitx.viz.curves import plot_training_curves

END_OF_TEXT = "<|endoftext|>"


@dataclass
class GPT2PretrainingSettings:
    vocab_size: int = 1000
    block_size: int = 64
    n_embd: int = 96
    n_layer: int = 2
    n_head: int = 4
    max_steps: int = 200
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup_ratio: float = 0.05
    dropout: float = 0.1          # residual, embedding and attention dropout (0 turns them off)
    logging_steps: int = 1        # train loss and learning rate every N steps (1: the curve starts at step 1)
    eval_steps: int = None        # evaluate on the held-out set every N steps too, and keep the best weights
                                  # (None: evaluate before and after only)
    save_steps: int = None        # a checkpoint every N steps (None: only when interrupted)
    seed: int = 0


def token_blocks(documents: list, tokenizer, block_size: int) -> list:
    """One long stream ``doc1 <|endoftext|> doc2 <|endoftext|> ...`` cut into (block_size,) examples."""
    eot = tokenizer.vocab[END_OF_TEXT]
    stream = []
    for document in documents:
        stream.extend(tokenizer.encode(" ".join(document)))
        stream.append(eot)
    n_blocks = len(stream) // block_size
    blocks = np.asarray(stream[:n_blocks * block_size], dtype=np.int64).reshape(n_blocks, block_size)
    return [{"input_ids": row, "labels": row} for row in blocks]


def pretrain_gpt2(documents: list, output_dir: str, settings: GPT2PretrainingSettings = GPT2PretrainingSettings(),
                  disable_tqdm: bool = False,
                  resume_from_checkpoint=None) -> dict:
    """Train the tokenizer and the model; both are saved to ``output_dir/model``. Returns the results dict."""
    s = settings
    minitx.manual_seed(s.seed)
    tokenizer = train_bpe((" ".join(doc) for doc in documents), vocab_size=s.vocab_size,
                          special_tokens=(END_OF_TEXT,), pad_token=END_OF_TEXT)
    blocks = token_blocks(documents, tokenizer, s.block_size)
    n_eval = max(1, len(blocks) // 20)
    train_set, eval_set = blocks[n_eval:], blocks[:n_eval]
    eot = tokenizer.vocab[END_OF_TEXT]
    config = GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=s.block_size, n_embd=s.n_embd,
                        n_layer=s.n_layer, n_head=s.n_head, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
                        resid_pdrop=s.dropout, embd_pdrop=s.dropout, attn_pdrop=s.dropout)
    model = GPT2LMHeadModel(config)
    args = TrainingArguments(output_dir=output_dir, max_steps=s.max_steps, per_device_train_batch_size=distributed.per_rank_batch_size(s.batch_size),
                             per_device_eval_batch_size=32, learning_rate=s.learning_rate, weight_decay=0.01,
                             warmup_ratio=s.warmup_ratio, logging_steps=s.logging_steps, eval_steps=s.eval_steps,
                             seed=s.seed,
                             disable_tqdm=disable_tqdm, plot=False,
                             save_steps=s.save_steps, load_best_model_at_end=bool(s.eval_steps))
    trainer = Trainer(model, args, train_dataset=train_set, eval_dataset=eval_set)
    before = trainer.evaluate()["eval_loss"]
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    final = trainer.final_metrics()
    after = final["eval_loss"]
    plot_training_curves(trainer.log_history, metrics=["loss", "eval_loss"], smoothing=0.9,
                         title=f"GPT-2 {s.n_layer}L/{s.n_embd}H pretraining: next-token loss (eval: points)",
                         path=os.path.join(output_dir, "curves.png"))
    model_dir = os.path.join(output_dir, "model")
    trainer.save_model(model_dir, tokenizer)
    return {"model_dir": model_dir, "train_blocks": len(train_set), "eval_loss_before": before,
            "eval_loss_after": after, "eval_perplexity": float(np.exp(after)),
            "weights_from_step": final.get("step", trainer.global_step),
            "uniform_perplexity": tokenizer.vocab_size}
