"""Reductions over dims: sum, mean, max, min, var (each with ``keepdim``; dims follow ops/dims.py).

The backward of a reduction *re-expands* the gradient over the reduced axes: first put the reduced
axes back as size-1 axes (``_restore_axes``), then broadcast.
"""
import numpy as np

from minitx.autograd import Function
from minitx.ops.dims import normalize_dims


def _floating(x, op: str) -> None:
    """mean and var need a floating-point input, as in PyTorch (an integer mean has no integer answer)."""
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: input dtype must be floating point, got {x.dtype} (convert with .float())")


def _restore_axes(grad: np.ndarray, axes: tuple, keepdim: bool) -> np.ndarray:
    """Give ``grad`` back its reduced axes as size-1 axes so it broadcasts against the input."""
    return grad if keepdim else np.expand_dims(grad, axes)


class Sum(Function):
    """y = Σ_axes x;  dy/dx = 1 for every summed element."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        axes = normalize_dims(dim, x.ndim, "sum")
        ctx.save(x.shape, axes, keepdim)
        return np.asarray(x.sum(axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx, grad):
        shape, axes, keepdim = ctx.saved
        # BEGIN SOLUTION hint="every summed element gets the gradient of its sum: put the reduced axes back (_restore_axes) and np.broadcast_to the input shape (copy: the result must be writable)"
        return np.broadcast_to(_restore_axes(grad, axes, keepdim), shape).copy()
        # END SOLUTION


class Mean(Function):
    """y = (1/n) Σ_axes x;  dy/dx = 1/n, n = number of reduced elements."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        _floating(x, "mean")
        axes = normalize_dims(dim, x.ndim, "mean")
        ctx.save(x.shape, axes, keepdim)
        return np.asarray(x.mean(axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx, grad):
        shape, axes, keepdim = ctx.saved
        # BEGIN SOLUTION hint="like Sum, divided by n = the number of reduced elements (the product of the reduced axes' sizes)"
        n = int(np.prod([shape[a] for a in axes])) if axes else 1
        return np.broadcast_to(_restore_axes(grad, axes, keepdim) / n, shape).copy()
        # END SOLUTION


class _Extremum(Function):
    """Shared backward of max/min: the gradient goes to the arg-extreme elements, split evenly on ties
    (PyTorch's rule for full reductions; it keeps the gradient an exact derivative of a symmetric choice)."""

    reduce = None

    @classmethod
    def forward(cls, ctx, x, dim=None, keepdim=False):
        axes = normalize_dims(dim, x.ndim, cls.__name__.lower())
        empty = [a for a in axes if x.shape[a] == 0]
        if empty:  # the max of nothing is undefined (other axes may be empty: the result is then empty)
            raise IndexError(f"{cls.__name__.lower()}: expected reduction dim {empty[0]} to have non-zero size, "
                             f"got shape {x.shape}")
        y = np.asarray(cls.reduce(x, axis=axes, keepdims=True))
        ctx.save(x, y, axes, keepdim)
        return y if keepdim else np.squeeze(y, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        x, y, axes, keepdim = ctx.saved
        # BEGIN SOLUTION hint="the gradient flows only to the elements equal to the extremum y (kept with keepdims); split it evenly between ties: hit = (x == y) / count of hits over the axes"
        hit = (x == y).astype(grad.dtype)
        hit /= hit.sum(axis=axes, keepdims=True)
        return _restore_axes(grad, axes, keepdim) * hit
        # END SOLUTION


class Max(_Extremum):
    """y = max over axes."""

    reduce = staticmethod(np.max)


class Min(_Extremum):
    """y = min over axes."""

    reduce = staticmethod(np.min)


class Var(Function):
    """var = Σ (x - mean)² / (n - correction);  dvar/dx = 2 (x - mean) / (n - correction).

    ``correction=1`` is the unbiased estimator (torch.var's default); layer norm uses 0.
    """

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False, correction=1):
        _floating(x, "var")
        axes = normalize_dims(dim, x.ndim, "var")
        n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        centered = x - x.mean(axis=axes, keepdims=True)
        ctx.save(centered, axes, keepdim, max(n - correction, 0))
        with np.errstate(divide="ignore", invalid="ignore"):  # n <= correction: 0/0 = NaN, as in torch
            return np.asarray((centered * centered).sum(axis=axes, keepdims=keepdim) / max(n - correction, 0))

    @staticmethod
    def backward(ctx, grad):
        centered, axes, keepdim, dof = ctx.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            return _restore_axes(grad, axes, keepdim) * 2.0 * centered / dof
