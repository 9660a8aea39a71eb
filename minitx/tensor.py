"""The Tensor: a NumPy array (``.data``) that remembers how it was computed.

Every method that computes is an op from ``minitx/ops/`` (a ``Function`` with its forward and backward side
by side); ``Function.apply`` records the graph, and ``loss.backward()`` hands it to
``minitx.autograd.run_backward``, which applies the chain rule node by node. Gradients *accumulate* across
calls (call ``zero_grad()`` or set ``.grad = None`` to reset), and the saved arrays are freed after one
backward unless ``retain_graph=True``, exactly like PyTorch. Read ``minitx/autograd.py`` for the graph walk.

The imports run one way: tensor.py -> ops/* -> autograd.py (no op imports this file).
"""
from __future__ import annotations

import numpy as np

from minitx.autograd import Context, Function, Node, enable_grad, is_grad_enabled, no_grad, run_backward  # noqa: F401
from minitx.ops import dims as _dims
from minitx.ops import elementwise as _ew
from minitx.ops import indexing as _idx
from minitx.ops import matmul as _mm
from minitx.ops import nn_ops as _nn
from minitx.ops import reduce as _red
from minitx.ops import shape as _shape
from minitx.ops.elementwise import DEFAULT_DTYPE


def _as_array(data, dtype=None) -> np.ndarray:
    """Copy user data into a new ndarray: Python floats -> float32, ints -> int64, like torch.tensor.

    Always a copy, so changing the caller's array later never changes the tensor.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=np.dtype(dtype))
    array = np.array(data)
    if array.dtype == np.float64 and not isinstance(data, np.ndarray) and not isinstance(data, np.floating):
        array = array.astype(DEFAULT_DTYPE)  # Python lists/floats default to float32
    elif array.dtype.kind == "i" and not isinstance(data, np.ndarray):
        array = array.astype(np.int64)
    return array


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    ``data``: the NumPy array. ``grad``: a Tensor of the same shape or None.
    ``requires_grad``: whether gradients flow to (and accumulate in) this tensor.
    """

    __array_priority__ = 1000  # so ndarray <op> Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, dtype=None, _copy=True):
        array = _as_array(data, dtype) if (_copy or dtype is not None) else data
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(f"only floating point tensors can require gradients, got dtype {array.dtype}")
        self.data = array
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = None
        self._retains_grad = False

    # ------------------------------------------------------------------ basic properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only a one-element tensor converts to a Python number, shape is {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __repr__(self):
        grad_info = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{grad_info})"

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    # ------------------------------------------------------------------ graph bookkeeping
    def detach(self) -> "Tensor":
        """A tensor sharing the same data, cut from the graph."""
        return Tensor(self.data, requires_grad=False, _copy=False)

    def requires_grad_(self, requires_grad=True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep theirs)."""
        self._retains_grad = True

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad=None, retain_graph=False) -> None:
        """Back-propagate from this tensor; see the module docstring for the rules."""
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward(): grad can be implicitly created only for scalar outputs; this tensor has "
                    f"shape {self.shape}, so pass grad= of that shape (e.g. t.backward(mx.ones_like(t)))"
                )
            grad = np.ones_like(self.data)
        else:
            grad = _as_array(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape} but the tensor has shape {self.shape}")
        run_backward(self, grad, retain_graph)

    def _accumulate_grad(self, grad: np.ndarray) -> None:
        grad = np.asarray(grad, dtype=self.dtype)
        if self.grad is None:
            self.grad = Tensor(np.array(grad, copy=True), _copy=False)
        else:
            self.grad = Tensor(self.grad.data + grad, _copy=False)

    # ------------------------------------------------------------------ arithmetic (ops/elementwise.py)
    def _lift(self, other) -> "Tensor":
        """Wrap a Python number or ndarray as a constant Tensor of this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        array = np.asarray(other)
        if isinstance(other, np.ndarray) or array.dtype.kind not in "biuf":
            return Tensor(array, _copy=False)
        # A Python number takes this tensor's dtype (x * 2 keeps float32), except that a float meeting an
        # integer tensor becomes the default float dtype (int_tensor * 2.5 is float32, as in PyTorch).
        if self.dtype.kind == "f":
            array = array.astype(self.dtype)
        elif array.dtype.kind == "f":
            array = array.astype(DEFAULT_DTYPE)
        return Tensor(array, _copy=False)

    def __add__(self, other):
        return _ew.Add.apply(self, self._lift(other))

    def __radd__(self, other):
        return _ew.Add.apply(self._lift(other), self)

    def __sub__(self, other):
        return _ew.Sub.apply(self, self._lift(other))

    def __rsub__(self, other):
        return _ew.Sub.apply(self._lift(other), self)

    def __mul__(self, other):
        return _ew.Mul.apply(self, self._lift(other))

    def __rmul__(self, other):
        return _ew.Mul.apply(self._lift(other), self)

    def __truediv__(self, other):
        return _ew.Div.apply(self, self._lift(other))

    def __rtruediv__(self, other):
        return _ew.Div.apply(self._lift(other), self)

    def __pow__(self, other):
        return _ew.Pow.apply(self, self._lift(other))

    def __rpow__(self, other):
        return _ew.Pow.apply(self._lift(other), self)

    def __neg__(self):
        return _ew.Neg.apply(self)

    def __matmul__(self, other):
        return _mm.MatMul.apply(self, self._lift(other))

    def __rmatmul__(self, other):
        return _mm.MatMul.apply(self._lift(other), self)

    # comparisons give boolean tensors outside the graph
    def __eq__(self, other):
        return Tensor(self.data == data_of(other), _copy=False)

    def __ne__(self, other):
        return Tensor(self.data != data_of(other), _copy=False)

    def __lt__(self, other):
        return Tensor(self.data < data_of(other), _copy=False)

    def __le__(self, other):
        return Tensor(self.data <= data_of(other), _copy=False)

    def __gt__(self, other):
        return Tensor(self.data > data_of(other), _copy=False)

    def __ge__(self, other):
        return Tensor(self.data >= data_of(other), _copy=False)

    __hash__ = object.__hash__

    def pow(self, exponent):
        return self ** exponent

    def exp(self):
        return _ew.Exp.apply(self)

    def log(self):
        return _ew.Log.apply(self)

    def sqrt(self):
        return _ew.Sqrt.apply(self)

    def abs(self):
        return _ew.Abs.apply(self)

    def tanh(self):
        return _ew.Tanh.apply(self)

    def sigmoid(self):
        return _ew.Sigmoid.apply(self)

    def relu(self):
        return _ew.Relu.apply(self)

    def gelu(self, approximate="none"):
        return _ew.Gelu.apply(self, approximate=approximate)

    # ------------------------------------------------------------------ reductions (ops/reduce.py)
    # torch's names: dim (an int, a tuple, or None for all) and keepdim; NumPy's ``axis=`` is an alias.
    def sum(self, dim=None, keepdim=False, *, axis=None):
        return _red.Sum.apply(self, dim=_dims.dim_or_axis(dim, axis), keepdim=keepdim)

    def mean(self, dim=None, keepdim=False, *, axis=None):
        return _red.Mean.apply(self, dim=_dims.dim_or_axis(dim, axis), keepdim=keepdim)

    def max(self, dim=None, keepdim=False, *, axis=None):
        return _red.Max.apply(self, dim=_dims.dim_or_axis(dim, axis), keepdim=keepdim)

    def min(self, dim=None, keepdim=False, *, axis=None):
        return _red.Min.apply(self, dim=_dims.dim_or_axis(dim, axis), keepdim=keepdim)

    def var(self, dim=None, keepdim=False, correction=1, *, axis=None):
        return _red.Var.apply(self, dim=_dims.dim_or_axis(dim, axis), keepdim=keepdim, correction=correction)

    def argmax(self, dim=None, keepdim=False, *, axis=None):
        dim = _dims.dim_or_axis(dim, axis)
        dim = None if dim is None else _dims.normalize_dim(dim, self.ndim, "argmax")
        return Tensor(np.argmax(self.data, axis=dim, keepdims=keepdim), _copy=False)

    # ------------------------------------------------------------------ shapes (ops/shape.py, ops/indexing.py)
    def reshape(self, *shape):
        return _shape.Reshape.apply(self, shape=_resolve_shape(shape))

    def view(self, *shape):
        return self.reshape(*shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start = _dims.normalize_dim(start_dim, self.ndim, "flatten")
        end = _dims.normalize_dim(end_dim, self.ndim, "flatten")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])

    def permute(self, *dims):
        return _shape.Permute.apply(self, dims=_resolve_shape(dims))

    def transpose(self, dim0=-2, dim1=-1):
        dim0, dim1 = (_dims.normalize_dim(d, self.ndim, "transpose") for d in (dim0, dim1))
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(*dims)

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def unsqueeze(self, dim):
        dim = _dims.normalize_dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dim = _dims.normalize_dim(dim, self.ndim, "squeeze")
        if self.ndim == 0 or self.shape[dim] != 1:
            return self
        return self.reshape(self.shape[:dim] + self.shape[dim + 1:])

    def expand(self, *shape):
        return _shape.Expand.apply(self, shape=_resolve_shape(shape))

    def broadcast_to(self, *shape):
        return self.expand(*shape)

    def __getitem__(self, index):
        return _idx.GetItem.apply(self, index=_unwrap(index))

    def split(self, split_size_or_sections, dim=0):
        """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the given sizes."""
        n = self.shape[dim]
        if isinstance(split_size_or_sections, int):
            sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} do not add up to dimension {dim} of shape {self.shape}")
        pieces, start = [], 0
        for size in sizes:
            index = [slice(None)] * self.ndim
            index[dim] = slice(start, start + size)
            pieces.append(self[tuple(index)])
            start += size
        return tuple(pieces)

    def chunk(self, chunks, dim=0):
        n = self.shape[dim]
        return self.split(-(-n // chunks), dim)

    def masked_fill(self, mask, value):
        return _idx.MaskedFill.apply(self, data_of(mask), value=_unwrap(value))

    # ------------------------------------------------------------------ nn ops (ops/nn_ops.py)
    def softmax(self, dim=-1, *, axis=None):
        return _nn.Softmax.apply(self, dim=_dims.dim_or_axis(dim, axis, -1))

    def log_softmax(self, dim=-1, *, axis=None):
        return _nn.LogSoftmax.apply(self, dim=_dims.dim_or_axis(dim, axis, -1))

    # ------------------------------------------------------------------ conversions
    def astype(self, dtype) -> "Tensor":
        """A copy in ``dtype``; differentiable between float dtypes, cut from the graph otherwise."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            return Tensor(self.data.astype(dtype), _copy=False)
        return _ew.Cast.apply(self, dtype=dtype)

    def to(self, dtype) -> "Tensor":
        return self.astype(dtype)

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        return self.astype(np.float64)

    def long(self) -> "Tensor":
        return Tensor(self.data.astype(np.int64), _copy=False)

    def contiguous(self) -> "Tensor":
        return _shape.Contiguous.apply(self)


def tensor(data, requires_grad=False, dtype=None) -> Tensor:
    """Create a Tensor (copying ``data``). Python floats become float32, ints int64."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _resolve_shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=DEFAULT_DTYPE, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(_resolve_shape(shape), dtype=dtype), requires_grad=requires_grad, _copy=False)


def ones(*shape, dtype=DEFAULT_DTYPE, requires_grad=False) -> Tensor:
    return Tensor(np.ones(_resolve_shape(shape), dtype=dtype), requires_grad=requires_grad, _copy=False)


def full(shape, fill_value, dtype=DEFAULT_DTYPE, requires_grad=False) -> Tensor:
    return Tensor(np.full(tuple(shape), fill_value, dtype=dtype), requires_grad=requires_grad, _copy=False)


def zeros_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(np.zeros_like(t.data), requires_grad=requires_grad, _copy=False)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(np.ones_like(t.data), requires_grad=requires_grad, _copy=False)


def randn(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples from ``generator`` (default: the global one set by ``manual_seed``)."""
    from minitx.random import default_generator

    rng = generator or default_generator()
    data = rng.standard_normal(_resolve_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad, _copy=False)


def rand(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, generator=None) -> Tensor:
    from minitx.random import default_generator

    rng = generator or default_generator()
    data = rng.random(_resolve_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad, _copy=False)


def arange(start, end=None, step=1, dtype=None) -> Tensor:
    """Like ``torch.arange``: integers give int64, any float argument gives float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = DEFAULT_DTYPE if is_float else np.int64
    return Tensor(np.arange(start, end, step, dtype=dtype), _copy=False)


def data_of(value) -> np.ndarray:
    """The ndarray behind a Tensor, or ``value`` as an ndarray (no copy): the one helper for "a Tensor or
    array-like" arguments (masks, targets, ids, conditions)."""
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _unwrap(value):
    """A Tensor becomes its ndarray, a tuple is unwrapped item by item, anything else (numbers, slices, None,
    Ellipsis) stays as it is: for indices and fill values, where ``data_of``'s np.asarray would be wrong."""
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    return value.data if isinstance(value, Tensor) else value


Function.tensor_type = Tensor  # Function.apply wraps op outputs in Tensors (see minitx/autograd.py)
