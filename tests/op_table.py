"""The op table: every minitx op described once, in the manner of PyTorch's OpInfo (CONVENTIONS.md §11).

Each row is an ``OpInfo``: the op's name, its minitx callable ``op`` and its PyTorch reference ``ref``, a
``sample_inputs(dtype, rng)`` maker that yields ``SampleInput``s, the dtypes it takes, tolerances, whether it
is differentiable, the homework marker its tests carry, and ``error_inputs`` (inputs torch refuses, with the
exception minitx must raise too). tests/test_conformance.py runs every (row, dtype, sample) on every
backend × ISA through ``torch_compare.assert_close_to_torch`` (forward values, then every input gradient),
and every error input on every path.

Adding an op is adding a row to ``OP_TABLE``, e.g. for a (hypothetical) Tensor.cumsum:

    OpInfo("cumsum", lambda x, dim: x.cumsum(dim), random_samples(("dim1", [(3, 4)], dict(dim=1))),
           dtypes=NUMERIC, marker="hw1_autograd")

How a sample is called: ``op(*sample.inputs, **sample.kwargs)``. Array inputs become tensors on each side
(floating ones require grad; integer and bool ones are constants); anything else (numbers, None) passes
unchanged, and so do kwargs. ``ref`` defaults to ``op`` when one spelling works on both libraries. Dims are
passed positionally to Tensor methods (minitx renamed ``axis=`` to torch's ``dim=``, keeping an alias).

What every row gets without asking: its maker is called once per dtype in ``dtypes`` (integer and bool
makers draw small integers / coin flips, and skip the NaN/inf samples), and its first sample is repeated as
"noncontiguous": each array is stored transposed (1-D: each value twice) and both callables first take the
strided view that gives back the original values, so minitx computes on a non-contiguous Tensor.

Edge cases are samples in the rows, not separate tests: size-0 and size-1 dims, 0-d and 1-D inputs, and
fully masked attention rows compare values and gradients; NaN/±inf samples (built with ``edge()``) compare
forward values only (NaN/inf positions must match exactly), since torch's own gradient at a NaN or an
infinity is an IEEE artefact rather than a derivative. A sample that sets ``tol``, ``check_grad`` or
``reference`` says why in a comment.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as TF
from torch.nn.attention import SDPBackend, sdpa_kernel

import minitx as mx
import minitx.nn.functional as F
from minitx.backends.numpy_ref import attention_dropout_scale
from minitx.ops.attention import draw_dropout_seed
from minitx.ops.linear_cross_entropy import linear_cross_entropy

FLOATS = (np.float32, np.float64)
NUMERIC = FLOATS + (np.int64,)
ANY = NUMERIC + (np.bool_,)
NAN, INF = np.nan, np.inf


# ---------------------------------------------------------------------------------------------- the row types
@dataclass(frozen=True)
class SampleInput:
    """One call of an op: positional ``inputs`` (arrays become tensors), ``kwargs`` passed as they are.

    ``tol``: rtol/atol/grad_rtol/grad_atol overrides for this sample. ``check_grad=False``: compare forward
    values only. ``reference``: a callable that replaces the row's torch callable for this sample (where
    minitx's documented result differs from torch's). ``noncontiguous``: the arrays are stored so that
    ``noncontiguous_view`` of each gives the intended input.
    """

    name: str
    inputs: tuple
    kwargs: dict = field(default_factory=dict)
    tol: dict = field(default_factory=dict)
    check_grad: bool = True
    reference: Callable | None = None
    noncontiguous: bool = False

    def bind(self, fn: Callable) -> Callable:
        """``fn`` as a function of the converted inputs: takes the strided views first, then adds the kwargs."""
        viewed = [self.noncontiguous and _is_strided(a) for a in self.inputs]

        def call(*tensors):
            return fn(*(noncontiguous_view(t) if v else t for t, v in zip(tensors, viewed)), **self.kwargs)

        return call

    def as_noncontiguous(self) -> SampleInput:
        return replace(self, name="noncontiguous", noncontiguous=True,
                       inputs=tuple(_strided_storage(a) if _is_strided(a) else a for a in self.inputs))


@dataclass(frozen=True)
class ErrorInput:
    """Inputs torch refuses, and the exception type (or tuple of types) both libraries must raise."""

    name: str
    inputs: tuple
    kwargs: dict
    error: type | tuple


@dataclass(frozen=True)
class OpInfo:
    """One op: how to call it in minitx and in torch, on which inputs, and how to judge the result."""

    name: str
    op: Callable
    sample_inputs: Callable  # (dtype, rng) -> iterable of SampleInput
    ref: Callable | None = None  # the torch callable; None: ``op`` works on torch tensors as written
    dtypes: tuple = FLOATS
    tol: dict = field(default_factory=dict)  # assert_close_to_torch tolerance overrides for every sample
    differentiable: bool = True
    grad_inputs: tuple | None = None  # indices of the inputs that get gradients; None: every floating array
    marker: str | None = None  # the homework whose code this op runs (pytest -m <marker>; see homework_reaches)
    reaches: Callable | None = None  # (sample) -> bool: does it run the homework code? None: every sample does
    noncontiguous: bool = True  # add the non-contiguous copy of the first sample
    error_inputs: tuple = ()

    @property
    def reference(self) -> Callable:
        return self.op if self.ref is None else self.ref

    def samples(self, dtype) -> list:
        """The row's samples in ``dtype``, drawn from a generator seeded by (row, dtype): stable test values."""
        rng = np.random.default_rng(zlib.crc32(f"{self.name}:{np.dtype(dtype).name}".encode()))
        samples = list(self.sample_inputs(np.dtype(dtype), rng))
        return samples + [samples[0].as_noncontiguous()] if self.noncontiguous else samples


# ---------------------------------------------------------------------------------------------- layout helpers
def _is_strided(a) -> bool:
    return isinstance(a, np.ndarray) and a.ndim > 0


def _strided_storage(a: np.ndarray) -> np.ndarray:
    """The array whose ``noncontiguous_view`` is ``a``: ``a`` with its last two axes swapped (1-D: each value twice)."""
    return np.ascontiguousarray(np.swapaxes(a, -1, -2)) if a.ndim > 1 else np.repeat(a, 2)


def noncontiguous_view(t):
    """A strided view (minitx or torch tensor): the transpose of the last two axes, or every other element."""
    return t.transpose(-2, -1) if t.ndim > 1 else t[::2]


# ---------------------------------------------------------------------------------------------- array makers
class Make:
    """Test arrays of one dtype. Floats: standard normal; int64: small integers; bool: coin flips."""

    def __init__(self, dtype: np.dtype, rng: np.random.Generator):
        self.dtype, self.rng = dtype, rng
        self.is_float = dtype.kind == "f"

    def cast(self, values) -> np.ndarray:
        """``values`` as an array of the dtype (a NumPy operation on 0-d arrays returns a scalar, not an array)."""
        return np.asarray(values, self.dtype)

    def randn(self, *shape) -> np.ndarray:
        if self.is_float:
            return self.cast(self.rng.standard_normal(shape))
        if self.dtype.kind == "b":
            return self.cast(self.rng.random(shape) < 0.5)
        return self.cast(self.rng.integers(-4, 5, shape))

    def positive(self, *shape) -> np.ndarray:
        return self.cast(self.rng.uniform(0.5, 2.0, shape) if self.is_float else self.rng.integers(1, 5, shape))

    def away_from_zero(self, *shape) -> np.ndarray:
        """|x| >= 0.1, so kinks (abs, relu) are never hit (integers: nonzero)."""
        x = self.randn(*shape)
        return self.cast(np.where(np.abs(x) < 0.1, np.sign(x + 0.001) * 0.5 if self.is_float else 1, x))

    def ids(self, high: int, *shape) -> np.ndarray:
        return self.rng.integers(0, high, shape).astype(np.int64)

    def mask(self, *shape) -> np.ndarray:
        return self.rng.random(shape) < 0.5


def edge(name: str, *inputs, reference=None, **kwargs) -> SampleInput:
    """An edge-value sample (NaN, ±inf): forward values only (see the module docstring)."""
    return SampleInput(name, inputs, kwargs, check_grad=False, reference=reference)


def shape_id(shape) -> str:
    return "x".join(map(str, shape)) if shape else "0d"


def dim_id(dim) -> str:
    return "all" if dim is None else "_".join(map(str, np.atleast_1d(dim)))


def random_samples(*cases) -> Callable:
    """A maker for ops whose samples are random arrays: each case is (name, [shape of each input], kwargs)."""
    def samples(dtype, rng):
        make = Make(dtype, rng)
        for name, shapes, kwargs in cases:
            yield SampleInput(name, tuple(make.randn(*shape) for shape in shapes), kwargs)
    return samples


# ---------------------------------------------------------------------------------------------- elementwise
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((2, 1, 4), (3, 1)),
                    ((), (2, 3)), ((5,), (5,)), ((3, 0), (3, 0)), ((0, 4), (4,))]
BINARY_EDGES = ([NAN, INF, -INF, 1.0, INF, 0.0, 1.0, -0.0],  # inf - inf, inf / inf, x / 0, 0 / 0, -0.0
                [1.0, 2.0, INF, -INF, INF, 0.0, 0.0, 2.0])
UNARY_EDGES = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0]


def binary_samples(dtype, rng):
    """Broadcasting pairs (size-1, size-0, 1-D, 0-d), Python scalars on either side, and NaN/±inf/0 pairs.
    The right operand is positive, so the same samples serve div (no integer division by zero)."""
    make = Make(dtype, rng)
    for a, b in BROADCAST_SHAPES:
        yield SampleInput(f"{shape_id(a)}-{shape_id(b)}", (make.randn(*a), make.positive(*b)))
    yield SampleInput("python_float_right", (make.positive(3, 4), 2.5))  # int64 tensor * 2.5 -> float32
    yield SampleInput("python_float_left", (2.5, make.positive(3, 4)))
    yield SampleInput("python_int_right", (make.positive(3, 4), 2))  # int64 tensor / 2 -> float32
    if make.is_float:
        yield edge("nan_inf_zero", *map(make.cast, BINARY_EDGES))


def pow_samples(dtype, rng):
    make = Make(dtype, rng)
    yield SampleInput("square", (make.randn(3, 4), 2))
    yield SampleInput("cube", (make.randn(3, 4), 3))
    yield SampleInput("sqrt", (make.positive(3, 4), 0.5))  # an int64 base gives float32, like torch
    # torch refuses integers to negative integer powers, so an integer exponent tensor is positive.
    exponent = make.randn(1, 4) if make.is_float else make.positive(1, 4)
    yield SampleInput("tensor_exponent", (make.positive(3, 4), exponent))
    yield SampleInput("zero_exponent_at_zero", (make.cast([0.0, 1.5, -2.0]), 0))
    yield SampleInput("at_zero_base", (make.cast([0.0, 1.5, -2.0]), 2))
    yield SampleInput("3x0", (make.randn(3, 0), 2))
    if make.is_float:
        yield edge("nan_inf_base", make.cast(UNARY_EDGES), 2)


def unary_samples(domain="randn", scale=1.0, extra=(), edge_reference=None) -> Callable:
    """A maker for elementwise ops: values from ``Make.<domain>`` times ``scale`` in several shapes, the
    UNARY_EDGES values (compared with ``edge_reference`` where given), and ``extra`` (name, values) samples."""
    def samples(dtype, rng):
        make = Make(dtype, rng)
        draw = getattr(make, domain)
        for shape in [(3, 4), (5,), (1, 4), (), (3, 0), (0, 4)]:
            yield SampleInput(shape_id(shape), (make.cast(draw(*shape) * scale),))
        for name, values in extra:
            yield SampleInput(name, (make.cast(values),))
        if make.is_float:
            yield edge("nan_inf", make.cast(UNARY_EDGES), reference=edge_reference)
    return samples


def torch_gelu_in_float64(x):
    """torch's exact GELU computed in float64, cast back. Its float32 AVX-512 kernel (torch 2.13) returns NaN at
    +inf, its AVX2 kernel and float64 give the limit x·Φ(x) -> +inf; minitx gives +inf on every path and CPU."""
    return TF.gelu(x.double()).to(x.dtype)


def _int64_refused(**kwargs) -> tuple:
    """Torch has no integer kernel for the op (NotImplementedError, a RuntimeError); minitx must refuse too."""
    return (ErrorInput("int64", (np.arange(6).reshape(2, 3),), kwargs, RuntimeError),)


def _all_dims(x, dim):
    """torch.amax/amin spell "every dim" as a tuple, not None."""
    return tuple(range(x.ndim)) if dim is None else dim


# ---------------------------------------------------------------------------------------------- reductions
REDUCE_DIMS = [None, 0, 1, -1, (0, 2), (-1, -2)]
X3 = np.zeros((2, 3, 4), np.float32)  # for error inputs: a 3-D tensor, so dim 5 is out of range


def reduction_samples(dtype, rng, reduce_empty_dim=True):
    """Every REDUCE_DIMS × keepdim on a 2x3x4 array, 0-d and 1-D inputs, size-0 dims and NaN/±inf rows.
    ``reduce_empty_dim``: also reduce over a dim of size 0 (max/min refuse that, like torch)."""
    make = Make(dtype, rng)
    x = make.randn(2, 3, 4)
    for dim in REDUCE_DIMS:
        for keepdim in (False, True):
            yield SampleInput(f"dim{dim_id(dim)}" + "-keepdim" * keepdim, (x,), dict(dim=dim, keepdim=keepdim))
    yield SampleInput("0d", (make.randn(),), dict(dim=None, keepdim=False))
    yield SampleInput("1d", (make.randn(5),), dict(dim=0, keepdim=False))
    yield SampleInput("3x0-dim0", (make.randn(3, 0),), dict(dim=0, keepdim=False))
    if reduce_empty_dim:
        yield SampleInput("3x0-dim1", (make.randn(3, 0),), dict(dim=1, keepdim=True))  # sum 0, mean/var NaN
    if make.is_float:
        yield edge("nan_inf_rows", make.cast([[1.0, NAN, 2.0], [INF, 1.0, 2.0], [-INF, INF, 0.0], [1.0, 2.0, 3.0]]),
                   dim=1, keepdim=False)


def var_samples(dtype, rng):
    yield from reduction_samples(dtype, rng)
    yield SampleInput("correction0", (Make(dtype, rng).randn(2, 3, 4),), dict(dim=-1, keepdim=False, correction=0))


def extremum_samples(which: str) -> Callable:
    """max/min: the reduction samples plus ties (the gradient is split evenly between tied extrema, like
    torch.amax), and torch's ``x.max(dim).values`` as a second reference."""
    ties = [[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, 0.0, 5.0]]

    def samples(dtype, rng):
        make = Make(dtype, rng)
        yield from reduction_samples(dtype, rng, reduce_empty_dim=False)
        for dim in (1, 0, None):
            yield SampleInput(f"ties-dim{dim_id(dim)}", (make.cast(ties),), dict(dim=dim, keepdim=False))
        yield SampleInput("no_ties-vs_values", (make.randn(3, 5),), dict(dim=1, keepdim=False),
                          reference=lambda x, dim, keepdim: getattr(x, which)(dim, keepdim=keepdim).values)
    return samples


def extremum_row(which: str) -> OpInfo:
    torch_fn = getattr(torch, f"a{which}")
    return OpInfo(which, op=lambda x, dim, keepdim: getattr(x, which)(dim, keepdim=keepdim),
                  ref=lambda x, dim, keepdim: torch_fn(x, _all_dims(x, dim), keepdim=keepdim),
                  sample_inputs=extremum_samples(which), dtypes=NUMERIC, marker="hw1_autograd",
                  error_inputs=(ErrorInput("reduce_size0_dim", (np.zeros((3, 0), np.float32),),
                                           dict(dim=1, keepdim=False), IndexError),))


def argmax_samples(dtype, rng):
    make = Make(dtype, rng)
    for dim in (None, 0, -1):
        yield SampleInput(f"dim{dim_id(dim)}", (make.randn(3, 5),), dict(dim=dim, keepdim=False))
    yield SampleInput("keepdim", (make.randn(3, 5),), dict(dim=1, keepdim=True))
    yield SampleInput("ties_first_wins", (make.cast([[1, 3, 3], [2, 2, 2]]),), dict(dim=1, keepdim=False))


# ---------------------------------------------------------------------------------------------- matmul
MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 5)), ((3, 4), (2, 4, 5)),
                 ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 5)),
                 ((1, 4), (4, 1)), ((17, 33), (33, 9)), ((3, 0), (0, 4)), ((0, 4), (4, 5)), ((3, 4), (4, 0))]


def matmul_samples(dtype, rng):
    """Batch broadcast, 1-D operands, sizes that are not multiples of a SIMD width, size-0 dims, NaN and inf.
    (A transposed operand is the automatic "noncontiguous" sample.)"""
    make = Make(dtype, rng)
    for a, b in MATMUL_SHAPES:
        yield SampleInput(f"{shape_id(a)}@{shape_id(b)}", (make.randn(*a), make.randn(*b)))
    if make.is_float:
        a = make.randn(3, 4)
        a[0, 1], a[2, 3] = NAN, INF
        yield edge("nan_inf", a, make.randn(4, 5))


def linear_samples(dtype, rng):
    make = Make(dtype, rng)
    yield SampleInput("3d-bias", (make.randn(2, 3, 4), make.randn(5, 4), make.randn(5)))
    yield SampleInput("no_bias", (make.randn(3, 4), make.randn(5, 4)))
    yield SampleInput("1d_input", (make.randn(4), make.randn(5, 4), make.randn(5)))
    yield SampleInput("0x4", (make.randn(0, 4), make.randn(5, 4), make.randn(5)))
    yield SampleInput("in_features_0", (make.randn(3, 0), make.randn(5, 0), make.randn(5)))
    yield SampleInput("out_features_0", (make.randn(2, 3, 4), make.randn(0, 4), make.randn(0)))
    if make.is_float:
        x = make.randn(3, 4)
        x[0, 1], x[2, 3] = NAN, INF
        yield edge("nan_inf", x, make.randn(5, 4), make.randn(5))


# ---------------------------------------------------------------------------------------------- indexing, joins
_REPEATS = np.array([0, 2, 0, 0, 3], np.int64)  # repeated indices: the backward must accumulate
GETITEM_INDICES = [("int", 1), ("negative_int", -1), ("slice", (slice(None), slice(1, 3))),
                   ("step_slice", (slice(None, None, 2), slice(1, None, 2))), ("ellipsis", (Ellipsis, 0)),
                   ("none", (None, 1)), ("int_array_repeats", _REPEATS), ("list_repeats", [1, 1, 0]),
                   ("int_array_2d", np.array([[0, 1], [1, 1]], np.int64)),
                   ("pair_of_arrays", (np.array([0, 1, 0]), np.array([2, 2, 2]))),
                   ("slice_and_array", (slice(1, 3), np.array([3, 0, 3]))),
                   ("bool_mask", np.random.default_rng(0).random((4, 5)) > 0.5), ("empty_slice", slice(2, 2))]


def getitem_samples(dtype, rng):
    make = Make(dtype, rng)
    for name, index in GETITEM_INDICES:
        yield SampleInput(name, (make.randn(4, 5),), dict(index=index))
    yield SampleInput("tensor_index", (make.randn(4, 5), _REPEATS))  # the index is an int64 Tensor


def cat_samples(dtype, rng):
    make = Make(dtype, rng)
    for name, shapes, dim in [("dim0", [(2, 3), (4, 3)], 0), ("dim1-three", [(2, 3), (2, 1), (2, 2)], 1),
                              ("negative_dim", [(2, 3, 2), (2, 3, 4)], -1), ("1d", [(2,), (3,)], 0),
                              ("size0_part", [(0, 3), (2, 3)], 0)]:
        yield SampleInput(name, tuple(make.randn(*shape) for shape in shapes), dict(dim=dim))


def stack_samples(dtype, rng):
    make = Make(dtype, rng)
    for name, shapes, dim in [("dim0", [(2, 3)] * 2, 0), ("dim_last-three", [(2, 3)] * 3, -1),
                              ("1d", [(4,)] * 2, 1), ("0x3", [(0, 3)] * 2, 0)]:
        yield SampleInput(name, tuple(make.randn(*shape) for shape in shapes), dict(dim=dim))


SPLIT_CASES = random_samples(("size2-dim1", [(3, 5)], dict(size=2, dim=1)),
                             ("sections", [(3, 5)], dict(size=[1, 3, 1], dim=1)),
                             ("negative_dim", [(2, 3, 7)], dict(size=3, dim=-1)),
                             ("0x4", [(0, 4)], dict(size=2, dim=1)))
CHUNK_CASES = random_samples(("uneven", [(7, 2)], dict(chunks=3, dim=0)), ("even", [(3, 4)], dict(chunks=2, dim=1)))


def where_samples(dtype, rng):
    make = Make(dtype, rng)
    yield SampleInput("3x4", (make.mask(3, 4), make.randn(3, 4), make.randn(3, 4)))
    yield SampleInput("broadcast", (make.mask(3, 1), make.randn(1, 4), make.randn(3, 4)))
    yield SampleInput("python_scalar", (make.mask(3, 4), make.randn(3, 4), 0.0))  # int64 with 0.0 -> float32
    yield SampleInput("0x4", (make.mask(0, 4), make.randn(0, 4), make.randn(0, 4)))
    if make.is_float:
        cond = np.array([True, False, True, False])
        yield edge("nan_in_unselected", cond, make.cast([1.0, NAN, -INF, 2.0]), make.cast([NAN, 3.0, 4.0, INF]))


def masked_fill_samples(dtype, rng):
    make = Make(dtype, rng)
    yield SampleInput("big_negative", (make.randn(3, 4), make.mask(3, 4), -1e9))
    yield SampleInput("tensor_value", (make.randn(3, 4), make.mask(3, 4), make.cast(2.0)))  # a 0-d Tensor
    yield SampleInput("broadcast_mask", (make.randn(2, 3, 4), make.mask(1, 4), 0.5))
    yield SampleInput("neg_inf", (make.randn(3, 4), make.mask(3, 4), -INF))


# ---------------------------------------------------------------------------------------------- nn ops
def softmax_samples(dtype, rng):
    """Each dim, huge logits, partly -inf rows, 1-D / size-1 / size-0, and the rows torch makes NaN: a NaN,
    a +inf, or nothing but -inf in the row (the other row of each edge sample must stay finite)."""
    make = Make(dtype, rng)
    for dim in (-1, 0, 1):
        yield SampleInput(f"dim{dim}", (make.cast(make.randn(2, 3, 5) * 3),), dict(dim=dim))
    yield SampleInput("large_logits", (make.cast(make.randn(3, 6) * 1e4),), dict(dim=-1))
    partly_masked = make.randn(3, 4)
    partly_masked[:, :2] = -INF
    yield SampleInput("partly_neg_inf_rows", (partly_masked,), dict(dim=-1))  # finite: torch's gradient is too
    for shape in [(5,), (3, 1), (3, 0), (0, 4)]:
        yield SampleInput(shape_id(shape), (make.randn(*shape),), dict(dim=-1))
    ok_row = [0.5, -1.0, 2.0, 0.0]
    yield edge("nan_in_row", make.cast([[1.0, NAN, 2.0, 0.5], ok_row]), dim=-1)
    yield edge("pos_inf_in_row", make.cast([[1.0, INF, 2.0, 0.5], ok_row]), dim=-1)
    yield edge("all_neg_inf_row", make.cast([[-INF] * 4, ok_row]), dim=-1)


SOFTMAX_ERRORS = (ErrorInput("dim5", (X3,), dict(dim=5), IndexError),) + _int64_refused(dim=-1)


def nonempty(sample: SampleInput) -> bool:
    """Softmax of a size-0 input returns before any kernel runs."""
    return all(a.size for a in sample.inputs if isinstance(a, np.ndarray))


def softmax_rows(name: str, marker: str | None) -> tuple:
    """F.<name> and the Tensor method: one maker, two spellings."""
    return (OpInfo(name, op=lambda x, dim: getattr(F, name)(x, dim), ref=lambda x, dim: getattr(TF, name)(x, dim),
                   sample_inputs=softmax_samples, marker=marker, reaches=nonempty, error_inputs=SOFTMAX_ERRORS),
            OpInfo(f"Tensor.{name}", op=lambda x, dim: getattr(x, name)(dim), sample_inputs=softmax_samples,
                   marker=marker, reaches=nonempty, error_inputs=SOFTMAX_ERRORS))


def layer_norm_samples(dtype, rng):
    make = Make(dtype, rng)
    yield SampleInput("affine-3d", (make.cast(make.randn(2, 3, 6) * 2 + 1), make.randn(6),
                                    make.randn(6)), dict(normalized_shape=6))
    yield SampleInput("no_affine", (make.randn(4, 6),), dict(normalized_shape=(6,)))
    yield SampleInput("eps-small_values", (make.cast(make.randn(5, 8) * 0.01), make.randn(8), make.randn(8)),
                      dict(normalized_shape=8, eps=1e-3))
    yield SampleInput("1d", (make.randn(6), make.randn(6), make.randn(6)), dict(normalized_shape=6))
    # One feature: y = bias and the exact dx is 0; both libraries' dx is rounding noise (~1e-5) scaled up by
    # rstd = 1/sqrt(eps) ≈ 316, so dx gets an absolute tolerance of 1e-4.
    yield SampleInput("one_feature", (make.randn(4, 1), make.randn(1), make.randn(1)), dict(normalized_shape=1),
                      tol=dict(grad_atol=1e-4))
    yield SampleInput("0x6", (make.randn(0, 6), make.randn(6), make.randn(6)), dict(normalized_shape=6))
    yield edge("nan_in_row", make.cast([[1.0, NAN, 2.0], [0.5, -1.0, 2.0]]), normalized_shape=3)


def _as_shape(normalized_shape) -> tuple:
    """torch's layer_norm wants a tuple; minitx also takes an int."""
    return tuple(np.atleast_1d(normalized_shape).tolist())


def embedding_samples(dtype, rng):
    make = Make(dtype, rng)
    yield SampleInput("repeated_ids", (np.array([[1, 3, 1], [1, 0, 6]]), make.randn(7, 4)))
    yield SampleInput("padding_idx", (np.array([[0, 2, 0, 5], [2, 2, 0, 1]]), make.randn(6, 3)), dict(padding_idx=0))
    yield SampleInput("1d_ids", (np.array([4, 0, 4]), make.randn(5, 2)))
    yield SampleInput("no_ids", (np.zeros(0, np.int64), make.randn(5, 2)))


def cross_entropy_samples(dtype, rng):
    """Every reduction × label smoothing × ignored targets, 3-D logits, and the edge cases: a -inf logit on a
    class that is not the target (finite loss), ignored rows holding NaN or -inf (must not poison the loss),
    and every target ignored (mean: 0/0 = NaN, like torch)."""
    make = Make(dtype, rng)
    target = make.ids(5, 6)
    ignored = target.copy()
    ignored[[1, 4]] = -100
    for reduction in ("mean", "sum", "none"):
        for smoothing in (0.0, 0.1):
            for name, t in [("", target), ("-ignore_index", ignored)]:
                yield SampleInput(f"{reduction}-ls{smoothing}{name}", (make.cast(make.randn(6, 5) * 2), t),
                                  dict(reduction=reduction, label_smoothing=smoothing))
    yield SampleInput("custom_ignore_index", (make.randn(6, 5), target), dict(ignore_index=2))
    target3 = make.ids(4, 2, 3)
    target3[0, 1] = -100
    for reduction in ("mean", "none"):
        yield SampleInput(f"3d-{reduction}", (make.randn(2, 4, 3), target3),
                          dict(reduction=reduction, label_smoothing=0.2))
    with_neg_inf = make.randn(3, 4)
    with_neg_inf[0, 2] = -INF
    for reduction in ("mean", "none"):  # torch's loss and gradient are finite here, so both are compared
        yield SampleInput(f"neg_inf_non_target-{reduction}", (with_neg_inf, np.array([0, 1, 3])),
                          dict(reduction=reduction))
    poisoned = make.randn(3, 4)
    poisoned[1], poisoned[2, 1] = NAN, -INF
    for reduction in ("mean", "sum", "none"):
        # torch's gradient on the ignored NaN row is NaN (0 * NaN): only the forward is compared.
        yield edge(f"ignored_rows_nan_neg_inf-{reduction}", poisoned, np.array([0, -100, -100]), reduction=reduction)
        yield SampleInput(f"all_ignored-{reduction}", (make.randn(3, 4), np.full(3, -100)), dict(reduction=reduction))


def linear_cross_entropy_samples(dtype, rng):
    """hidden (N, 3), weight (V=4, 3): rows in chunks of 2 (the last ragged) or one chunk, ignored targets,
    one row, and every target ignored (mean: 0/0 = NaN, like torch)."""
    make = Make(dtype, rng)
    target = make.ids(4, 5)
    ignored = target.copy()
    ignored[[0, 3]] = -100
    yield SampleInput("chunks_of_2", (make.randn(5, 3), make.randn(4, 3), target), dict(chunk=2))
    yield SampleInput("ignore_index", (make.randn(5, 3), make.randn(4, 3), ignored), dict(chunk=2))
    yield SampleInput("one_chunk", (make.randn(5, 3), make.randn(4, 3), target), dict(chunk=1024))
    yield SampleInput("one_row", (make.randn(1, 3), make.randn(4, 3), make.ids(4, 1)), dict(chunk=2))
    yield SampleInput("all_ignored", (make.randn(3, 3), make.randn(4, 3), np.full(3, -100)), dict(chunk=2))


def mse_samples(dtype, rng):
    make = Make(dtype, rng)
    for reduction in ("mean", "sum", "none"):
        yield SampleInput(reduction, (make.randn(3, 4), make.randn(3, 4)), dict(reduction=reduction))
        yield SampleInput(f"0x3-{reduction}", (make.randn(0, 3), make.randn(0, 3)), dict(reduction=reduction))


# ---------------------------------------------------------------------------------------------- attention
def sdpa(q, k, v, attn_mask=None, is_causal=False):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


def torch_sdpa(q, k, v, attn_mask=None, is_causal=False):
    return TF.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


DROPOUT_P, DROPOUT_RUN_SEED = 0.3, 1234


def sdpa_dropout(q, k, v, attn_mask=None, is_causal=False):
    """Training-mode SDPA with attention dropout; the generator is reseeded so every call draws one mask."""
    mx.manual_seed(DROPOUT_RUN_SEED)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=DROPOUT_P)


def torch_sdpa_dropout(q, k, v, attn_mask=None, is_causal=False):
    """torch's math with minitx's dropout mask: P ∘ Z from the seed minitx draws (torch's own RNG differs, so
    its ``dropout_p`` cannot be compared); the reference for the hashed mask on every path."""
    lq, lk = q.shape[-2], k.shape[-2]
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, -INF) if attn_mask.dtype == torch.bool else scores + attn_mask
    if is_causal:
        scores = scores.masked_fill(torch.ones(lq, lk, dtype=torch.bool).tril(lk - lq).logical_not(), -INF)
    p = torch.softmax(scores, dim=-1)
    mx.manual_seed(DROPOUT_RUN_SEED)
    z = attention_dropout_scale(draw_dropout_seed(), tuple(p.shape), DROPOUT_P, q.detach().numpy().dtype)
    return torch.matmul(p * torch.from_numpy(z), v)


def sdpa_dropout_samples(dtype, rng):
    """The masks and shapes of sdpa_samples that every query row can see through (a dropout mask has no NaN
    or fully-masked-row edge of its own), at sizes that cross the kernel's 128-query/128-key tiles."""
    make = Make(dtype, rng)

    def qkv(lq=3, lk=5, batch=(1, 2)):
        return make.randn(*batch, lq, 4), make.randn(*batch, lk, 4), make.randn(*batch, lk, 4)

    padding = make.mask(1, 1, 1, 5)
    padding[..., 0] = True
    yield SampleInput("no_mask", qkv())
    yield SampleInput("bool_padding_mask", (*qkv(), padding))
    yield SampleInput("additive_mask", (*qkv(), make.randn(1, 2, 3, 5)))
    yield SampleInput("causal", qkv(lq=4, lk=4), dict(is_causal=True))
    yield SampleInput("crosses_tiles", qkv(lq=130, lk=131, batch=(1, 1)))
    yield SampleInput("no_queries", qkv(lq=0))


def torch_math_sdpa(*args, **kwargs):
    """torch's math (reference) SDPA. Its fused CPU kernel turns a query row holding NaN into zeros; the
    math path gives NaN, which is what the formula (and minitx) gives."""
    with sdpa_kernel(SDPBackend.MATH):
        return torch_sdpa(*args, **kwargs)


def zeros_on_fully_masked_rows(q, k, v, attn_mask, is_causal=False):
    """minitx's documented result for a query that may attend to nothing: zeros, with zero gradients.
    torch 2.13 agrees for an all-False bool row and an all -inf row, but gives the mean of V for a row of
    finfo.min (a finite bias) and older versions give NaN. So: torch's result on the other rows (each fully
    masked row made fully visible, so it stays finite and feeds nothing back), zeros on the masked rows."""
    if attn_mask.dtype == torch.bool:
        row_visible = attn_mask.any(-1, keepdim=True)
    else:
        row_visible = (attn_mask > torch.finfo(attn_mask.dtype).min / 2).any(-1, keepdim=True)
    safe_mask = torch.where(row_visible, attn_mask, torch.ones_like(attn_mask) if attn_mask.dtype == torch.bool
                            else torch.zeros_like(attn_mask))
    return torch.where(row_visible, torch_sdpa(q, k, v, safe_mask, is_causal), 0.0)


def sdpa_samples(dtype, rng):
    """q (1, 2, 3, 4), k/v (1, 2, 5, 4): no mask, padding and full bool masks, additive masks, causal (Lq == Lk:
    minitx aligns a causal mask to the end when Lk > Lq, torch to the start), 3-D inputs, Lk = 1, Lq = 0,
    NaN in a key or a query, and fully masked query rows."""
    make = Make(dtype, rng)

    def qkv(lq=3, lk=5, dv=4, batch=(1, 2)):
        return make.randn(*batch, lq, 4), make.randn(*batch, lk, 4), make.randn(*batch, lk, dv)

    def bool_mask(*shape):
        mask = make.mask(*shape)
        mask[..., 0] = True  # every query row sees at least one key
        return mask

    yield SampleInput("no_mask", qkv())
    yield SampleInput("value_dim_6", qkv(dv=6))
    yield SampleInput("bool_padding_mask", (*qkv(), bool_mask(1, 1, 1, 5)))
    yield SampleInput("bool_full_mask", (*qkv(), bool_mask(3, 5)))
    yield SampleInput("additive_mask", (*qkv(), make.randn(1, 2, 3, 5)))
    alibi_padded = make.randn(2, 2, 3, 5)  # a per-head bias (ALiBi's) with the padded keys at -inf (BERT's)
    alibi_padded[0, :, :, 3:] = -INF
    yield SampleInput("additive_mask_padded_keys", (*qkv(batch=(2, 2)), alibi_padded))
    yield SampleInput("causal", qkv(lq=4, lk=4), dict(is_causal=True))
    yield SampleInput("3d", qkv(batch=(2,)))
    yield SampleInput("single_key", qkv(lk=1))
    yield SampleInput("no_queries", qkv(lq=0))
    q, k, v = qkv()
    k[0, 0, 1, 2] = NAN
    yield edge("nan_in_key", q, k, v)  # every row of head 0 is NaN
    q, k, v = qkv()
    q[0, 1, 1, 0] = NAN
    yield edge("nan_in_query_row", q, k, v, reference=torch_math_sdpa)  # that row is NaN; see torch_math_sdpa
    # query row 1 sees no key: all False, all -inf, or all the dtype's most negative finite number
    for name, mask, fill in [("bool", bool_mask(3, 5), False), ("neg_inf", make.randn(3, 5), -INF),
                             ("finfo_min", make.randn(3, 5), np.finfo(dtype).min)]:
        mask[1] = fill
        yield SampleInput(f"fully_masked_row-{name}", (*qkv(), mask), reference=zeros_on_fully_masked_rows)


_Q = np.zeros((1, 1, 2, 4), np.float32)
SDPA_ERRORS = (
    # torch: RuntimeError "Expected attn_mask dtype to be bool or float"; a TypeError is as clear.
    ErrorInput("int_mask", (_Q, _Q, _Q, np.ones((2, 2), np.int64)), {}, (TypeError, RuntimeError)),
)


# ---------------------------------------------------------------------------------------------- the table
def _binary_row(name, fn, **kw) -> OpInfo:
    return OpInfo(name, fn, binary_samples, dtypes=NUMERIC, marker="hw1_autograd", **kw)


def _unary_row(name, op, ref, samples, dtypes=NUMERIC, marker="hw1_autograd", **kw) -> OpInfo:
    return OpInfo(name, op, samples, ref=ref, dtypes=dtypes, marker=marker, **kw)


def _reduction_row(name, samples, marker="hw1_autograd", **kw) -> OpInfo:
    return OpInfo(name, lambda x, dim, keepdim, **extra: getattr(x, name)(dim, keepdim=keepdim, **extra), samples,
                  marker=marker, **kw)


def broadcasts(sample: SampleInput) -> bool:
    """Add/sub run homework code (unbroadcast's reduction) only when an operand is broadcast: shapes differ, or
    one operand is a Python number."""
    arrays = [a for a in sample.inputs if isinstance(a, np.ndarray)]
    return len(arrays) < len(sample.inputs) or len({a.shape for a in arrays}) > 1


def _random_row(name, op, *cases, dtypes=ANY, **kw) -> OpInfo:
    """A row whose samples are random arrays (``random_samples`` cases); shape ops take every dtype."""
    return OpInfo(name, op, random_samples(*cases), dtypes=dtypes, **kw)


OP_TABLE = (
    # -------- arithmetic (int64: torch's promotion — int * 2.5 and int / 2 are float32, int + 2 stays int64)
    # add/sub: their backward is given, but reducing a broadcast gradient is unbroadcast (homework 1)
    _binary_row("add", lambda x, y: x + y, reaches=broadcasts),
    _binary_row("sub", lambda x, y: x - y, reaches=broadcasts),
    _binary_row("mul", lambda x, y: x * y),
    _binary_row("div", lambda x, y: x / y),
    OpInfo("pow", lambda x, y: x ** y, pow_samples, dtypes=NUMERIC, marker="hw1_autograd"),
    OpInfo("Tensor.pow", lambda x, y: x.pow(y), pow_samples, dtypes=NUMERIC, marker="hw1_autograd"),
    _unary_row("rpow", lambda x: 2.0 ** x, None, unary_samples()),
    _unary_row("neg", lambda x: -x, None, unary_samples(), marker=None),  # backward given (not homework)
    # -------- unary maths: exp/log/sqrt/tanh/sigmoid of int64 are float32, abs/relu of int64 stay int64
    _unary_row("exp", lambda x: x.exp(), torch.exp, unary_samples()),
    _unary_row("log", lambda x: x.log(), torch.log, unary_samples("positive")),
    _unary_row("sqrt", lambda x: x.sqrt(), torch.sqrt, unary_samples("positive")),
    _unary_row("abs", lambda x: x.abs(), torch.abs, unary_samples("away_from_zero"), marker=None),
    _unary_row("tanh", lambda x: x.tanh(), torch.tanh, unary_samples(scale=3.0)),
    _unary_row("sigmoid", lambda x: x.sigmoid(), torch.sigmoid,
               unary_samples(scale=3.0, extra=[("saturated", [-100.0, -30.0, 30.0, 100.0])])),
    _unary_row("relu", F.relu, TF.relu, unary_samples("away_from_zero"), marker=None),
    # erf is a Chebyshev fit with error < 1.2e-7 (numpy_ref.erf), ~1 float32 ulp of Φ(x) <= 1: default tolerance.
    _unary_row("gelu", F.gelu, TF.gelu, unary_samples(scale=3.0, edge_reference=torch_gelu_in_float64),
               dtypes=FLOATS, marker=None,
               error_inputs=_int64_refused()),
    _unary_row("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"),
               unary_samples(scale=3.0), dtypes=FLOATS, marker=None, error_inputs=_int64_refused()),
    _unary_row("mx.exp_log_sqrt_tanh_sigmoid_abs", lambda x: mx.abs(mx.tanh(mx.sigmoid(mx.sqrt(mx.log(mx.exp(x)))))),
               lambda x: torch.abs(torch.tanh(torch.sigmoid(torch.sqrt(torch.log(torch.exp(x)))))),
               unary_samples("positive"), dtypes=FLOATS),
    # -------- reductions
    _reduction_row("sum", reduction_samples, dtypes=NUMERIC,
                   error_inputs=(ErrorInput("dim5", (X3,), dict(dim=5, keepdim=False), IndexError),)),
    _reduction_row("mean", reduction_samples, error_inputs=(
        ErrorInput("int64", (np.arange(6),), dict(dim=None, keepdim=False), RuntimeError),)),
    _reduction_row("var", var_samples, marker=None, error_inputs=(
        ErrorInput("int64", (np.arange(6),), dict(dim=None, keepdim=False), RuntimeError),)),
    extremum_row("max"),
    extremum_row("min"),
    OpInfo("argmax", lambda x, dim, keepdim: x.argmax(dim, keepdim=keepdim), argmax_samples, dtypes=NUMERIC,
           differentiable=False),
    # -------- matmul
    OpInfo("matmul", lambda a, b: a @ b, matmul_samples, dtypes=NUMERIC, marker="hw1_autograd"),
    OpInfo("mx.matmul", mx.matmul, matmul_samples, ref=torch.matmul, dtypes=NUMERIC, marker="hw1_autograd"),
    OpInfo("linear", F.linear, linear_samples, ref=TF.linear, marker="hw1_autograd"),
    # -------- shapes
    _random_row("reshape", lambda x, shape: x.reshape(*shape), ("4x6", [(2, 3, 4)], dict(shape=(4, 6))),
               ("minus1", [(2, 3, 4)], dict(shape=(-1, 4))), ("tuple", [(2, 3, 4)], dict(shape=((3, 8),))),
               ("1d_to_2d", [(6,)], dict(shape=(2, 3))), ("to_0d", [(1, 1)], dict(shape=((),))),
               ("0x4", [(0, 4)], dict(shape=(4, 0)))),
    # torch's view refuses a non-contiguous input that the new shape cannot stride over
    _random_row("view", lambda x, shape: x.view(*shape), ("6x4", [(2, 3, 4)], dict(shape=(6, 4))),
               ("minus1", [(2, 3, 4)], dict(shape=(-1,))), ("0x4", [(0, 4)], dict(shape=(2, 0, 2))),
               noncontiguous=False),
    _random_row("flatten", lambda x, dims=(): x.flatten(*dims), ("from1", [(2, 3, 4)], dict(dims=(1,))),
               ("all", [(2, 3, 4)], {}), ("middle", [(2, 3, 4, 2)], dict(dims=(1, 2))), ("0d", [()], {}),
               ("2x0x3", [(2, 0, 3)], dict(dims=(1,))),
               error_inputs=(ErrorInput("start_dim5", (X3,), dict(dims=(5,)), IndexError),)),
    _random_row("permute", lambda x, dims: x.permute(*dims), ("2_0_1", [(2, 3, 4)], dict(dims=(2, 0, 1))),
               ("negative", [(2, 3, 4)], dict(dims=(-1, 0, -2))), ("1d", [(5,)], dict(dims=(0,))),
               ("0x3x2", [(0, 3, 2)], dict(dims=(2, 0, 1))),
               error_inputs=(ErrorInput("dim5", (X3,), dict(dims=(0, 1, 5)), IndexError),)),
    _random_row("transpose", lambda x, dim0, dim1: x.transpose(dim0, dim1),
               ("0_2", [(2, 3, 4)], dict(dim0=0, dim1=2)), ("negative", [(3, 4)], dict(dim0=-1, dim1=-2)),
               ("3x1", [(3, 1)], dict(dim0=0, dim1=1)), ("0x3", [(0, 3)], dict(dim0=0, dim1=1)),
               error_inputs=(ErrorInput("dim5", (X3,), dict(dim0=0, dim1=5), IndexError),)),
    _random_row("T", lambda x: x.T, ("3x4", [(3, 4)], {}), ("1x4", [(1, 4)], {}), ("0x3", [(0, 3)], {})),
    _random_row("unsqueeze", lambda x, dim: x.unsqueeze(dim), ("dim1", [(3, 4)], dict(dim=1)),
               ("dim_minus1", [(3, 4)], dict(dim=-1)), ("0d", [()], dict(dim=0)), ("0x4", [(0, 4)], dict(dim=0)),
               error_inputs=(ErrorInput("dim10", (X3,), dict(dim=10), IndexError),
                             ErrorInput("dim_minus10", (X3,), dict(dim=-10), IndexError))),
    _random_row("squeeze", lambda x, dims=(): x.squeeze(*dims), ("all", [(3, 1, 4, 1)], {}),
               ("dim1", [(3, 1, 4)], dict(dims=(1,))), ("not_size1", [(3, 4)], dict(dims=(0,))),
               ("negative", [(3, 4, 1)], dict(dims=(-1,))), ("0x1", [(0, 1)], {}),
               error_inputs=(ErrorInput("dim5", (X3,), dict(dims=(5,)), IndexError),)),
    _random_row("expand", lambda x, shape: x.expand(*shape), ("3x1", [(3, 1)], dict(shape=(2, 3, 4))),
               ("minus1", [(3, 1)], dict(shape=(2, -1, 4))), ("1d", [(1,)], dict(shape=(5,))),
               ("to_size0", [(1, 3)], dict(shape=(0, 3)))),
    _random_row("broadcast_to", lambda x, shape: x.broadcast_to(shape), ("1d", [(4,)], dict(shape=(2, 3, 4))),
               ("1x1", [(1, 1)], dict(shape=(2, 3)))),
    _random_row("contiguous", lambda x: x.contiguous() * 2, ("3x4", [(3, 4)], {})),
    # -------- indexing, joins and splits
    OpInfo("getitem", lambda x, index: x[index], getitem_samples, dtypes=ANY),
    OpInfo("cat", lambda *xs, dim: mx.cat(list(xs), dim=dim), cat_samples, ref=lambda *xs, dim: torch.cat(xs, dim=dim),
           dtypes=ANY),
    OpInfo("concat", lambda *xs, dim: mx.concat(list(xs), dim=dim), cat_samples,
           ref=lambda *xs, dim: torch.cat(xs, dim=dim)),
    OpInfo("stack", lambda *xs, dim: mx.stack(list(xs), dim=dim), stack_samples,
           ref=lambda *xs, dim: torch.stack(xs, dim=dim), dtypes=ANY),
    OpInfo("Tensor.split", lambda x, size, dim: x.split(size, dim), SPLIT_CASES, dtypes=NUMERIC),
    OpInfo("mx.split", lambda x, size, dim: mx.split(x, size, dim), SPLIT_CASES,
           ref=lambda x, size, dim: torch.split(x, size, dim)),
    OpInfo("Tensor.chunk", lambda x, chunks, dim: x.chunk(chunks, dim), CHUNK_CASES, dtypes=NUMERIC),
    OpInfo("mx.chunk", lambda x, chunks, dim: mx.chunk(x, chunks, dim), CHUNK_CASES,
           ref=lambda x, chunks, dim: torch.chunk(x, chunks, dim)),
    # -------- selection
    OpInfo("where", mx.where, where_samples, ref=torch.where, dtypes=NUMERIC),
    # minitx takes a Tensor fill value as a constant (torch would also differentiate it): only x gets a gradient
    OpInfo("masked_fill", lambda x, mask, value: x.masked_fill(mask, value), masked_fill_samples, grad_inputs=(0,)),
    # -------- nn ops
    *softmax_rows("softmax", "hw2_softmax_layernorm"),
    *softmax_rows("log_softmax", None),  # its reference kernel is given (not homework 2's softmax)
    OpInfo("layer_norm", lambda x, *wb, normalized_shape, eps=1e-5: F.layer_norm(x, normalized_shape, *wb, eps=eps),
           layer_norm_samples, marker="hw2_softmax_layernorm", error_inputs=_int64_refused(normalized_shape=3),
           ref=lambda x, *wb, normalized_shape, eps=1e-5: TF.layer_norm(x, _as_shape(normalized_shape), *wb, eps=eps)),
    _random_row("dropout", lambda x, **kw: F.dropout(x, **kw), ("p0", [(3, 4)], dict(p=0.0)),
               ("eval", [(3, 4)], dict(p=0.5, training=False)), ("0x4-eval", [(0, 4)], dict(p=0.5, training=False)),
               dtypes=FLOATS, ref=lambda x, **kw: TF.dropout(x, **kw)),
    OpInfo("embedding", lambda ids, w, **kw: F.embedding(ids, w, **kw), embedding_samples,
           ref=lambda ids, w, **kw: TF.embedding(ids, w, **kw),
           error_inputs=(ErrorInput("id_out_of_range", (np.array([0, 9]), np.zeros((5, 3), np.float32)), {},
                                    IndexError),)),
    OpInfo("cross_entropy", lambda x, t, **kw: F.cross_entropy(x, t, **kw), cross_entropy_samples,
           ref=lambda x, t, **kw: TF.cross_entropy(x, t, **kw), error_inputs=(
               ErrorInput("float_target", (np.zeros((3, 4), np.float32), np.array([1.0, 2.0, 0.0], np.float32)), {},
                          RuntimeError),)),
    OpInfo("linear_cross_entropy", lambda h, w, t, chunk: linear_cross_entropy(h, w, t, chunk=chunk),
           linear_cross_entropy_samples, ref=lambda h, w, t, chunk: TF.cross_entropy(h @ w.T, t), grad_inputs=(0, 1)),
    OpInfo("mse_loss", lambda x, y, **kw: F.mse_loss(x, y, **kw), mse_samples,
           ref=lambda x, y, **kw: TF.mse_loss(x, y, **kw)),
    # -------- attention; the float additive mask (input 3) is a constant, not differentiated
    OpInfo("scaled_dot_product_attention", sdpa, sdpa_samples, ref=torch_sdpa, grad_inputs=(0, 1, 2),
           marker="hw3_attention", error_inputs=SDPA_ERRORS),
    OpInfo("scaled_dot_product_attention_dropout", sdpa_dropout, sdpa_dropout_samples, ref=torch_sdpa_dropout,
           grad_inputs=(0, 1, 2), noncontiguous=True),
)
