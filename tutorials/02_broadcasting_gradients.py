# %% [markdown]
# # 02 · Broadcasting gradients: why the backward *sums*
#
# NumPy broadcasting lets `x (3, 1) + b (4,)` produce a `(3, 4)` result: `x` is copied along the columns,
# `b` along the rows. No copy is made in memory, but mathematically every output element used one of the
# copies. So the gradient of an input is the **sum** of the gradients of all its copies:
#
#     dL/dx = unbroadcast(dL/dy, x.shape)
#           = dL/dy summed over the axes NumPy prepended and over the axes where x had size 1.
#
# minitx keeps this rule in one place, `minitx/ops/broadcast.py::unbroadcast`, and every binary op calls it.

# %%

import numpy as np

import minitx as mx
from minitx.ops.broadcast import unbroadcast
from minitx.testing import gradcheck
from minitx.viz import save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK, optional_torch  # quick mode (CI) and the figure folder: tutorials/_settings.py

torch = optional_torch()  # the reference to compare with, when installed

mx.manual_seed(0)

# %% [markdown]
# ## 1. The smallest example
#
# `y = x + b` with x (3, 1) and b (4,), loss = Σ y · w for a fixed weight w (3, 4), so dL/dy = w.
# Each x_i appears in 4 outputs (a row), each b_j in 3 outputs (a column).

# %%
x = mx.tensor([[1.0], [2.0], [3.0]], requires_grad=True)   # (3, 1)
b = mx.tensor([10.0, 20.0, 30.0, 40.0], requires_grad=True)  # (4,)
w = mx.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))  # dL/dy
y = x + b                                                    # (3, 4)
(y * w).sum().backward()

print("dL/dy =\n", w.numpy())
print("x.grad (row sums)    =", x.grad.numpy().ravel())
print("b.grad (column sums) =", b.grad.numpy())
assert np.array_equal(x.grad.numpy(), w.numpy().sum(axis=1, keepdims=True))
assert np.array_equal(b.grad.numpy(), w.numpy().sum(axis=0))

# %% [markdown]
# **Why a sum?** Nudge b_0 by ε: every element of column 0 moves by ε, so L moves by ε · Σ_i w_i0.
# A finite difference says exactly that:

# %%
eps = 1e-3
b_plus = b.numpy() + np.array([eps, 0, 0, 0], dtype=np.float32)
loss_plus = ((x.numpy() + b_plus) * w.numpy()).sum()
loss_zero = ((x.numpy() + b.numpy()) * w.numpy()).sum()
print("finite difference dL/db_0 ≈", (loss_plus - loss_zero) / eps, " autograd:", b.grad.numpy()[0])
assert abs((loss_plus - loss_zero) / eps - b.grad.numpy()[0]) < 0.1

# %% [markdown]
# ## 2. `unbroadcast` step by step
#
# Two steps: sum away the leading axes NumPy *prepended* (the input had fewer dimensions), then sum, with
# `keepdims`, the axes where the input had size 1.

# %%
grad = np.random.default_rng(0).standard_normal((5, 3, 4))    # the gradient of a (5, 3, 4) output
for shape in [(5, 3, 4), (3, 4), (4,), (3, 1), (1, 4), (5, 1, 1), ()]:
    reduced = unbroadcast(grad, shape)
    extra = grad.ndim - len(shape)
    by_hand = grad.sum(axis=tuple(range(extra))) if extra else grad
    by_hand = by_hand.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True).reshape(shape)
    assert reduced.shape == shape and np.allclose(reduced, by_hand)
    print(f"{str(shape):>10} <- sums over {grad.ndim - len(shape)} prepended axes and size-1 axes "
          f"{[i for i, n in enumerate(shape) if n == 1]}")

# %% [markdown]
# ## 3. Where it matters: the bias of a linear layer
#
# `y = x Wᵀ + b` with x (B, in) and b (out,): b is broadcast over the batch, so `b.grad` is the sum over the
# batch of dL/dy. The same holds for every `γ`, `β` of LayerNorm (broadcast over batch *and* positions).
# We check against PyTorch, which follows the same rule.

# %%
batch = 8 if QUICK else 32
xs = np.random.default_rng(1).standard_normal((batch, 5)).astype(np.float32)
layer = mx.nn.Linear(5, 3)
out = layer(mx.tensor(xs))
(out * out).sum().backward()

assert np.allclose(layer.bias.grad.numpy(), (2 * out.numpy()).sum(axis=0), atol=1e-4)
if torch is not None:  # the same gradients from PyTorch
    tw = torch.tensor(layer.weight.numpy(), requires_grad=True)
    tb = torch.tensor(layer.bias.numpy(), requires_grad=True)
    tout = torch.tensor(xs) @ tw.T + tb
    (tout * tout).sum().backward()
    assert np.allclose(layer.bias.grad.numpy(), tb.grad.numpy(), atol=1e-4)
    assert np.allclose(layer.weight.grad.numpy(), tw.grad.numpy(), atol=1e-4)
    print("Linear bias/weight gradients match PyTorch")

# %% [markdown]
# ## 4. Every broadcasting op, checked numerically
#
# `gradcheck` perturbs each input element and compares with autograd, so a missing (or extra) sum shows up
# as a wrong gradient. Some awkward pairs:

# %%
pairs = [((2, 1, 3), (4, 1)), ((3,), (2, 3)), ((1,), (2, 2)), ((2, 3), ())]
ops = {"add": lambda a, c: a + c, "sub": lambda a, c: a - c, "mul": lambda a, c: a * c,
       "div": lambda a, c: a / (c * c + 1.0), "pow": lambda a, c: (a * a + 1.0) ** c}
for shape_a, shape_c in pairs[: 2 if QUICK else None]:
    for name, op in ops.items():
        a = mx.randn(*shape_a, requires_grad=True)
        c = mx.randn(*shape_c, requires_grad=True)
        assert gradcheck(op, [a, c]), (name, shape_a, shape_c)
print("gradcheck passed for add/sub/mul/div/pow on broadcasting pairs")

# %% [markdown]
# ## 5. Picture: a (3, 4) gradient and what each input receives

# %%
figure = new_figure(8, 3)
grid = figure.add_gridspec(1, 3, width_ratios=(4, 1.2, 4))
ax = figure.add_subplot(grid[0])
ax.imshow(w.numpy(), cmap="viridis")
for (i, j), value in np.ndenumerate(w.numpy()):
    ax.text(j, i, f"{value:g}", ha="center", va="center", color="w")
ax.set_title("dL/dy  (3, 4)")
ax = figure.add_subplot(grid[1])
ax.imshow(x.grad.numpy(), cmap="magma")
for (i, j), value in np.ndenumerate(x.grad.numpy()):
    ax.text(j, i, f"{value:g}", ha="center", va="center", color="w")
ax.set_title("x.grad (3, 1)\nrow sums")
ax.set_xticks([])
ax = figure.add_subplot(grid[2])
ax.bar(range(4), b.grad.numpy(), color="C1")
ax.set_title("b.grad (4,): column sums")
ax.set_xticks(range(4))
save_figure(figure, OUT / "02_unbroadcast.png")
print("figures written to", OUT)
