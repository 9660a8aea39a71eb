# %% [markdown]
# # 03 · Attention from the formula
#
# Scaled dot-product attention (Vaswani et al., 2017, §3.2.1):
#
#     Attention(Q, K, V) = softmax(Q Kᵀ / √d + bias) V
#
# Row i of softmax(·) is a probability distribution over the keys: how much query i reads from each value.
# `bias` is 0 where a query may look and −∞ where it may not (padding, the future). We write it in NumPy,
# add the masks, then check `F.scaled_dot_product_attention` (fused C++ flash kernel or unfused Tensor maths),
# PyTorch, and `nn.MultiHeadAttention` against it, and draw the attention maps with `minitx.viz.plot_attention`.

# %%
import math

import numpy as np

import minitx as mx
from minitx import nn
from minitx.nn import functional as F
from minitx.testing import gradcheck
from minitx.viz import plot_attention, save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK, optional_torch  # quick mode (CI) and the figure folder: tutorials/_settings.py

torch = optional_torch()  # the reference to compare with, when installed

mx.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The formula in NumPy

# %%
def softmax(s, axis=-1):
    s = s - s.max(axis=axis, keepdims=True)        # stable: exp never overflows
    e = np.exp(s)
    return e / e.sum(axis=axis, keepdims=True)


def attention(q, k, v, allowed=None):
    """q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv); allowed: bool, broadcastable to (..., Lq, Lk)."""
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])   # (..., Lq, Lk)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    p = softmax(scores)
    return p @ v, p


B, H, L, D = 2, 2, 6, 8
q, k, v = (rng.standard_normal((B, H, L, D)).astype(np.float32) for _ in range(3))
out, p = attention(q, k, v)
assert np.allclose(p.sum(-1), 1.0, atol=1e-6)           # each row is a distribution
print("out", out.shape, "probabilities", p.shape)

# %% [markdown]
# ## 2. Why divide by √d?
#
# With unit-variance entries, q·k is a sum of d products, so its variance is d. Without the scaling the
# scores grow like √d, softmax saturates (one key gets ~all the weight) and its gradient vanishes.
# The average entropy of a row shows it: without scaling it collapses as d grows; with it, it stays put.

# %%
dims = [4, 16, 64, 256] if QUICK else [4, 8, 16, 32, 64, 128, 256, 512]
entropy = {"q·k": [], "q·k / √d": []}
for d in dims:
    qq, kk = rng.standard_normal((64, d)), rng.standard_normal((64, d))
    for name, scale in (("q·k", 1.0), ("q·k / √d", 1 / math.sqrt(d))):
        pr = softmax(qq @ kk.T * scale)
        entropy[name].append(float(-(pr * np.log(pr + 1e-30)).sum(-1).mean()))
print({name: [round(e, 2) for e in values] for name, values in entropy.items()})
assert entropy["q·k"][-1] < 0.5 * entropy["q·k / √d"][-1]

figure = new_figure(5.5, 3.2)
ax = figure.add_subplot()
for name, values in entropy.items():
    ax.semilogx(dims, values, "o-", base=2, label=name)
ax.axhline(math.log(64), color="grey", ls=":", label="uniform over 64 keys")
ax.set_xlabel("head dimension d")
ax.set_ylabel("mean row entropy (nats)")
ax.legend()
ax.grid(alpha=0.3)
save_figure(figure, OUT / "03_scaling.png")

# %% [markdown]
# ## 3. Masks
#
# * **Padding**: sentences in a batch have different lengths; the padded keys must get zero weight.
#   The HF convention is an `attention_mask` (B, L) of 1 = token, 0 = pad; as a boolean "may attend"
#   mask it is broadcast to (B, 1, 1, Lk): the same for every head and every query.
# * **Causal**: in a decoder, query i may only see keys j ≤ i (a lower-triangular mask).
#
# Both are combined with a logical AND.

# %%
lengths = np.array([6, 4])                                          # the 2nd sentence has 2 pads
padding = np.arange(L)[None, :] < lengths[:, None]                  # (B, Lk) True = real token
pad_mask = padding[:, None, None, :]                                # (B, 1, 1, Lk)
causal = np.tril(np.ones((L, L), dtype=bool))                       # (Lq, Lk)
out_masked, p_masked = attention(q, k, v, pad_mask & causal)
assert np.all(p_masked[1, :, :, 4:] == 0)                           # no weight on padding
assert np.all(np.triu(p_masked[0, 0], k=1) == 0)                    # no weight on the future
assert np.allclose(p_masked.sum(-1), 1.0, atol=1e-6)

# %% [markdown]
# ## 4. The library and PyTorch agree
#
# `F.scaled_dot_product_attention` takes torch's argument names. Under the `cpp` backend with float32 it runs
# the fused flash-attention kernel (never forming the L×L matrix, tutorial 11); under `numpy` the unfused
# Tensor maths. Both must match our formula and `torch.nn.functional.scaled_dot_product_attention`.

# %%
backends = ["numpy", "cpp"] if mx.cpp_available() else ["numpy"]
for name in backends:
    with mx.backend(name):
        ours = F.scaled_dot_product_attention(mx.tensor(q), mx.tensor(k), mx.tensor(v), attn_mask=pad_mask)
        causal_ours = F.scaled_dot_product_attention(mx.tensor(q), mx.tensor(k), mx.tensor(v), attn_mask=pad_mask,
                                                     is_causal=True)
    assert np.allclose(causal_ours.numpy(), out_masked, atol=1e-5), name
    if torch is not None:
        reference = torch.nn.functional.scaled_dot_product_attention(
            torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=torch.tensor(pad_mask), is_causal=False)
        assert np.allclose(ours.numpy(), reference.numpy(), atol=1e-5), name
        print(f"{name:>5} backend: max |ours - torch| = {np.abs(ours.numpy() - reference.numpy()).max():.1e}")

# %% [markdown]
# The backward comes for free on the unfused path (autograd through matmul and softmax) and from the fused
# kernel's own backward on the C++ path; gradcheck verifies the gradients w.r.t. Q, K and V (in float64,
# which takes the unfused path).

# %%
small = [mx.randn(1, 2, 3, 4, requires_grad=True) for _ in range(3)]
assert gradcheck(lambda a, b_, c: F.scaled_dot_product_attention(a, b_, c, is_causal=True), small)
print("gradcheck passed for causal attention")

# %% [markdown]
# ### The backward by hand
#
# Derive it once, then check it against autograd. With S = Q Kᵀ/√d + bias, P = softmax(S) row by row and
# O = P V, and dO = dL/dO given:
#
# * O = P V is a matmul: dV = Pᵀ dO and dP = dO Vᵀ.
# * Each row p = softmax(s) has the Jacobian diag(p) − p pᵀ, so dS = P ∘ (dP − rowsum(dP ∘ P)): every
#   probability's gradient minus the row's probability-weighted mean of them. A blocked key has p = 0, so its
#   dS is 0: no gradient flows to a key a query could not see.
# * S = Q Kᵀ/√d: dQ = dS K / √d and dK = dSᵀ Q / √d (the bias is a constant).
#
# Write `attention_backward` yourself before reading the cell below; the asserts check it against autograd on
# both backends (the NumPy backend's unfused Tensor maths; the C++ flash kernel's own backward, which
# recomputes P tile by tile instead of storing it).

# %%
def attention_backward(q, k, v, p, d_out):
    """(dQ, dK, dV) of O = softmax(Q Kᵀ/√d + bias) V, given P (the softmax, blocked entries 0) and dO."""
    scale = 1 / math.sqrt(q.shape[-1])
    dv = np.swapaxes(p, -1, -2) @ d_out                     # (..., Lk, dv)
    dp = d_out @ np.swapaxes(v, -1, -2)                     # (..., Lq, Lk)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))    # softmax backward, row by row
    dq = ds @ k * scale                                     # (..., Lq, d)
    dk = np.swapaxes(ds, -1, -2) @ q * scale                # (..., Lk, d)
    return dq, dk, dv


q64, k64, v64 = (a.astype(np.float64) for a in (q, k, v))
out64, p64 = attention(q64, k64, v64, pad_mask & causal)
d_out = rng.standard_normal(out64.shape)
by_hand = attention_backward(q64, k64, v64, p64, d_out)
for name in backends:
    with mx.backend(name):
        leaves = [mx.tensor(a, requires_grad=True) for a in (q, k, v)]  # float32: the fused kernel on cpp
        o = F.scaled_dot_product_attention(*leaves, attn_mask=pad_mask, is_causal=True)
        (o * mx.tensor(d_out.astype(np.float32))).sum().backward()     # dL/dO = d_out
    for label, hand, leaf in zip(("dQ", "dK", "dV"), by_hand, leaves):
        assert np.allclose(leaf.grad.numpy(), hand, atol=1e-4), (name, label)
    print(f"{name:>5} backend: autograd's dQ, dK, dV match the hand-derived backward")

# %% [markdown]
# ## 5. Multi-head attention
#
# h heads each attend in a d/h-dimensional subspace: project X with W_Q, W_K, W_V (E → E), split the last axis
# into (h, E/h), attend per head, merge back and project with W_O (§3.2.2). We redo `nn.MultiHeadAttention`'s
# forward with its own weights to see there is nothing more to it.

# %%
E, heads = 16, 4
mha = nn.MultiHeadAttention(E, heads)
x = rng.standard_normal((B, L, E)).astype(np.float32)
result = mha(mx.tensor(x), padding_mask=padding.astype(np.int64), need_weights=True)


def project(linear, t):
    return t @ linear.weight.numpy().T + linear.bias.numpy()


def split(t):  # (B, L, E) -> (B, h, L, E/h)
    return t.reshape(B, L, heads, E // heads).transpose(0, 2, 1, 3)


heads_out, weights = attention(split(project(mha.query, x)), split(project(mha.key, x)),
                               split(project(mha.value, x)), pad_mask)
merged = heads_out.transpose(0, 2, 1, 3).reshape(B, L, E)
by_hand = project(mha.out_proj, merged)
assert np.allclose(by_hand, result.output.numpy(), atol=1e-5)
assert np.allclose(weights, result.weights.numpy(), atol=1e-5)
print("nn.MultiHeadAttention == projections + split heads + attention + merge + out_proj")

# %% [markdown]
# PyTorch's `nn.MultiheadAttention` packs W_Q, W_K, W_V into one `in_proj_weight`; copying ours in gives the
# same output (its `key_padding_mask` is True where a key is *padding*, the opposite convention).

# %%
if torch is not None:
    torch_mha = torch.nn.MultiheadAttention(E, heads, batch_first=True)
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.tensor(np.concatenate([mha.query.weight.numpy(), mha.key.weight.numpy(),
                                                                    mha.value.weight.numpy()])))
        torch_mha.in_proj_bias.copy_(torch.tensor(np.concatenate([mha.query.bias.numpy(), mha.key.bias.numpy(),
                                                                  mha.value.bias.numpy()])))
        torch_mha.out_proj.weight.copy_(torch.tensor(mha.out_proj.weight.numpy()))
        torch_mha.out_proj.bias.copy_(torch.tensor(mha.out_proj.bias.numpy()))
        t_out, t_weights = torch_mha(*(torch.tensor(x),) * 3, key_padding_mask=torch.tensor(~padding),
                                     average_attn_weights=False)
    assert np.allclose(t_out.numpy(), result.output.numpy(), atol=1e-5)
    assert np.allclose(t_weights.numpy(), result.weights.numpy(), atol=1e-5)
    print("matches torch.nn.MultiheadAttention")

# %% [markdown]
# ## 6. Heatmaps
#
# `plot_attention` draws one panel per (layer, head) with the tokens on the axes. Here: the second sentence
# (two padding positions, which get no weight) with a causal mask added, so each panel is lower-triangular.

# %%
causal_result = mha(mx.tensor(x), padding_mask=padding.astype(np.int64), is_causal=True, need_weights=True)
tokens = ["the", "cat", "sat", "down", "[PAD]", "[PAD]"]
figure = plot_attention([causal_result.weights], tokens, batch_index=1)
save_figure(figure, OUT / "03_attention_heads.png")
assert np.all(causal_result.weights.numpy()[1, :, :, 4:] == 0)
print("figures written to", OUT)
