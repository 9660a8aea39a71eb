"""The function forms of the ops, as in ``torch.cat`` / ``torch.where``: ``mx.cat``, ``mx.stack``,
``mx.where``, ``mx.split``, ``mx.chunk``, ``mx.matmul`` and the unary maths (``mx.exp`` is ``Tensor.exp``)."""

from minitx.ops import indexing, shape
from minitx.tensor import Tensor, data_of


def _as_tensor(x, like: Tensor = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return like._lift(x) if like is not None else Tensor(x)


def cat(tensors, dim=0) -> Tensor:
    """Concatenate along an existing axis ``dim``."""
    return shape.Concat.apply(*[_as_tensor(t) for t in tensors], dim=dim)


concat = cat


def stack(tensors, dim=0) -> Tensor:
    """Stack along a new axis ``dim``."""
    return shape.Stack.apply(*[_as_tensor(t) for t in tensors], dim=dim)


def where(condition, a, b) -> Tensor:
    """Elementwise ``condition ? a : b``; a and b may be tensors or numbers."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    cond = data_of(condition)
    a, b = _as_tensor(a, like), _as_tensor(b, like)
    return indexing.Where.apply(cond, a, b)


def split(t: Tensor, split_size_or_sections, dim=0):
    return t.split(split_size_or_sections, dim)


def chunk(t: Tensor, chunks, dim=0):
    return t.chunk(chunks, dim)


# The function forms of the unary ops are the Tensor methods themselves: mx.exp(t) is t.exp().
exp, log, sqrt, tanh, sigmoid, abs = Tensor.exp, Tensor.log, Tensor.sqrt, Tensor.tanh, Tensor.sigmoid, Tensor.abs


def matmul(a, b):
    return a @ b
