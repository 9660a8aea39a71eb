# %% [markdown]
# # 08 · BERT pretraining: masked LM + next-sentence prediction
#
# BERT (Devlin et al., 2019, §3.1) learns from raw text with two self-supervised tasks at once:
#
# * **Masked LM**: 15% of the tokens are chosen; of those 80% become `[MASK]`, 10% a random token, 10% stay
#   unchanged, and the model must predict the original token at every chosen position.
# * **Next-sentence prediction (NSP)**: the input is `[CLS] A [SEP] B [SEP]`; half the time B really follows A,
#   half the time it is a random span of another document; the `[CLS]` vector must tell which.
#
# loss = cross-entropy(MLM, chosen positions only) + cross-entropy(NSP). We build the data with `minitx.data`,
# inspect it, then run `minitx.recipes.pretrain_bert` (WordPiece vocab → data → `BertForPreTraining` → Trainer)
# at a small size and watch the losses.

# %%
import json
import os
import tempfile
import time
import tracemalloc

import numpy as np

import minitx as mx
from minitx.data.collate import collate
from minitx.data.corpus import builtin_corpus
from minitx.data.pretraining import IGNORE_INDEX, MASK, DynamicMaskingDataset, PretrainingConfig, StaticMaskingDataset
from minitx.models.bert import BertConfig, BertForPreTraining
from minitx.nn import functional as F
from minitx.recipes.pretrain_bert import BertPretrainingSettings, pretrain_bert
from minitx.tokenizers import WordPieceTokenizer, train_wordpiece
from minitx.viz import plot_training_curves, save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py

mx.manual_seed(0)

documents = builtin_corpus()          # a list of documents, each a list of sentences
print(f"{len(documents)} documents, {sum(map(len, documents))} sentences")

# %% [markdown]
# ## 1. Pretraining instances
#
# `StaticMaskingDataset` re-implements google-research/bert's `create_pretraining_data.py`: it packs whole
# sentences into segment pairs of up to `max_seq_length` tokens and masks them once. Each item is a dict of
# model inputs: `labels` holds the original id at predicted positions and −100 elsewhere (ignored by the loss).

# %%
tokenizer = train_wordpiece((s for d in documents for s in d), vocab_size=1000)
config = PretrainingConfig(max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1)
dataset = StaticMaskingDataset(documents, tokenizer.tokenize, tokenizer.vocab, config, seed=0)
example = dataset[0]
tokens = tokenizer.convert_ids_to_tokens(example["input_ids"].tolist())
print(f"{len(dataset)} instances; the first one (next_sentence_label = {example['next_sentence_label']}, "
      f"1 = B is random):")
print(" ".join(tokens))
for position in np.flatnonzero(example["labels"] != IGNORE_INDEX):
    original = tokenizer.convert_ids_to_tokens([int(example["labels"][position])])[0]
    print(f"  position {position:2d}: input {tokens[position]!r:12} -> predict {original!r}")

# %% [markdown]
# The 80/10/10 rule, measured over every predicted position of the dataset (a "kept" token equals its label; a
# random replacement equals it only by chance):

# %%
inputs = np.concatenate([d["input_ids"] for d in dataset.instances])
labels = np.concatenate([d["labels"] for d in dataset.instances])
chosen = labels != IGNORE_INDEX
mask_id = tokenizer.vocab[MASK]
share_mask = float((inputs[chosen] == mask_id).mean())
share_kept = float((inputs[chosen] == labels[chosen]).mean())
share_random = 1 - share_mask - share_kept
n_real = int((inputs != tokenizer.vocab["[PAD]"]).sum())
print(f"{chosen.sum()} predicted positions = {chosen.sum() / n_real:.1%} of tokens; "
      f"[MASK] {share_mask:.1%}, kept {share_kept:.1%}, random {share_random:.1%}")
assert abs(share_mask - 0.8) < 0.03 and abs(share_kept - 0.1) < 0.03 and abs(share_random - 0.1) < 0.03

# %% [markdown]
# Every instance is laid out as `[CLS] A [SEP] B [SEP]` with segment ids 0 for A and 1 for B. Half the chunks
# get a random B, and so does every chunk that holds a single sentence (there is no boundary to split at), so
# with long sentences (a small vocabulary spells words in many pieces) the "random" share is above 50%.

# %%
cls_id, sep_id = tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"]
for d in dataset.instances:
    ids, segments = d["input_ids"], d["token_type_ids"]
    start_b = int(np.argmax(segments == 1))                       # first token of B
    assert ids[0] == cls_id and ids[start_b - 1] == sep_id and ids[-1] == sep_id
    assert np.all(segments[:start_b] == 0) and np.all(segments[start_b:] == 1)
nsp = np.array([d["next_sentence_label"] for d in dataset.instances])
print(f"NSP: {nsp.mean():.1%} of the instances have a random B")

# %% [markdown]
# `DynamicMaskingDataset` (RoBERTa, §4.1) keeps the pairs but redraws the masks every epoch, so the model sees
# more distinct training signals from the same text; epoch e is still reproducible on its own.

# %%
dynamic = DynamicMaskingDataset(documents[:10], tokenizer.tokenize, tokenizer.vocab, config, seed=0)
dynamic.set_epoch(0)
epoch0 = dynamic[0]["labels"].copy()
dynamic.set_epoch(1)
epoch1 = dynamic[0]["labels"].copy()
dynamic.set_epoch(0)
assert np.array_equal(dynamic[0]["labels"], epoch0) and not np.array_equal(epoch0, epoch1)
print("masked positions, epoch 0:", np.flatnonzero(epoch0 != IGNORE_INDEX),
      " epoch 1:", np.flatnonzero(epoch1 != IGNORE_INDEX))

# %% [markdown]
# ## 2. The loss, by hand, on one batch
#
# `BertForPreTraining` returns MLM logits (B, L, V) and NSP logits (B, 2); its loss is the sum of the two
# cross-entropies (the MLM one only over positions whose label is not −100).

# %%
model = BertForPreTraining(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
batch = collate(dataset.instances[:8], pad_token_id=tokenizer.vocab["[PAD]"])
out = model(**batch, return_full_logits=True)   # by default, with labels, the head sees the masked rows only
mlm = F.cross_entropy(out.prediction_logits.reshape(-1, tokenizer.vocab_size), batch["labels"].reshape(-1),
                      ignore_index=IGNORE_INDEX)
nsp_loss = F.cross_entropy(out.seq_relationship_logits, batch["next_sentence_label"])
print(f"MLM {mlm.item():.3f} + NSP {nsp_loss.item():.3f} = {out.loss.item():.3f}  "
      f"(at init: MLM ≈ ln V = {np.log(tokenizer.vocab_size):.3f}, NSP ≈ ln 2 = {np.log(2):.3f})")
assert np.isclose(out.loss.item(), mlm.item() + nsp_loss.item(), rtol=1e-5)
assert abs(mlm.item() - np.log(tokenizer.vocab_size)) < 0.5

# %% [markdown]
# ## 3. Pretrain with the recipe and watch the losses
#
# `pretrain_bert` trains the WordPiece vocabulary, builds dynamically masked training data and fixed held-out
# data (10% of the documents), trains with AdamW + linear warm-up/decay, and evaluates MLM and NSP before and
# after. The Trainer logs to `log.jsonl`, which `plot_training_curves` reads.

# %%
settings = BertPretrainingSettings(
    vocab_size=500 if QUICK else 2000, max_seq_length=64, hidden_size=32 if QUICK else 96,
    num_hidden_layers=1 if QUICK else 2, num_attention_heads=2 if QUICK else 4,
    intermediate_size=64 if QUICK else 192, max_steps=30 if QUICK else 300, batch_size=16 if QUICK else 32,
    dupe_factor=1 if QUICK else 2)
with tempfile.TemporaryDirectory() as run_dir:
    result = pretrain_bert(documents, run_dir, settings, disable_tqdm=True)
    log = [json.loads(line) for line in open(os.path.join(run_dir, "log.jsonl"))]
    plot_training_curves(log, metrics=["loss"], smoothing=0.5, path=OUT / "08_loss_curves.png")
    reloaded = BertForPreTraining.from_pretrained(result["model_dir"])
    reloaded_tokenizer = WordPieceTokenizer.from_pretrained(result["model_dir"])

print(f"train loss {result['first_logged_loss']:.3f} -> {result['last_logged_loss']:.3f}")
print(f"held-out MLM loss {result['mlm_loss_before']:.3f} -> {result['mlm_loss_after']:.3f}, "
      f"accuracy {result['mlm_accuracy']:.3f} (unigram baseline {result['unigram_baseline']:.3f})")
print(f"held-out NSP loss {result['nsp_loss_before']:.3f} -> {result['nsp_loss_after']:.3f}, "
      f"accuracy {result['nsp_accuracy']:.3f} (majority {result['nsp_majority_baseline']:.3f})")
assert result["mlm_loss_after"] < result["mlm_loss_before"]
assert result["last_logged_loss"] < result["first_logged_loss"]
if not QUICK:
    assert result["mlm_accuracy"] > result["unigram_baseline"]
assert reloaded_tokenizer.vocab_size == reloaded.config.vocab_size

# %% [markdown]
# NSP on this corpus is easy (a random B usually comes from a different documentation topic), which is one
# reason RoBERTa dropped it. The MLM accuracy is the interesting number: it should beat always guessing the
# most frequent token.

# %%
figure = new_figure(7, 3)
axes = figure.subplots(1, 2)
for ax, task in zip(axes, ("mlm", "nsp")):
    ax.bar(["before", "after"], [result[f"{task}_loss_before"], result[f"{task}_loss_after"]], color=["C7", "C0"])
    ax.set_title(f"held-out {task.upper()} loss")
    ax.grid(alpha=0.3, axis="y")
save_figure(figure, OUT / "08_eval_losses.png")
print("figures written to", OUT)

# %% [markdown]
# ## 4. Memory: gradient checkpointing trades time for activations
#
# Backward needs what each op saved in the forward (layer inputs, attention probabilities, dropout masks…),
# so a training step's peak memory grows with layers × batch × length. `model.gradient_checkpointing_enable()`
# (Chen et al., 2016) keeps only each layer's *input*: the layer runs without a graph in the forward, and
# again, with one, in the backward (with the random state restored, so dropout draws the same masks). The
# gradients are the same; the price is one more forward per layer. `tracemalloc` sees NumPy's allocations.

# %%
def training_step(checkpointing: bool):
    mx.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2 if QUICK else 6,
                        num_attention_heads=4, intermediate_size=256, max_position_embeddings=64)
    model = BertForPreTraining(config).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    batch = collate(dataset.instances[:8 if QUICK else 32], pad_token_id=tokenizer.vocab["[PAD]"])
    tracemalloc.start()
    start = time.perf_counter()
    model(**batch).loss.backward()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak, model.bert.embeddings.word_embeddings.weight.grad.numpy()


plain, checkpointed = training_step(False), training_step(True)
for name, (seconds, peak, _) in (("plain", plain), ("checkpointed", checkpointed)):
    print(f"{name:>12}: step {1e3 * seconds:6.1f} ms, peak traced memory {peak / 2**20:6.2f} MiB")
assert np.allclose(plain[2], checkpointed[2], rtol=1e-4, atol=1e-6)  # same gradients
assert checkpointed[1] < plain[1]

# %% [markdown]
# ## 5. Where do time and memory go in a BERT step?
#
# `minitx.profiler.profile()` records every op that runs inside it, forward and backward separately: how
# often, how long, the bytes of what it returned, the bytes it saved for the backward, and which backend
# (NumPy or C++ at which instruction set) ran it. Profile one training step of a wider BERT (two layers, so
# it stays quick). Read the table top down: the matrix products (`Linear`: every projection; `MatMul`: the
# products written with `@`; forward and backward) lead; the cross-entropy over the vocabulary is cheap because the MLM
# head only scores the ~15% masked positions (`gather_masked` in minitx/models/bert.py,
# google-research/bert's `gather_indexes`); attention runs fused (one `FusedAttention` op, dropout inside)
# and saves only q, k, v, its output and one log-sum-exp per query: no L×L matrix.

# %%
import minitx.profiler  # noqa: E402

mx.manual_seed(0)
config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64 if QUICK else 256, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=256 if QUICK else 1024, max_position_embeddings=64)
model = BertForPreTraining(config).train()
batch = collate(dataset.instances[:8 if QUICK else 32], pad_token_id=tokenizer.vocab["[PAD]"])
model(**batch).loss.backward()  # a first step, so the profile shows steady-state costs
with minitx.profiler.profile() as prof:
    model(**batch).loss.backward()
print(prof.table(limit=12))
rows = prof.rows()
assert {r["phase"] for r in rows} == {"forward", "backward"}
matmul_share = sum(r["seconds"] for r in rows if r["op"] in ("Linear", "MatMul"))
print(f"matrix products: {100 * matmul_share / prof.total_seconds():.0f}% of the op time")
