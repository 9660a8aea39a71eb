"""Shape ops: reshape/view, permute/transpose, expand, concat, stack, contiguous.

They move or copy elements without arithmetic, so each backward moves the gradient back:
reshape -> reshape back, permute -> inverse permutation, expand -> sum (unbroadcast),
concat -> slice the gradient into the pieces.
"""
import numpy as np

from minitx.autograd import Function
from minitx.ops.broadcast import unbroadcast
from minitx.ops.dims import normalize_dim


def resolve_shape(op: str, old_shape: tuple, new_shape: tuple) -> tuple:
    """Fill in one -1 and check the element count, with a clear error naming both shapes."""
    new_shape = tuple(int(n) for n in new_shape)
    size = int(np.prod(old_shape))
    if new_shape.count(-1) > 1:
        raise ValueError(f"{op}: only one dimension can be -1, got {new_shape}")
    if -1 in new_shape:
        known = int(np.prod([n for n in new_shape if n != -1]))
        if known == 0 or size % known:
            raise ValueError(f"{op}: cannot reshape tensor of shape {old_shape} into {new_shape}")
        new_shape = tuple(size // known if n == -1 else n for n in new_shape)
    if int(np.prod(new_shape)) != size:
        raise ValueError(f"{op}: cannot reshape tensor of shape {old_shape} ({size} elements) into {new_shape}")
    return new_shape


class Reshape(Function):
    """y = x viewed with a new shape (a NumPy view when possible); dx = dy reshaped back."""

    @staticmethod
    def forward(ctx, x, shape):
        shape = resolve_shape("reshape", x.shape, shape)
        ctx.save(x.shape)
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved
        return grad.reshape(shape)


class Permute(Function):
    """y = x with axes reordered (a view); dx = dy with the inverse permutation."""

    @staticmethod
    def forward(ctx, x, dims):
        if len(dims) != x.ndim:
            raise ValueError(f"permute: {len(dims)} dims {dims} given for a tensor of shape {x.shape}")
        dims = tuple(normalize_dim(d, x.ndim, "permute") for d in dims)
        if sorted(dims) != list(range(x.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} axes of shape {x.shape}")
        ctx.save(dims)
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx, grad):
        (dims,) = ctx.saved
        return np.transpose(grad, np.argsort(dims))


class Expand(Function):
    """y = x broadcast to ``shape`` (a read-only view); dx = unbroadcast(dy, x.shape)."""

    @staticmethod
    def forward(ctx, x, shape):
        shape = tuple(x.shape[i - (len(shape) - x.ndim)] if n == -1 else n for i, n in enumerate(shape))
        try:
            y = np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: shape {x.shape} cannot be expanded to {shape}") from None
        ctx.save(x.shape)
        return y

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved
        return unbroadcast(grad, shape)


class Contiguous(Function):
    """A C-contiguous copy (what the C++ kernels want); the gradient passes through."""

    @staticmethod
    def forward(ctx, x):
        return np.ascontiguousarray(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def _check_same_except(op, arrays, dim):
    ref = arrays[0].shape
    for a in arrays[1:]:
        if a.ndim != len(ref) or any(n != m for i, (n, m) in enumerate(zip(ref, a.shape)) if i != dim):
            raise ValueError(f"{op}: shapes must match except along dim {dim}, got {ref} and {a.shape}")


class Concat(Function):
    """y = [x1; x2; ...] along ``dim``; each dx_i is its slice of dy."""

    @staticmethod
    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("concat: need at least one tensor")
        dim = normalize_dim(dim, xs[0].ndim, "concat")
        _check_same_except("concat", xs, dim)
        ctx.save(dim, np.cumsum([x.shape[dim] for x in xs])[:-1])
        return np.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        dim, offsets = ctx.saved
        return tuple(np.split(grad, offsets, axis=dim))


class Stack(Function):
    """y = the inputs stacked along a new axis; each dx_i = dy[..., i, ...]."""

    @staticmethod
    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("stack: need at least one tensor")
        for x in xs[1:]:
            if x.shape != xs[0].shape:
                raise ValueError(f"stack: all tensors need the same shape, got {xs[0].shape} and {x.shape}")
        dim = normalize_dim(dim, xs[0].ndim + 1, "stack")
        ctx.save(dim, len(xs))
        return np.stack(xs, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        dim, n = ctx.saved
        return tuple(np.take(grad, i, axis=dim) for i in range(n))
