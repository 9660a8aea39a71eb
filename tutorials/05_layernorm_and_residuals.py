# %% [markdown]
# # 05 · Layer norm and residual connections: pre-LN vs post-LN
#
# Layer normalisation (Ba, Kiros & Hinton, 2016) normalises each position's feature vector x ∈ ℝᴰ:
#
#     μ = mean(x),  σ² = mean((x − μ)²),  x̂ = (x − μ) / √(σ² + ε),  y = γ ⊙ x̂ + β
#
# Every Transformer sub-layer sits inside a residual connection, and the LayerNorm goes either after the sum
# (**post-LN**: the original paper, BERT) or before the sub-layer (**pre-LN**: GPT-2):
#
#     post-LN:  x ← LN(x + F(x))          pre-LN:  x ← x + F(LN(x))
#
# Xiong et al. (2020), "On Layer Normalization in the Transformer Architecture", show that at initialisation
# post-LN has large gradients near the output (hence the need for learning-rate warm-up) while pre-LN's are
# well-behaved. We derive the LN gradient, check it, and measure gradient norms per layer.

# %%

import numpy as np

import minitx as mx
from minitx import nn
from minitx.nn import functional as F
from minitx.testing import gradcheck
from minitx.viz import save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK, optional_torch  # quick mode (CI) and the figure folder: tutorials/_settings.py

torch = optional_torch()  # the reference to compare with, when installed

mx.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The forward, from the formula

# %%
def layer_norm(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)       # biased variance, as in the paper and PyTorch
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, x_hat, np.sqrt(var + eps)


D = 8
x = rng.standard_normal((4, 5, D)) * 3 + 2                     # (B, L, D), deliberately off-centre
gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
y, x_hat, sigma = layer_norm(x, gamma, beta)
ours = F.layer_norm(mx.tensor(x, dtype="float64"), D, mx.tensor(gamma), mx.tensor(beta))
assert np.allclose(ours.numpy(), y)
if torch is not None:
    ref = torch.nn.functional.layer_norm(torch.tensor(x), (D,), torch.tensor(gamma), torch.tensor(beta))
    assert np.allclose(ref.numpy(), y)
assert np.allclose(x_hat.mean(-1), 0) and np.allclose(x_hat.var(-1), 1, atol=1e-4)

# LN forgets the scale and the offset of its input:
y_shifted, *_ = layer_norm(5 * x + 7, gamma, beta)
assert np.allclose(y, y_shifted, atol=1e-4)
print("layer norm matches the formula (and torch); invariant to x -> 5x + 7")

# %% [markdown]
# ## 2. The gradient
#
# With g = dy ⊙ γ (the gradient reaching x̂), and means over the D features:
#
#     dx = (1/σ) · (g − mean(g) − x̂ · mean(g ⊙ x̂)),     dγ = Σ dy ⊙ x̂,     dβ = Σ dy
#
# (γ, β are broadcast over batch and positions, so their gradients sum over them: tutorial 02.) The two
# subtracted terms project out the directions LN ignores: dx ⊥ 1 (adding a constant to x changes nothing)
# and dx ⊥ x̂ (scaling x changes nothing).

# %%
dy = rng.standard_normal(x.shape)
g = dy * gamma
dx = (g - g.mean(-1, keepdims=True) - x_hat * (g * x_hat).mean(-1, keepdims=True)) / sigma
dgamma, dbeta = (dy * x_hat).sum(axis=(0, 1)), dy.sum(axis=(0, 1))

xt = mx.tensor(x, dtype="float64", requires_grad=True)
gt = mx.tensor(gamma, requires_grad=True)
bt = mx.tensor(beta, requires_grad=True)
F.layer_norm(xt, D, gt, bt).backward(dy)
assert np.allclose(xt.grad.numpy(), dx) and np.allclose(gt.grad.numpy(), dgamma) and np.allclose(bt.grad.numpy(), dbeta)
assert np.allclose(dx.sum(-1), 0) and np.allclose((dx * x_hat).sum(-1), 0, atol=1e-5)  # dx ⊥ 1, dx ⊥ x̂ (up to ε)
small = [mx.randn(2, 3, 5, requires_grad=True), mx.randn(5, requires_grad=True), mx.randn(5, requires_grad=True)]
assert gradcheck(lambda a, w, b: F.layer_norm(a, 5, w, b), small)
print("hand-derived LN gradient == autograd; gradcheck passed")

# %% [markdown]
# ## 3. Pre-LN vs post-LN: gradient norms per layer at initialisation
#
# We stack N encoder layers (Xavier-initialised, like Xiong et al.), put a classifier on top, compute a
# cross-entropy loss on random targets, and measure ‖∂L/∂W‖ of each layer's feed-forward weights.
#
# * post-LN: every residual sum is re-normalised, so the gradient reaching layer l passes through the
#   Jacobians of all the LayerNorms above it; near the output it is large and does not shrink with depth.
# * pre-LN: the residual stream is an untouched sum x_N = x_0 + Σ F_l(·), so each layer's output reaches
#   the loss through an identity path; the gradients are smaller, and the last layer's shrinks like 1/√N.

# %%
def ffn_grad_norms(num_layers, norm_first, d=64, seed=0):
    mx.manual_seed(seed)
    init = np.random.default_rng(seed)
    encoder = nn.TransformerEncoder(num_layers, d, 4, 4 * d, dropout=0.0, norm_first=norm_first)
    for _, p in encoder.named_parameters():
        if p.ndim == 2:                                        # Xavier uniform: U(±√(6 / (fan_in + fan_out)))
            fan_out, fan_in = p.shape
            p.data[...] = init.uniform(-1, 1, p.shape) * np.sqrt(6 / (fan_in + fan_out))
    head = nn.Linear(d, 10)
    x = mx.randn(8, 16, d)
    target = init.integers(0, 10, 8 * 16)
    F.cross_entropy(head(encoder(x)).reshape(-1, 10), target).backward()
    return np.array([np.sqrt(sum((p.grad.numpy() ** 2).sum() for name, p in layer.named_parameters()
                                 if name.startswith("feed_forward") and name.endswith("weight")))
                     for layer in encoder.layers])


depths = (6, 12) if QUICK else (6, 12, 24)
norms = {(n, first): ffn_grad_norms(n, first) for n in depths for first in (False, True)}
for (n, first), values in norms.items():
    print(f"N={n:2d} {'pre-LN ' if first else 'post-LN'}", np.round(values, 3))

post, pre = norms[(12, False)], norms[(12, True)]
assert post[-4:].mean() > 1.5 * pre[-4:].mean()                 # post-LN: larger near the output
assert post[-1] > post[0] and pre[-1] < pre[0]                  # and growing toward it; pre-LN: shrinking
assert norms[(12, True)][-1] < norms[(6, True)][-1]             # pre-LN's last layer shrinks with depth

figure = new_figure(9, 3.4)
axes = figure.subplots(1, 2, sharey=True)
for ax, first in zip(axes, (False, True)):
    for n in depths:
        ax.plot(np.arange(1, n + 1), norms[(n, first)], "o-", ms=3, label=f"{n} layers")
    ax.set_title("pre-LN: x + F(LN(x))" if first else "post-LN: LN(x + F(x))")
    ax.set_xlabel("layer")
    ax.grid(alpha=0.3)
    ax.legend()
axes[0].set_ylabel("‖∂L/∂W_FFN‖ at init")
save_figure(figure, OUT / "05_pre_vs_post_ln.png")
print("figures written to", OUT)
