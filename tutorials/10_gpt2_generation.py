# %% [markdown]
# # 10 · GPT-2 generation: greedy, sampling, beam search, no-repeat n-grams
#
# A causal language model gives, for every prefix, a distribution over the next token. Generating text means
# choosing tokens one at a time from those distributions. How we choose matters a lot:
#
# * **greedy**: always the most likely token: deterministic, and prone to loops;
# * **sampling**: draw from the distribution, reshaped by a *temperature* and truncated by *top-k* / *top-p*;
# * **beam search**: keep the `num_beams` most likely partial sequences, to find a more likely whole sequence;
# * **no-repeat n-grams**: forbid any token that would repeat an n-gram already in the text.
#
# We train a small GPT-2 with `minitx.recipes.pretrain_gpt2` (byte-level BPE + next-token prediction) and
# compare the strategies with `model.generate` (HF semantics, `minitx/generation.py`), re-deriving greedy by hand.

# %%
import tempfile

import numpy as np

import minitx as mx
from minitx.data.corpus import builtin_corpus
from minitx.generation import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper
from minitx.models.gpt2 import GPT2LMHeadModel
from minitx.recipes.pretrain_gpt2 import GPT2PretrainingSettings, pretrain_gpt2
from minitx.reference import log_softmax_forward
from minitx.tokenizers import ByteLevelBPETokenizer
from minitx.viz import save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py

mx.manual_seed(0)

# %% [markdown]
# ## 1. A small GPT-2
#
# Quick mode trains for a few steps only (the text will be poor, but every mechanism below still shows).

# %%
settings = GPT2PretrainingSettings(vocab_size=300 if QUICK else 1000, block_size=32 if QUICK else 64,
                                   n_embd=32 if QUICK else 96, n_head=2 if QUICK else 4, n_layer=2,
                                   max_steps=25 if QUICK else 300, batch_size=8 if QUICK else 16)
documents = builtin_corpus()
if QUICK:
    documents = documents[:20]
with tempfile.TemporaryDirectory() as run_dir:
    trained = pretrain_gpt2(documents, run_dir, settings, disable_tqdm=True)
    model = GPT2LMHeadModel.from_pretrained(trained["model_dir"])
    tokenizer = ByteLevelBPETokenizer.from_pretrained(trained["model_dir"])
model.eval()
print(f"eval loss {trained['eval_loss_before']:.2f} -> {trained['eval_loss_after']:.2f}, perplexity "
      f"{trained['eval_perplexity']:.0f} (uniform guessing: {trained['uniform_perplexity']})")
assert trained["eval_loss_after"] < trained["eval_loss_before"]

prompt = "The function"
ids = np.asarray([tokenizer.encode(prompt)])          # (1, L)
NEW = 12 if QUICK else 24


def log_prob(sequence, prompt_length):
    """Sum of log p(token | prefix) over the generated tokens: the score beam search maximises."""
    with mx.no_grad():
        logp = log_softmax_forward(model(sequence[None]).logits.numpy()[0].astype(np.float64))   # (L, V)
    targets = sequence[prompt_length:]
    return float(logp[np.arange(prompt_length - 1, len(sequence) - 1), targets].sum())


# %% [markdown]
# ## 2. Greedy, by hand and with `generate`
#
# Run the model on the whole sequence, take the last position's logits, append the argmax, repeat. `generate`
# does the same but feeds only the new token each step, reusing the earlier keys and values (the KV cache).

# %%
sequence = ids[0]
with mx.no_grad():
    for _ in range(NEW):
        logits = model(sequence[None]).logits.numpy()[0, -1]     # (V,) next-token logits
        sequence = np.append(sequence, logits.argmax())
greedy = model.generate(ids, max_new_tokens=NEW)[0]
assert np.array_equal(greedy, sequence)
assert np.array_equal(model.generate(ids, max_new_tokens=NEW, use_cache=False)[0], greedy)
print("greedy:", repr(tokenizer.decode(greedy)))

# %% [markdown]
# ## 3. Reshaping the distribution for sampling
#
# * temperature T: softmax(logits / T); T < 1 sharpens, T > 1 flattens;
# * top-k: keep the k most likely tokens;
# * top-p (nucleus, Holtzman et al., 2020): keep the smallest set whose probability reaches p.
#
# They are *logits warpers*: functions (input_ids, scores) → scores, with −∞ for removed tokens.

# %%
with mx.no_grad():
    first = model(ids).logits.numpy()[:, -1].astype(np.float32)     # (1, V)


def probs(scores):
    e = np.exp(scores - scores.max())
    return (e / e.sum())[0]


shown = np.argsort(-first[0])[:15]
variants = {"T = 1": first, "T = 0.5": TemperatureLogitsWarper(0.5)(ids, first),
            "T = 2": TemperatureLogitsWarper(2.0)(ids, first), "top-k 5": TopKLogitsWarper(5)(ids, first),
            "top-p 0.5": TopPLogitsWarper(0.5)(ids, first)}
assert np.isfinite(variants["top-k 5"]).sum() == 5
kept = probs(first)[np.isfinite(variants["top-p 0.5"][0])]
assert kept.sum() >= 0.5 and kept.sum() - kept.min() < 0.5     # the smallest set reaching p

figure = new_figure(10, 3.2)
axes = figure.subplots(1, len(variants), sharey=True)
for ax, (name, scores) in zip(axes, variants.items()):
    ax.bar(range(len(shown)), probs(scores)[shown], color="C0")
    ax.set_title(name, fontsize=9)
    ax.set_xticks(range(len(shown)), [tokenizer.decode([int(i)]) for i in shown], rotation=90, fontsize=7)
axes[0].set_ylabel(f"p(next token | {prompt!r})")
save_figure(figure, OUT / "10_next_token.png")

# %% [markdown]
# Sampling draws from a NumPy `Generator`: the same seed gives the same text. Sampling with top-k = 1 is greedy.

# %%
samples = [model.generate(ids, max_new_tokens=NEW, do_sample=True, top_k=40, top_p=0.95, temperature=0.8,
                          generator=np.random.default_rng(seed))[0] for seed in range(4)]
again = model.generate(ids, max_new_tokens=NEW, do_sample=True, top_k=40, top_p=0.95, temperature=0.8,
                       generator=np.random.default_rng(0))[0]
assert np.array_equal(samples[0], again)
assert np.array_equal(model.generate(ids, max_new_tokens=NEW, do_sample=True, top_k=1,
                                     generator=np.random.default_rng(5))[0], greedy)
for sample in samples[:2]:
    print("sampled:", repr(tokenizer.decode(sample)))

# %% [markdown]
# ## 4. Beam search
#
# Keep the `num_beams` best partial sequences by summed log-probability; at each step extend each by every
# token, keep the best `num_beams` of all those candidates. Greedy is beam search with one beam.

# %%
beams = model.generate(ids, max_new_tokens=NEW, num_beams=4, num_return_sequences=4)
assert np.array_equal(model.generate(ids, max_new_tokens=NEW, num_beams=1)[0], greedy)
assert len({tuple(b) for b in beams}) == 4                  # four different hypotheses
scores = {"greedy": log_prob(greedy, ids.shape[1]), "beam (best of 4)": log_prob(beams[0], ids.shape[1])}
scores.update({f"sample {i}": log_prob(s, ids.shape[1]) for i, s in enumerate(samples)})
print("beam:  ", repr(tokenizer.decode(beams[0])))
for name, value in scores.items():
    print(f"  log p = {value:8.2f}  {name}")
assert scores["beam (best of 4)"] >= min(scores[f"sample {i}"] for i in range(len(samples)))

# %% [markdown]
# ## 5. No-repeat n-grams
#
# Likely text is often repetitive ("the function of the function of the ..."). `no_repeat_ngram_size=n` bans
# any token that would complete an n-gram already present, so no n-gram appears twice.

# %%
def repeated_ngrams(sequence, n):
    grams = [tuple(sequence[i:i + n]) for i in range(len(sequence) - n + 1)]
    return len(grams) - len(set(grams))


blocked = model.generate(ids, max_new_tokens=NEW, no_repeat_ngram_size=2)[0]
blocked_beam = model.generate(ids, max_new_tokens=NEW, num_beams=4, no_repeat_ngram_size=2)[0]
print(f"greedy: {repeated_ngrams(greedy, 2)} repeated bigrams; with no_repeat_ngram_size=2: "
      f"{repeated_ngrams(blocked, 2)}")
print("no-repeat greedy:", repr(tokenizer.decode(blocked)))
print("no-repeat beam:  ", repr(tokenizer.decode(blocked_beam)))
assert repeated_ngrams(blocked, 2) == 0 and repeated_ngrams(blocked_beam, 2) == 0

figure = new_figure(6, 3)
ax = figure.add_subplot()
ax.barh(list(scores), list(scores.values()), color=["C1", "C2"] + ["C0"] * len(samples))
ax.set_xlabel(f"log p(continuation of {prompt!r})  — higher is more likely")
ax.grid(alpha=0.3, axis="x")
save_figure(figure, OUT / "10_sequence_logprob.png")
print("figures written to", OUT)
