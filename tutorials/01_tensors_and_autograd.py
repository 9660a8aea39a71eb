# %% [markdown]
# # 01 · Tensors and autograd
#
# A `minitx.Tensor` is a NumPy array (`.data`) that remembers how it was computed. Every operation is a
# `Function` with a `forward` (arrays in, array out) and a `backward` (the gradient of the output in, one
# gradient per input out). When an input has `requires_grad=True`, the output records a *node* pointing at
# its parents; the chain of nodes is the computation graph, and `loss.backward()` walks it in reverse
# topological order, applying the chain rule once per node (see `minitx/autograd.py`).
#
# In this tutorial we
# 1. build a small graph (a one-layer network and its loss),
# 2. step backward through it **by hand** with NumPy and check the result against `.backward()`,
# 3. write the order of that walk ourselves (a topological sort) and run the chain rule in it,
# 4. draw the graph with `minitx.viz.plot_graph`,
# 5. write our own op as a `Function` and verify its backward with `minitx.testing.gradcheck`.
#
# Run it as a script (`python tutorials/01_tensors_and_autograd.py`) or open it as a notebook.
# `MINITX_TUTORIAL_QUICK=1` picks small settings; figures go to `MINITX_TUTORIAL_OUT` (default `tutorials/figures/`).

# %%

import numpy as np

import minitx as mx
from minitx.testing import gradcheck
from minitx.viz import plot_graph, save_figure, to_dot
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py

mx.manual_seed(0)

# %% [markdown]
# ## 1. Build a graph
#
# A batch of 4 inputs with 3 features goes through `y = tanh(x W + b)`; the loss is the mean squared output.
# Only `W` and `b` need gradients: `x` is data.

# %%
x = mx.randn(4, 3)                          # (B, in)
W = mx.randn(3, 2, requires_grad=True)      # (in, out)
b = mx.zeros(2, requires_grad=True)         # (out,)

z = x @ W + b                               # (B, out): pre-activation
y = z.tanh()                                # (B, out)
loss = (y * y).mean()                       # scalar
print("loss =", loss.item())
print("graph: loss is made by", loss._node.fn.__name__, "from", [type(p).__name__ for p in loss._node.parents])

# %% [markdown]
# ## 2. Backward by hand
#
# Reverse mode starts from dL/dL = 1 and multiplies by one local derivative per op, from the loss back to
# the leaves:
#
# | op | forward | backward (given dL/d out) |
# |----|---------|----------------------------|
# | mean over n elements | L = Σ s / n | dL/ds = 1/n |
# | square | s = y·y | dL/dy = dL/ds · 2y |
# | tanh | y = tanh z | dL/dz = dL/dy · (1 − y²) |
# | add bias | z = u + b | dL/du = dL/dz, dL/db = Σ_batch dL/dz (broadcast → sum, tutorial 02) |
# | matmul | u = x W | dL/dW = xᵀ · dL/du |

# %%
xn, Wn, bn = x.numpy().astype(np.float64), W.numpy().astype(np.float64), b.numpy().astype(np.float64)
zn = xn @ Wn + bn
yn = np.tanh(zn)
n = yn.size

dL_ds = np.full_like(yn, 1.0 / n)   # mean
dL_dy = dL_ds * 2 * yn              # y * y
dL_dz = dL_dy * (1 - yn ** 2)       # tanh
dL_db = dL_dz.sum(axis=0)           # bias was broadcast over the batch
dL_dW = xn.T @ dL_dz                # matmul

loss.backward()                     # autograd does the same walk
print("dL/dW by hand:\n", dL_dW, "\nautograd:\n", W.grad.numpy())
assert np.allclose(dL_dW, W.grad.numpy(), atol=1e-6)
assert np.allclose(dL_db, b.grad.numpy(), atol=1e-6)
assert x.grad is None  # x did not ask for a gradient

# %% [markdown]
# Gradients **accumulate**: a second backward through a fresh graph adds to `.grad` (that is how gradient
# accumulation over micro-batches works). Reset with `zero_grad()`. A graph's saved values are freed after
# one backward, so walking the same graph twice is an error unless the first call passed `retain_graph=True`.

# %%
first = W.grad.numpy().copy()
((x @ W + b).tanh() ** 2).mean().backward()
assert np.allclose(W.grad.numpy(), 2 * first, atol=1e-6)
W.zero_grad()
b.zero_grad()
assert W.grad is None

try:
    loss.backward()  # the graph of `loss` was already walked and freed
    raise AssertionError("a second backward should fail")
except RuntimeError as error:
    print("second backward:", str(error)[:90], "...")

# %% [markdown]
# ## 3. Your turn: the order of the walk
#
# `backward()` may apply a node's chain rule only once the gradient of its output is complete, i.e. after every
# node that used that output. So it visits the tensors in *reverse topological order*: a topological order lists
# each tensor after all the tensors it was computed from (its parents, `t._node.parents`; a leaf has
# `t._node is None`). Write `topological_order(root)` before reading the cell below: a depth-first search that
# appends a tensor after visiting its parents (post-order), skipping tensors already seen (a tensor used twice,
# like `y` in `y * y`, must appear once) and parents that need no gradient.

# %%
def topological_order(root):
    """Every tensor of root's graph that requires grad, each after the tensors it was computed from."""
    order, seen = [], set()

    def visit(t):
        if id(t) in seen:
            return
        seen.add(id(t))
        if t._node is not None:
            for parent in t._node.parents:
                if parent is not None and parent.requires_grad:
                    visit(parent)
        order.append(t)  # post-order: after all its parents

    visit(root)
    return order


loss = ((x @ W + b).tanh() ** 2).mean()       # a fresh graph (the one above was freed by its backward)
order = topological_order(loss)
position = {id(t): i for i, t in enumerate(order)}
assert order[-1] is loss and len(position) == len(order)
for t in order:                                 # every parent comes before its child
    for parent in (t._node.parents if t._node is not None else ()):
        assert parent is None or not parent.requires_grad or position[id(parent)] < position[id(t)]
print("topological order:", [t._node.fn.__name__ if t._node else "leaf" for t in order])

# %% [markdown]
# Now the whole of `backward()` in a few lines: walk the order in reverse, hand each node the gradient of its
# output, and add what its `backward` returns into its parents' gradients (a tensor used twice receives two
# contributions). The leaves end with the same gradients as `loss.backward()`.

# %%
grads = {id(loss): np.ones_like(loss.numpy())}  # dL/dL = 1
for t in reversed(order):
    g = grads[id(t)]
    if t._node is None:
        continue                                # a leaf: its gradient is complete
    parent_grads = t._node.fn.backward(t._node.ctx, g)
    parent_grads = parent_grads if isinstance(parent_grads, tuple) else (parent_grads,)
    for parent, pg in zip(t._node.parents, parent_grads):
        if parent is not None and parent.requires_grad and pg is not None:
            grads[id(parent)] = grads.get(id(parent), 0) + pg

loss.backward()
assert np.allclose(grads[id(W)], W.grad.numpy(), atol=1e-6) and np.allclose(grads[id(b)], b.grad.numpy(), atol=1e-6)
W.zero_grad()
b.zero_grad()
print("our walk gives autograd's dL/dW and dL/db")

# %% [markdown]
# The recursive `visit` is the short way to write it, but each op of the graph costs a Python stack frame: a
# graph a few thousand ops deep (an unrolled RNN, a long loop of updates) exceeds Python's recursion limit.
# minitx's own `_topological_order` (minitx/autograd.py) keeps an explicit stack instead, so depth is no limit.

# %%
deep = W.sum()
for _ in range(3000):
    deep = deep * 1.0                          # a chain 3000 ops deep
try:
    topological_order(deep)
    raise AssertionError("the recursive sort should run out of stack")
except RecursionError:
    print("recursive topological_order: RecursionError on a 3000-op chain")
deep.backward()                                 # the explicit stack has no such limit
assert np.allclose(W.grad.numpy(), 1.0)
W.zero_grad()

# %% [markdown]
# ## 4. Draw the graph
#
# `minitx.viz.plot_graph` walks the same `_node` links that `backward()` walks and draws them left to right:
# leaves that get a gradient in green, constants in grey, ops in blue. `to_dot` gives Graphviz text.

# %%
loss = ((x @ W + b).tanh() ** 2).mean()
figure = plot_graph(loss, names={"x": x, "W": W, "b": b, "loss": loss})
save_figure(figure, OUT / "01_graph.png")
dot = to_dot(loss, names={"x": x, "W": W, "b": b})
print(dot.splitlines()[0], "...", len(dot.splitlines()), "lines of DOT")
assert "MatMul" in dot and "Tanh" in dot

# %% [markdown]
# ## 5. Your own op: softplus as a `Function`
#
# softplus(x) = log(1 + eˣ), a smooth ReLU. Its derivative is the logistic sigmoid σ(x) = 1 / (1 + e⁻ˣ).
# The stable forward is `max(x, 0) + log1p(exp(-|x|))` (no overflow for large |x|). The forward saves what
# the backward needs (`ctx.save`), the backward returns one gradient per input.

# %%
class Softplus(mx.Function):
    """y = log(1 + eˣ);  dy/dx = σ(x)."""

    @staticmethod
    def forward(ctx, x):                       # x: any shape
        ctx.save(x)
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad):                   # grad: same shape as x
        (x,) = ctx.saved
        return grad / (1 + np.exp(-x))


def softplus(t):
    return Softplus.apply(t)


t = mx.randn(3, 4, requires_grad=True)
assert gradcheck(softplus, [t])                           # central differences in float64
assert gradcheck(lambda a: softplus(a * a).sum(axis=1), [t])  # composed with other ops
print("gradcheck passed for Softplus")

# %% [markdown]
# gradcheck is worth its cost: a classic slip (forgetting the incoming `grad`) is caught at once.

# %%
class BrokenSoftplus(Softplus):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return 1 / (1 + np.exp(-x))              # bug: ignores grad


assert not gradcheck(BrokenSoftplus.apply, [t], raise_exception=False)
print("gradcheck caught the broken backward")

# %% [markdown]
# Finally, the op and its autograd derivative over a range, next to the ReLU it smooths.

# %%
grid = mx.tensor(np.linspace(-5, 5, 201 if not QUICK else 61), requires_grad=True)
softplus(grid).sum().backward()   # d/dx of the sum = the elementwise derivative
assert np.allclose(grid.grad.numpy(), 1 / (1 + np.exp(-grid.numpy())), atol=1e-6)

figure = new_figure(6, 3.2)
ax = figure.add_subplot()
ax.plot(grid.numpy(), softplus(grid).numpy(), label="softplus(x)")
ax.plot(grid.numpy(), grid.grad.numpy(), label="d softplus / dx (autograd)")
ax.plot(grid.numpy(), np.maximum(grid.numpy(), 0), "k:", lw=1, label="relu(x)")
ax.legend()
ax.grid(alpha=0.3)
save_figure(figure, OUT / "01_softplus.png")
print("figures written to", OUT)
