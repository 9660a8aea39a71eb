"""Property tests (hypothesis): random shapes, broadcasting pairs, axes and non-contiguous views,
checked against PyTorch (forward and gradients) and against mathematical invariants."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitx as mx
import minitx.nn.functional as F
from torch_compare import assert_close, assert_close_to_torch

pytestmark = pytest.mark.autograd

SETTINGS = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4)

BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "pow": lambda x, y: x ** y,
}


def normal(seed, shape, low=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    return np.asarray(np.abs(x) + low, np.float32) if low is not None else x


@SETTINGS
@given(op=st.sampled_from(sorted(BINARY)), pair=broadcast_pairs, seed=seeds)
@pytest.mark.hw1_autograd
def test_binary_ops_broadcast_like_torch(op, pair, seed):
    """Forward values and the unbroadcast gradients of both operands, for any broadcastable pair."""
    a_shape, b_shape = pair.input_shapes
    a = normal(seed, a_shape, low=0.5 if op == "pow" else None)
    b = normal(seed + 1, b_shape, low=0.5 if op == "div" else None)
    assert_close_to_torch(BINARY[op], BINARY[op], a, b)


UNARY = {
    "neg": (lambda x: -x, lambda x: -x, None),
    "exp": (lambda x: x.exp(), torch.exp, None),
    "log": (lambda x: x.log(), torch.log, 0.1),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, 0.1),
    "tanh": (lambda x: x.tanh(), torch.tanh, None),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, None),
    "gelu": (lambda x: F.gelu(x), torch.nn.functional.gelu, None),
    "gelu-tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: torch.nn.functional.gelu(x, approximate="tanh"), None),
}


@SETTINGS
@given(op=st.sampled_from(sorted(UNARY)), shape=shapes, seed=seeds, data=st.data())
@pytest.mark.hw1_autograd
def test_unary_ops_on_any_shape_and_view(op, shape, seed, data):
    """Unary ops on a random shape, applied to a random permutation of the axes (a non-contiguous view)."""
    mx_fn, torch_fn, low = UNARY[op]
    perm = data.draw(st.permutations(range(len(shape))), label="perm")
    x = normal(seed, shape, low)
    assert_close_to_torch(lambda t: mx_fn(t.permute(*perm)), lambda t: torch_fn(t.permute(tuple(perm))), x)


@st.composite
def shape_and_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    axes = draw(st.none() | st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                                     unique_by=lambda a: a % len(shape)))
    return shape, axes


REDUCTIONS = {
    "sum": (lambda x, a, k: x.sum(a, keepdim=k), lambda x, d, k: x.sum(d, keepdim=k)),
    "mean": (lambda x, a, k: x.mean(a, keepdim=k), lambda x, d, k: x.mean(d, keepdim=k)),
    "max": (lambda x, a, k: x.max(a, keepdim=k), lambda x, d, k: torch.amax(x, d, keepdim=k)),
    "min": (lambda x, a, k: x.min(a, keepdim=k), lambda x, d, k: torch.amin(x, d, keepdim=k)),
    "var": (lambda x, a, k: x.var(a, keepdim=k, correction=0), lambda x, d, k: x.var(d, keepdim=k, correction=0)),
}


@SETTINGS
@given(op=st.sampled_from(sorted(REDUCTIONS)), shape_axes=shape_and_axes(), keepdim=st.booleans(), seed=seeds)
@pytest.mark.hw1_autograd
def test_reductions_over_random_axes_match_torch(op, shape_axes, keepdim, seed):
    shape, axes = shape_axes
    mx_fn, torch_fn = REDUCTIONS[op]
    dims = tuple(range(len(shape))) if axes is None else tuple(axes)
    x = normal(seed, shape)
    assert_close_to_torch(lambda t: mx_fn(t, axes, keepdim), lambda t: torch_fn(t, dims, keepdim), x)


@SETTINGS
@given(shape_axes=shape_and_axes(), keepdim=st.booleans(), seed=seeds)
def test_sum_and_mean_match_numpy_in_float64(shape_axes, keepdim, seed):
    shape, axes = shape_axes
    x = np.random.default_rng(seed).standard_normal(shape)
    np_axes = None if axes is None else tuple(axes)
    t = mx.tensor(x)
    np.testing.assert_allclose(t.sum(axes, keepdim=keepdim).numpy(), x.sum(np_axes, keepdims=keepdim), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.mean(axes, keepdim=keepdim).numpy(), x.mean(np_axes, keepdims=keepdim), rtol=1e-12, atol=1e-12)
    assert t.sum(axes, keepdim=keepdim).dtype == np.float64


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6), seed=seeds,
       scale=st.sampled_from([1.0, 30.0, 1e4]), data=st.data())
def test_softmax_rows_sum_to_one(shape, seed, scale, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = normal(seed, shape) * np.float32(scale)
    y = mx.tensor(x).softmax(axis).numpy()
    assert np.isfinite(y).all() and (y >= 0).all()
    np.testing.assert_allclose(y.sum(axis), 1.0, rtol=1e-5)
    assert_close(y, torch.softmax(torch.tensor(x), axis).numpy(), "softmax")


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6), seed=seeds,
       sign=st.sampled_from([1.0, -1.0]))
def test_log_softmax_is_stable_at_1e4(shape, seed, sign):
    """Inputs of ±1e4 overflow a naive exp; the max-shifted form stays finite and equals torch's."""
    x = (sign * 1e4 + normal(seed, shape) * 1e4).astype(np.float32)
    out = assert_close_to_torch(lambda t: t.log_softmax(-1), lambda t: torch.log_softmax(t, -1), x)[0]
    assert np.isfinite(out.numpy()).all() and (out.numpy() <= 0).all()
    np.testing.assert_allclose(np.exp(out.numpy().astype(np.float64)).sum(-1), 1.0, rtol=1e-5)


@SETTINGS
@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3),
       mkn=st.tuples(*[st.integers(1, 6)] * 3), seed=seeds)
@pytest.mark.hw1_autograd
def test_matmul_batch_broadcasting_matches_torch(batch, mkn, seed):
    m, k, n = mkn
    a = normal(seed, batch.input_shapes[0] + (m, k))
    b = normal(seed + 1, batch.input_shapes[1] + (k, n))
    assert_close_to_torch(lambda x, y: x @ y, lambda x, y: x @ y, a, b)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), seed=seeds, data=st.data())
def test_getitem_with_repeated_int_indices_accumulates(shape, seed, data):
    n = shape[0]
    index = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=8), label="index"))
    x = normal(seed, shape)
    assert_close_to_torch(lambda t: t[index], lambda t: t[torch.from_numpy(index)], x)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), seed=seeds, data=st.data())
def test_masked_fill_and_where_with_random_masks(shape, seed, data):
    # a mask that broadcasts *to* x's shape: some leading axes dropped, any other axis may be 1
    lead = data.draw(st.integers(0, len(shape)), label="dropped leading axes")
    mask_shape = tuple(data.draw(st.sampled_from([1, n])) for n in shape[lead:])
    mask = data.draw(hnp.arrays(np.bool_, mask_shape), label="mask")
    x, y = normal(seed, shape), normal(seed + 1, shape)
    assert_close_to_torch(lambda t: t.masked_fill(mask, 3.0), lambda t: t.masked_fill(torch.from_numpy(mask), 3.0), x)
    assert_close_to_torch(lambda a, b: mx.where(mask, a, b), lambda a, b: torch.where(torch.from_numpy(mask), a, b), x, y)
