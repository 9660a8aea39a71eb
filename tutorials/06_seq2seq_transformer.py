# %% [markdown]
# # 06 · The encoder-decoder Transformer on a toy task: reversing sequences
#
# `minitx.models.seq2seq.Seq2SeqTransformer` is the model of Vaswani et al. (2017): an encoder reads the source,
# a decoder generates the target one token at a time, reading the encoder output ("memory") through
# cross-attention. Reversal is a good first task: the answer is obvious to us, impossible without attention
# to the right source position, and the cross-attention map should come out as an anti-diagonal.
#
# Training uses **teacher forcing**: the decoder reads the target shifted right (`[BOS] y₁ … y_{n−1}`) and
# predicts `y₁ … y_n` at every position at once; its causal mask keeps position t from peeking at t + 1.

# %%

import numpy as np

import minitx as mx
from minitx.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from minitx.optim import Adam
from minitx.viz import plot_attention, plot_training_curves
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py

mx.manual_seed(0)

# %% [markdown]
# ## 1. Data
#
# Vocabulary: 0 = [PAD], 1 = [BOS], 2…9 = eight "digits". A source is 5 random digits, the target is it reversed.

# %%
PAD, BOS, FIRST_DIGIT, N_DIGITS, LENGTH = 0, 1, 2, 8, 5
VOCAB = FIRST_DIGIT + N_DIGITS
STEPS = 150 if QUICK else 300


def reverse_batch(rng, batch):
    src = rng.integers(FIRST_DIGIT, VOCAB, (batch, LENGTH))          # (B, L)
    target = src[:, ::-1]                                            # (B, L)
    decoder_input = np.concatenate([np.full((batch, 1), BOS), target[:, :-1]], axis=1)  # shifted right
    return src, decoder_input, target


rng = np.random.default_rng(0)
src, decoder_input, target = reverse_batch(rng, 2)
print("source       ", src[0], "\ndecoder input", decoder_input[0], "\ntarget       ", target[0])

# %% [markdown]
# ## 2. Model and training loop
#
# A small model: d_model 32, 2 heads, one encoder and one decoder layer. The loss is token-level cross-entropy;
# the loop is the usual zero_grad / backward / step.

# %%
config = Seq2SeqConfig(src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, d_model=32, nhead=2, num_encoder_layers=1,
                       num_decoder_layers=1, dim_feedforward=64, dropout=0.0, max_len=16, pad_token_id=PAD)
model = Seq2SeqTransformer(config)
optimizer = Adam(model.parameters(), lr=3e-3)
print(f"{model.num_parameters():,} parameters")

log = []
for step in range(1, STEPS + 1):
    src, decoder_input, target = reverse_batch(rng, 32)
    out = model(src, decoder_input, labels=target)
    model.zero_grad()
    out.loss.backward()
    optimizer.step()
    token_accuracy = float((out.logits.numpy().argmax(-1) == target).mean())
    log.append({"step": step, "loss": out.loss.item(), "token_accuracy": token_accuracy})
    if step % 50 == 0:
        print(f"step {step:4d}  loss {out.loss.item():.3f}  teacher-forced token accuracy {token_accuracy:.0%}")
plot_training_curves(log, smoothing=0.8, path=OUT / "06_loss.png")
assert log[-1]["loss"] < 0.5 * log[0]["loss"]

# %% [markdown]
# ## 3. Greedy decoding
#
# At test time there is no target to force: `greedy_decode` encodes the source once, then repeatedly feeds
# the tokens generated so far and appends the most likely next one.

# %%
model.eval()
src, _, target = reverse_batch(np.random.default_rng(123), 200)
predicted = model.greedy_decode(src, BOS, LENGTH)[:, 1:]
exact = float(np.all(predicted == target, axis=1).mean())
per_token = float((predicted == target).mean())
print(f"held-out: exact match {exact:.1%}, per-token accuracy {per_token:.1%} (chance: {1 / N_DIGITS:.1%})")
for s, p in zip(src[:3], predicted[:3]):
    print("  ", s, "->", p)
assert per_token > 0.5 and exact >= (0.8 if QUICK else 0.9)

# %% [markdown]
# ## 4. What the decoder looks at
#
# Cross-attention weights of the (only) decoder layer: row t is the distribution over source positions that
# decoder position t reads while predicting y_t. For reversal it should concentrate on source position L − 1 − t.
# We recompute the layer's sub-blocks with `need_weights=True` (post-LN: x ← LN(x + SelfAttn(x)) first).

# %%
layer = model.transformer.decoder.layers[0]
src1, dec1, _ = reverse_batch(np.random.default_rng(7), 1)
with mx.no_grad():
    memory = model.encode(src1)
    h = model.embed(model.tgt_embed, dec1)
    h = layer.norm1(h + layer.self_attn(h, is_causal=True).output)
    cross = layer.cross_attn(h, context=memory, need_weights=True).weights      # (1, heads, L_tgt, L_src)
plot_attention([cross], [f"in:{t}" for t in dec1[0]], key_tokens=[f"src:{t}" for t in src1[0]],
               path=OUT / "06_cross_attention.png")
strongest = cross.numpy()[0].sum(0).argmax(-1)        # summed over heads: most-read source position per row
print("most-attended source position per decoder position:", strongest, "(reversal: [4 3 2 1 0])")
if not QUICK:
    assert (strongest == np.arange(LENGTH)[::-1]).mean() >= 0.6
print("figures written to", OUT)
