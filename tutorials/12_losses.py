# %% [markdown]
# # 12 · Losses: cross-entropy vs MSE, label smoothing, ignore_index
#
# A classifier outputs logits z ∈ ℝᶜ; softmax turns them into probabilities p. The loss every model in minitx
# trains with is the **cross-entropy** −log p_target, whose gradient with respect to the logits is strikingly
# simple:
#
#     L = −log softmax(z)_t,      ∂L/∂z = p − onehot(t)
#
# We check it, see why squared error on the probabilities is a poor classification loss (its gradient vanishes
# exactly when the model is confidently wrong), then look at two options of `F.cross_entropy`:
# `label_smoothing` (Szegedy et al., 2016, §7) and `ignore_index` (the −100 labels of MLM and padding).

# %%

import numpy as np

import minitx as mx
from minitx import nn
from minitx.nn import functional as F
from minitx.optim import SGD
from minitx.testing import gradcheck
from minitx.viz import save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK, optional_torch  # quick mode (CI) and the figure folder: tutorials/_settings.py

torch = optional_torch()  # the reference to compare with, when installed

mx.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Cross-entropy and its gradient

# %%
N, C = 6, 4
logits_np = rng.standard_normal((N, C)).astype(np.float32) * 2
target = rng.integers(0, C, N)
logits = mx.tensor(logits_np, requires_grad=True)
loss = F.cross_entropy(logits, target)
loss.backward()

p = np.exp(logits_np - logits_np.max(1, keepdims=True))
p /= p.sum(1, keepdims=True)
by_hand = -np.log(p[np.arange(N), target]).mean()
onehot = np.eye(C)[target]
assert np.isclose(loss.item(), by_hand, rtol=1e-5)
assert np.allclose(logits.grad.numpy(), (p - onehot) / N, atol=1e-6)        # "mean" divides by N
if torch is not None:
    assert np.isclose(loss.item(), torch.nn.functional.cross_entropy(torch.tensor(logits_np), torch.tensor(target)).item(),
                      rtol=1e-5)
assert gradcheck(lambda z: F.cross_entropy(z, target), [mx.randn(N, C, requires_grad=True)])
print(f"cross-entropy {loss.item():.4f} == by hand (== torch); gradient == (softmax - onehot) / N")

# %% [markdown]
# ## 2. Why not mean squared error on the probabilities?
#
# Two classes, the target is class 0, the logits are (z, 0): z ≪ 0 means *confidently wrong*. With
# cross-entropy the gradient on z is p₀ − 1 → −1: a strong push. With MSE on the probabilities the gradient
# carries a factor p₀(1 − p₀) from the softmax, which → 0: the model barely learns from its worst mistakes.

# %%
z = np.linspace(-10, 10, 81 if QUICK else 401).astype(np.float32)
grid = mx.tensor(np.stack([z, np.zeros_like(z)], axis=1), requires_grad=True)      # (G, 2)
zeros = np.zeros(len(z), dtype=np.int64)
F.cross_entropy(grid, zeros, reduction="sum").backward()
ce_grad = grid.grad.numpy()[:, 0].copy()
grid.zero_grad()
F.mse_loss(grid.softmax(-1), np.eye(2, dtype=np.float32)[zeros], reduction="sum").backward()
mse_grad = grid.grad.numpy()[:, 0].copy()
worst = 0                                               # index of z = -10
print(f"at z = {z[worst]:.0f}: dCE/dz = {ce_grad[worst]:.4f}, dMSE/dz = {mse_grad[worst]:.6f}")
assert abs(ce_grad[worst]) > 0.99 and abs(mse_grad[worst]) < 1e-3

# %% [markdown]
# The same effect in training: a linear classifier on three Gaussian blobs, started *confidently wrong*
# (large weights pointing the wrong way), trained with plain SGD on each loss.

# %%
centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
labels = rng.integers(0, 3, 300)
points = (centers[labels] + 0.6 * rng.standard_normal((300, 2))).astype(np.float32)
steps = 60 if QUICK else 200
curves = {}
for name in ("cross-entropy", "MSE on softmax"):
    mx.manual_seed(1)
    model = nn.Linear(2, 3)
    model.weight.data[...] = -4 * centers.astype(np.float32)      # each class's weight points away from it
    optimizer = SGD(model.parameters(), lr=0.5)
    accuracy = []
    for step in range(steps):
        out = model(mx.tensor(points))
        if name == "cross-entropy":
            loss = F.cross_entropy(out, labels)
        else:
            loss = F.mse_loss(out.softmax(-1), np.eye(3, dtype=np.float32)[labels])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        accuracy.append(float((out.numpy().argmax(-1) == labels).mean()))
    curves[name] = accuracy
    print(f"{name:>15}: accuracy {accuracy[0]:.0%} -> {accuracy[-1]:.0%} after {steps} SGD steps")
assert curves["cross-entropy"][-1] > 0.9
assert curves["cross-entropy"][-1] > curves["MSE on softmax"][-1]

figure = new_figure(10, 3.3)
axes = figure.subplots(1, 2)
axes[0].plot(z, -ce_grad, label="cross-entropy")
axes[0].plot(z, -mse_grad, label="MSE on softmax")
axes[0].set_xlabel("logit of the true class (other logit 0)")
axes[0].set_ylabel("−∂L/∂z  (push toward the target)")
axes[0].legend()
axes[0].grid(alpha=0.3)
for name, accuracy in curves.items():
    axes[1].plot(accuracy, label=name)
axes[1].set_xlabel("SGD step")
axes[1].set_ylabel("training accuracy")
axes[1].set_title("start: confidently wrong", fontsize=9)
axes[1].legend()
axes[1].grid(alpha=0.3)
save_figure(figure, OUT / "12_ce_vs_mse.png")

# %% [markdown]
# ## 3. Label smoothing
#
# Replace the one-hot target by q = (1 − ε)·onehot + ε/C. The loss −Σ q log p is then minimised at p = q, a
# *finite* logit gap: log((1 − ε + ε/C) / (ε/C)), instead of pushing the correct logit to +∞. The gradient is
# still p − q.

# %%
eps = 0.1
smoothed = F.cross_entropy(mx.tensor(logits_np), target, label_smoothing=eps)
q = (1 - eps) * onehot + eps / C
logp = np.log(p)
assert np.isclose(smoothed.item(), -(q * logp).sum(1).mean(), rtol=1e-5)
if torch is not None:
    reference = torch.nn.functional.cross_entropy(torch.tensor(logits_np), torch.tensor(target), label_smoothing=eps)
    assert np.isclose(smoothed.item(), reference.item(), rtol=1e-5)

free = mx.zeros(1, C, requires_grad=True)                     # optimise the logits themselves
optimizer = SGD([free], lr=5.0)
for _ in range(300 if QUICK else 1000):
    loss = F.cross_entropy(free, [0], label_smoothing=eps)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
gap = free.numpy()[0, 0] - free.numpy()[0, 1:].mean()
optimum = np.log((1 - eps + eps / C) / (eps / C))
print(f"label smoothing {eps}: learned logit gap {gap:.3f}, theory {optimum:.3f} (without smoothing: → ∞)")
assert abs(gap - optimum) < 0.05

# %% [markdown]
# ## 4. ignore_index
#
# Positions whose target equals `ignore_index` (−100 by default) contribute nothing: not to the sum, not to the
# count the mean divides by, and they get a zero gradient. BERT's MLM labels use it for unmasked positions, and
# sequence models use it for padding.

# %%
masked_target = target.copy()
masked_target[[1, 4]] = -100
logits = mx.tensor(logits_np, requires_grad=True)
loss = F.cross_entropy(logits, masked_target)
loss.backward()
keep = masked_target != -100
assert np.isclose(loss.item(), -np.log(p[np.arange(N), target])[keep].mean(), rtol=1e-5)
assert np.all(logits.grad.numpy()[~keep] == 0)
assert np.allclose(logits.grad.numpy()[keep], (p - onehot)[keep] / keep.sum(), atol=1e-6)
if torch is not None:
    torch_loss = torch.nn.functional.cross_entropy(torch.tensor(logits_np), torch.tensor(masked_target))
    assert np.isclose(loss.item(), torch_loss.item(), rtol=1e-5)
print(f"ignore_index: mean over the {keep.sum()} kept rows; ignored rows get zero gradient")
print("figures written to", OUT)
