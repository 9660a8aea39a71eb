"""The computation graph and reverse-mode automatic differentiation, on plain NumPy arrays.

Every op is a ``Function`` with a ``forward`` that computes the result from arrays and a ``backward``
that maps the output gradient to one gradient per input (see ``minitx/ops/``). When any input requires a
gradient, ``Function.apply`` records a ``Node`` on the output: the function, its saved context, and its
parent tensors. That chain of nodes *is* the graph.

``run_backward`` walks the graph in reverse topological order (the chain rule, applied once per node),
accumulating ``dL/dx`` into ``x.grad`` for every leaf tensor with ``requires_grad=True``:

    dL/dx = sum over consumers c of  backward_c(dL/d out_c)

The walk is iterative (an explicit stack, no Python recursion) so a chain of 10 000 ops works. The saved
arrays are freed after one backward unless ``retain_graph=True``, exactly like PyTorch. ``Tensor.backward``
(minitx/tensor.py) is the entry point.
"""
import contextlib
import threading
import time

import numpy as np

from minitx.random import get_rng_state, set_rng_state

_grad_mode = threading.local()

# The open ``minitx.profiler.Profile`` or None: ``Function.apply`` and ``run_backward`` report each op to it.
# When no profile is open, that costs one ``is not None`` test per op.
active_profiler = None


def is_grad_enabled() -> bool:
    return getattr(_grad_mode, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Context manager: ops inside build no graph (for evaluation and optimizer updates)."""
    previous = is_grad_enabled()
    _grad_mode.enabled = False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


@contextlib.contextmanager
def enable_grad():
    previous = is_grad_enabled()
    _grad_mode.enabled = True
    try:
        yield
    finally:
        _grad_mode.enabled = previous


class Context:
    """What a Function's forward leaves for its backward: ``ctx.save(...)`` / ``ctx.saved``."""

    def __init__(self):
        self.saved = ()
        self.needs_input_grad = ()

    def save(self, *values):
        self.saved = values


class Node:
    """One recorded op application: ``fn.backward(ctx, grad)`` gives the parents' gradients."""

    __slots__ = ("fn", "ctx", "parents", "freed")

    def __init__(self, fn, ctx, parents):
        self.fn = fn
        self.ctx = ctx
        self.parents = parents  # tuple of Tensor | None, one per positional input of forward
        self.freed = False


class Function:
    """Base class of every differentiable op.

    Subclasses define two static methods on plain NumPy arrays::

        forward(ctx, *inputs, **options) -> ndarray
        backward(ctx, grad_output) -> ndarray | None  or a tuple with one entry per input

    and are called through ``apply``, which unwraps Tensors, runs forward, and records the graph.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    # The class that wraps outputs: ``minitx.tensor`` sets it when it defines Tensor, so this module and the
    # ops built on it never import tensor.py — the imports run one way: tensor -> ops -> autograd.
    tensor_type = None

    @classmethod
    def apply(cls, *args, **kwargs):
        """Unwrap the Tensor arguments, run ``forward`` on arrays, wrap the result, and record a Node
        when any input requires a gradient (and grad mode is on)."""
        tensor = Function.tensor_type
        arrays = [a.data if isinstance(a, tensor) else a for a in args]
        ctx = Context()
        ctx.needs_input_grad = tuple(isinstance(a, tensor) and a.requires_grad for a in args)
        requires_grad = is_grad_enabled() and any(ctx.needs_input_grad)
        if active_profiler is None:
            out = cls.forward(ctx, *arrays, **kwargs)
        else:
            start = time.perf_counter()
            out = cls.forward(ctx, *arrays, **kwargs)
            active_profiler.record(cls.__name__, "forward", time.perf_counter() - start, (out,), ctx.saved)
        result = tensor(out, requires_grad=requires_grad, _copy=False)
        if requires_grad:
            parents = tuple(a if isinstance(a, tensor) else None for a in args)
            result._node = Node(cls, ctx, parents)
        return result


class Checkpoint(Function):
    """Gradient checkpointing (Chen et al., 2016, "Training Deep Nets with Sublinear Memory Cost"):
    y = run(x), keeping only x for backward instead of every activation inside ``run``.

    Forward runs ``run`` under ``no_grad`` (no graph, so its intermediates are freed at once) and saves x and
    the random state. Backward restores that state — dropout then draws the same masks — re-runs ``run`` on
    a fresh leaf with grad on, and back-propagates ``grad`` through it: the parameters used inside ``run``
    get their gradients directly, x's is returned. Cost: one more forward of ``run`` per backward; saving:
    the activations of ``run`` are alive one layer at a time instead of all at once.
    """

    @staticmethod
    def forward(ctx, x, *params, run):  # params: only so that the node is recorded when they need grads
        ctx.save(x, get_rng_state(), run)
        with no_grad():
            return run(Function.tensor_type(x, _copy=False)).data

    @staticmethod
    def backward(ctx, grad):
        x, rng_state, run = ctx.saved
        leaf = Function.tensor_type(x, requires_grad=True, _copy=False)
        resume_state = get_rng_state()
        set_rng_state(rng_state)
        try:
            with enable_grad():
                y = run(leaf)
        finally:
            set_rng_state(resume_state)
        y.backward(grad)
        return leaf.grad.data


def checkpoint(run, x, params):
    """``run(x)`` (Tensor -> Tensor, using the Tensors ``params``), recomputed in backward (``Checkpoint``)."""
    return Checkpoint.apply(x, *params, run=run)


def _topological_order(root) -> list:
    """Tensors of the graph under ``root``, every tensor after all the tensors it depends on.

    Depth-first search with an explicit stack of (tensor, visited-children?) pairs: a tensor is
    emitted on its second visit, once all its parents are emitted (post-order).
    """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        t, parents_done = stack.pop()
        if parents_done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._node is not None:
            for parent in t._node.parents:
                if parent is not None and parent.requires_grad and id(parent) not in seen:
                    stack.append((parent, False))
    return order


def call_backward(node: Node, grad: np.ndarray) -> tuple:
    """``node.fn.backward`` as a tuple (timed when a profile is open)."""
    start = time.perf_counter() if active_profiler is not None else 0.0
    parent_grads = node.fn.backward(node.ctx, grad)
    if not isinstance(parent_grads, tuple):
        parent_grads = (parent_grads,)
    if active_profiler is not None:
        active_profiler.record(node.fn.__name__, "backward", time.perf_counter() - start, parent_grads)
    return parent_grads


def run_backward(root, grad: np.ndarray, retain_graph: bool) -> None:
    """Reverse-mode sweep: visit tensors from ``root`` back to the leaves, applying the chain rule."""
    grads = {id(root): grad}
    for t in reversed(_topological_order(root)):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        if t._node is None or t._retains_grad:
            t._accumulate_grad(g)
        node = t._node
        if node is None:
            continue
        if node.freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (through {node.fn.__name__}); its saved "
                "values were freed after the first backward. Pass retain_graph=True to the first backward()."
            )
        parent_grads = call_backward(node, g)
        if len(parent_grads) < len(node.parents):
            parent_grads = parent_grads + (None,) * (len(node.parents) - len(parent_grads))
        for parent, pg in zip(node.parents, parent_grads):
            if parent is None or pg is None or not parent.requires_grad:
                continue
            if pg.shape != parent.shape:
                raise RuntimeError(
                    f"{node.fn.__name__}.backward returned a gradient of shape {pg.shape} "
                    f"for an input of shape {parent.shape}"
                )
            key = id(parent)
            grads[key] = grads[key] + pg if key in grads else pg
        if not retain_graph:
            node.ctx.saved = ()
            node.freed = True
