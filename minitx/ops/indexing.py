"""Selecting elements: ``x[index]``, ``where``, ``masked_fill``.

``__getitem__`` backward *scatters* the gradient into zeros of the input's shape. With integer-array
indexing an element can be picked several times, so the scatter must accumulate (``np.add.at``),
not assign: dx[i] = Σ over picks of i of dy.
"""
import numpy as np

from minitx.autograd import Function
from minitx.ops.broadcast import broadcast_shapes, unbroadcast
from minitx.ops.elementwise import promote


def _is_basic(index) -> bool:
    """True for slices/ints/None/Ellipsis only: then each element is picked at most once."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (slice, int, np.integer, type(None), type(Ellipsis))) for i in items)


class GetItem(Function):
    """y = x[index]; dx = zeros with dy scattered (accumulating) at the picked positions."""

    @staticmethod
    def forward(ctx, x, index):
        try:
            y = x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {x.shape})") from None
        ctx.save(x.shape, x.dtype, index)
        return y

    @staticmethod
    def backward(ctx, grad):
        shape, dtype, index = ctx.saved
        dx = np.zeros(shape, dtype=grad.dtype)
        if _is_basic(index):
            dx[index] = grad
        else:
            np.add.at(dx, index, grad)
        return dx


class Where(Function):
    """y = cond ? a : b;  da = dy where cond, db = dy elsewhere (each unbroadcast)."""

    @staticmethod
    def forward(ctx, cond, a, b):
        broadcast_shapes("where", broadcast_shapes("where", cond.shape, a.shape), b.shape)
        cond = cond.astype(bool)
        a, b = promote(a, b)
        ctx.save(cond, a.shape, b.shape)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        cond, a_shape, b_shape = ctx.saved
        zero = np.zeros((), dtype=grad.dtype)
        return None, unbroadcast(np.where(cond, grad, zero), a_shape), unbroadcast(np.where(cond, zero, grad), b_shape)


class MaskedFill(Function):
    """y = x with ``value`` where mask is True; dx = dy with zeros at the filled positions."""

    @staticmethod
    def forward(ctx, x, mask, value):
        mask = np.asarray(mask, dtype=bool)
        try:
            np.broadcast_to(mask, x.shape)
        except ValueError:
            raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to tensor shape {x.shape}") from None
        ctx.save(mask)
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved
        return np.where(mask, np.zeros((), dtype=grad.dtype), grad), None, None
