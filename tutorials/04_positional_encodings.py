# %% [markdown]
# # 04 · Positional encodings
#
# Self-attention is **order-blind**: permute the input tokens and the outputs are permuted the same way,
# nothing else changes. A Transformer therefore adds a position signal to each token's vector:
#
# * **sinusoidal** (Vaswani et al., 2017, §3.5), fixed:
#   PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))
# * **learned** (BERT, GPT-2): one trainable vector per position, an `Embedding(max_len, d)`;
# * or no vector at all: **ALiBi** (§5) penalises each attention score by the distance between the two tokens.

# %%
import math

import numpy as np

import minitx as mx
from minitx import nn
from minitx.nn import functional as F
from minitx.optim import Adam
from minitx.viz import plot_positional_encoding
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py

mx.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Attention without positions is permutation-equivariant

# %%
E, L = 16, 7
attn = nn.MultiHeadAttention(E, 2)
x = rng.standard_normal((1, L, E)).astype(np.float32)
perm = rng.permutation(L)
with mx.no_grad():
    y = attn(mx.tensor(x)).output.numpy()
    y_perm = attn(mx.tensor(x[:, perm])).output.numpy()
assert np.allclose(y[:, perm], y_perm, atol=1e-5)     # same outputs, just reordered
print("attention(permuted x) == permuted attention(x): the model cannot tell the order")

pe = nn.SinusoidalPositionalEncoding(E, max_len=64)
with mx.no_grad():
    y = attn(pe(mx.tensor(x))).output.numpy()
    y_perm = attn(pe(mx.tensor(x[:, perm]))).output.numpy()
assert not np.allclose(y[:, perm], y_perm, atol=1e-3)
print("with positional encodings added, it can")

# %% [markdown]
# ## 2. The sinusoidal table from the formula

# %%
def sinusoidal(max_len, d):
    pos = np.arange(max_len)[:, None]                   # (L, 1)
    two_i = np.arange(0, d, 2)[None, :]                 # (1, d/2)
    angle = pos / 10000 ** (two_i / d)                  # (L, d/2)
    table = np.zeros((max_len, d))
    table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
    return table


max_len, d_model = (64, 32) if QUICK else (128, 64)
table = sinusoidal(max_len, d_model)
assert np.allclose(table, nn.sinusoidal_table(max_len, d_model), atol=1e-5)
plot_positional_encoding(table, path=OUT / "04_sinusoidal.png")
print("wavelengths from", round(2 * math.pi, 2), "to", round(2 * math.pi * 10000 ** ((d_model - 2) / d_model)))

# %% [markdown]
# ## 3. Relative positions are a rotation
#
# Each (sin, cos) pair at frequency ω is a point on a circle at angle ω·pos. Moving k positions rotates it by
# ω·k, whatever pos is: PE(pos + k) = R_k PE(pos) with R_k block-diagonal, *independent of pos*. So a linear
# map (which attention has plenty of) can read "k tokens back". It also makes PE(p)·PE(q) depend only on p − q.

# %%
k = 5
omega = 1 / 10000 ** (np.arange(0, d_model, 2) / d_model)
R = np.zeros((d_model, d_model))
for i, w in enumerate(omega):
    c, s = math.cos(w * k), math.sin(w * k)
    R[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]   # acts on (sin, cos)
assert np.allclose(table[k:] , table[:-k] @ R.T, atol=1e-9)
gram = table @ table.T
assert np.allclose(gram[10, 13], gram[40, 43]) and np.allclose(gram[3, 0], gram[50, 47])
print(f"PE(pos+{k}) = R · PE(pos) for every pos; PE(p)·PE(q) depends on p - q only")

# %% [markdown]
# ## 4. Learned positions
#
# `nn.LearnedPositionalEmbedding(max_len, d)` is an `Embedding` whose row p is added at position p. Rows for
# positions never seen in training get no gradient (BERT cannot handle longer inputs than it was trained on).
# A toy task where only position carries information: every token is the same, and the model must output its
# position modulo 4. After training, the learned table has organised itself by position.

# %%
train_len, table_len, period = 16, 24, 4
positions = nn.LearnedPositionalEmbedding(table_len, d_model)
token = mx.randn(1, 1, d_model) * 0.1                    # the same token everywhere
head = nn.Linear(d_model, period)
optimizer = Adam(list(positions.parameters()) + list(head.parameters()), lr=1e-2)
target = np.tile(np.arange(train_len) % period, (8, 1))  # (B, L)
inputs = token.expand(8, train_len, d_model)
for step in range(60 if QUICK else 200):
    logits = head(positions(inputs))                     # (B, L, period)
    loss = F.cross_entropy(logits.reshape(-1, period), target.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
accuracy = (logits.numpy().argmax(-1) == target).mean()
print(f"final loss {loss.item():.3f}, accuracy {accuracy:.0%}")
assert accuracy == 1.0

grad_rows = np.abs(positions.embedding.weight.grad.numpy()).sum(-1)
assert np.all(grad_rows[train_len:] == 0) and np.all(grad_rows[:train_len] > 0)
print(f"rows {train_len}..{table_len - 1} never received a gradient")
plot_positional_encoding(positions.embedding.weight.numpy(), title="learned positions (rows ≥ 16 untrained)",
                         path=OUT / "04_learned.png")

# %% [markdown]
# ## 5. ALiBi: a penalty for distance instead of a position vector
#
# Press et al. (2022) add no position vector at all: each head h adds −m_h·|i − j| to its attention scores,
#
#     P = softmax(Q Kᵀ/√d − m_h·|i − j|),
#
# so a key k tokens away is down-weighted by e^(−m_h·k) from the very first step. A steep slope makes a local
# head, slope 0 a global one. `BertConfig(position_embedding_type="alibi", alibi_slopes=...)` builds a BERT this
# way; `minitx demo` uses it (slopes 2, 1, 0, 0), because with learned positions its small BERT had not yet learnt
# where its neighbours are after 600 steps (held-out MLM accuracy 0.174 against 0.266 with ALiBi).
# When every key looks the same (Q Kᵀ constant), the bias alone decides: row i of P is softmax(−m·|i − j|).

# %%
slopes = [2.0, 1.0, 0.0]
bias = nn.alibi_bias(slopes, L)                          # (1, 3, L, L)
q = mx.zeros(1, len(slopes), L, 4)                       # every score Q Kᵀ is 0
v = mx.tensor(np.tile(np.eye(L, dtype=np.float32), (1, len(slopes), 1, 1)))  # V = I, so the output is P itself
p_alibi = F.scaled_dot_product_attention(q, q, v, attn_mask=bias).numpy()[0]
distance = np.abs(np.arange(L)[:, None] - np.arange(L)[None, :])
for h, m in enumerate(slopes):
    expected = np.exp(-m * distance) / np.exp(-m * distance).sum(-1, keepdims=True)
    assert np.allclose(p_alibi[h], expected, atol=1e-6)
print("query 3's attention, slope 2:", np.round(p_alibi[0, 3], 3), " slope 0:", np.round(p_alibi[2, 3], 3))

with mx.no_grad():  # and the order is visible again: a permuted input is no longer just a permuted output
    attn_bias = nn.alibi_bias([1.0, 0.5], L)
    y = attn(mx.tensor(x), attn_mask=attn_bias).output.numpy()
    y_perm = attn(mx.tensor(x[:, perm]), attn_mask=attn_bias).output.numpy()
assert not np.allclose(y[:, perm], y_perm, atol=1e-3)
print("with ALiBi's bias, attention can tell the order too, without adding anything to x")
print("figures written to", OUT)
