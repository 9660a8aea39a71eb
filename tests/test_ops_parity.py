"""Every op against PyTorch 2.13: forward values and the gradient of every input, in float32,
under both kernel backends (``backend_name`` fixture). Tolerances live in torch_compare.py."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minitx as mx
import minitx.nn.functional as F
from torch_compare import assert_close_to_torch

pytestmark = pytest.mark.ops

_rng = np.random.default_rng(1234)


def randn(*shape):
    return _rng.standard_normal(shape).astype(np.float32)


def positive(*shape):
    return _rng.uniform(0.5, 2.0, shape).astype(np.float32)


def away_from_zero(*shape):
    """Values with |x| >= 0.1, so kinks (abs, relu) are never hit and finite differences are fair."""
    x = randn(*shape)
    return np.where(np.abs(x) < 0.1, np.sign(x + 1e-3) * 0.5, x).astype(np.float32)


def ids(high, *shape):
    return _rng.integers(0, high, shape).astype(np.int64)


# (id, minitx fn, torch fn, inputs, extra kwargs for assert_close_to_torch)
CASES = []


def case(name, mx_fn, torch_fn, *inputs, **kw):
    CASES.append(pytest.param(mx_fn, torch_fn, inputs, kw, id=name))


def same(fn):
    """Most ops have the same spelling in both libraries."""
    return fn


# ---------------------------------------------------------------- binary arithmetic, with broadcasting
for op_name, op in [("add", lambda x, y: x + y), ("sub", lambda x, y: x - y),
                    ("mul", lambda x, y: x * y), ("div", lambda x, y: x / y)]:
    for shapes in [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((2, 1, 4), (3, 1)),
                   ((), (2, 3))]:
        b = positive(*shapes[1]) if op_name == "div" else randn(*shapes[1])
        case(f"{op_name}-{shapes[0]}-{shapes[1]}", op, op, randn(*shapes[0]), b)
    case(f"{op_name}-python-scalar-right", lambda x, op=op: op(x, 2.5), lambda x, op=op: op(x, 2.5), positive(3, 4))
    case(f"{op_name}-python-scalar-left", lambda x, op=op: op(2.5, x), lambda x, op=op: op(2.5, x), positive(3, 4))
case("neg", lambda x: -x, lambda x: -x, randn(3, 4))
case("pow-square", lambda x: x ** 2, lambda x: x ** 2, randn(3, 4))
case("pow-cube", lambda x: x ** 3, lambda x: x ** 3, randn(3, 4))
case("pow-sqrt", lambda x: x ** 0.5, lambda x: x ** 0.5, positive(3, 4))
case("pow-tensor-exponent", lambda x, y: x ** y, lambda x, y: x ** y, positive(3, 4), randn(1, 4))
case("rpow", lambda x: 2.0 ** x, lambda x: 2.0 ** x, randn(3, 4))
case("pow-zero-exponent-at-zero", lambda x: x ** 0, lambda x: x ** 0, np.array([0.0, 1.5, -2.0], np.float32))
case("pow-at-zero-base", lambda x: x ** 2, lambda x: x ** 2, np.array([0.0, 1.5, -2.0], np.float32))
case("pow-method", lambda x: x.pow(3), lambda x: x.pow(3), randn(3, 4))

# ---------------------------------------------------------------- unary maths and activations
case("exp", lambda x: x.exp(), torch.exp, randn(3, 4))
case("log", lambda x: x.log(), torch.log, positive(3, 4))
case("sqrt", lambda x: x.sqrt(), torch.sqrt, positive(3, 4))
case("abs", lambda x: x.abs(), torch.abs, away_from_zero(3, 4))
case("tanh", lambda x: x.tanh(), torch.tanh, randn(3, 4) * 3)
case("sigmoid", lambda x: x.sigmoid(), torch.sigmoid, randn(3, 4) * 3)
case("sigmoid-saturated", lambda x: x.sigmoid(), torch.sigmoid, np.array([-100.0, -30.0, 30.0, 100.0], np.float32))
case("relu", F.relu, TF.relu, away_from_zero(3, 4))
# erf is computed with a Chebyshev fit whose error is < 1.2e-7 (numpy_ref.erf): about 1 float32 ulp of
# Φ(x) <= 1, so the default tolerance holds for the exact form too.
case("gelu-erf", lambda x: F.gelu(x), lambda x: TF.gelu(x), randn(4, 5) * 3)
case("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"), randn(4, 5) * 3)
case("mx.exp/log/sqrt/tanh/sigmoid/abs", lambda x: mx.abs(mx.tanh(mx.sigmoid(mx.sqrt(mx.log(mx.exp(x)))))),
     lambda x: torch.abs(torch.tanh(torch.sigmoid(torch.sqrt(torch.log(torch.exp(x)))))), positive(3, 4))

# ---------------------------------------------------------------- reductions over axes, keepdim
_x3 = randn(2, 3, 4)
for axis in [None, 0, 1, -1, (0, 2), (-1, -2)]:
    for keepdim in [False, True]:
        dims = tuple(range(3)) if axis is None else axis
        tag = f"axis={axis}-keepdim={keepdim}"
        case(f"sum-{tag}", lambda x, a=axis, k=keepdim: x.sum(a, keepdim=k),
             lambda x, d=dims, k=keepdim: x.sum(d, keepdim=k), _x3)
        case(f"mean-{tag}", lambda x, a=axis, k=keepdim: x.mean(a, keepdim=k),
             lambda x, d=dims, k=keepdim: x.mean(d, keepdim=k), _x3)
        case(f"max-{tag}", lambda x, a=axis, k=keepdim: x.max(a, keepdim=k),
             lambda x, d=dims, k=keepdim: torch.amax(x, d, keepdim=k), _x3)
        case(f"min-{tag}", lambda x, a=axis, k=keepdim: x.min(a, keepdim=k),
             lambda x, d=dims, k=keepdim: torch.amin(x, d, keepdim=k), _x3)
        case(f"var-{tag}", lambda x, a=axis, k=keepdim: x.var(a, keepdim=k),
             lambda x, d=dims, k=keepdim: x.var(d, keepdim=k), _x3)
case("var-correction0", lambda x: x.var(-1, correction=0), lambda x: x.var(-1, correction=0), _x3)
# Ties: like torch.amax/amin, the gradient is split evenly between the tied maxima.
_ties = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, 0.0, 5.0]], np.float32)
case("max-ties-axis", lambda x: x.max(1), lambda x: torch.amax(x, 1), _ties)
case("max-ties-all", lambda x: x.max(), lambda x: torch.amax(x), _ties)
case("min-ties-axis", lambda x: x.min(0), lambda x: torch.amin(x, 0), _ties)
case("max-dim-no-ties-vs-torch.max", lambda x: x.max(1), lambda x: x.max(1).values, randn(3, 5))
case("sum-0d", lambda x: x.sum(), lambda x: x.sum(), randn())

# ---------------------------------------------------------------- matmul
for a_shape, b_shape in [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 5)), ((3, 4), (2, 4, 5)),
                         ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 5)),
                         ((1, 4), (4, 1)), ((17, 33), (33, 9))]:
    case(f"matmul-{a_shape}@{b_shape}", lambda a, b: a @ b, lambda a, b: a @ b, randn(*a_shape), randn(*b_shape))
case("matmul-transposed-operands", lambda a, b: a.T @ b.transpose(0, 1), lambda a, b: a.T @ b.transpose(0, 1),
     randn(4, 3), randn(5, 4))
case("mx.matmul", mx.matmul, torch.matmul, randn(3, 4), randn(4, 2))
case("linear", F.linear, TF.linear, randn(2, 3, 4), randn(5, 4), randn(5))
case("linear-no-bias", F.linear, TF.linear, randn(3, 4), randn(5, 4))

# ---------------------------------------------------------------- shapes
case("reshape", lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6), randn(2, 3, 4))
case("reshape-minus1", lambda x: x.reshape(-1, 4), lambda x: x.reshape(-1, 4), randn(2, 3, 4))
case("reshape-tuple", lambda x: x.reshape((3, 8)), lambda x: x.reshape((3, 8)), randn(2, 3, 4))
case("view", lambda x: x.view(6, 4), lambda x: x.view(6, 4), randn(2, 3, 4))
case("flatten", lambda x: x.flatten(1), lambda x: x.flatten(1), randn(2, 3, 4))
case("permute", lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1), randn(2, 3, 4))
case("permute-negative", lambda x: x.permute(-1, 0, -2), lambda x: x.permute(-1, 0, -2), randn(2, 3, 4))
case("transpose", lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2), randn(2, 3, 4))
case("T", lambda x: x.T, lambda x: x.T, randn(3, 4))
case("unsqueeze", lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(1), randn(3, 4))
case("unsqueeze-negative", lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1), randn(3, 4))
case("squeeze", lambda x: x.squeeze(), lambda x: x.squeeze(), randn(3, 1, 4, 1))
case("squeeze-dim", lambda x: x.squeeze(1), lambda x: x.squeeze(1), randn(3, 1, 4))
case("expand", lambda x: x.expand(2, 3, 4), lambda x: x.expand(2, 3, 4), randn(3, 1))
case("expand-minus1", lambda x: x.expand(2, -1, 4), lambda x: x.expand(2, -1, 4), randn(3, 1))
case("broadcast_to", lambda x: x.broadcast_to((2, 3, 4)), lambda x: x.broadcast_to((2, 3, 4)), randn(4))
case("contiguous-of-transpose", lambda x: x.T.contiguous() * 2, lambda x: x.T.contiguous() * 2, randn(3, 4))

# ---------------------------------------------------------------- indexing
_rep = np.array([0, 2, 0, 0, 3], np.int64)  # repeats: the backward must accumulate
for name, index in [("int", 1), ("negative-int", -1), ("slice", (slice(None), slice(1, 3))),
                    ("step-slice", (slice(None, None, 2), slice(1, None, 2))), ("ellipsis", (Ellipsis, 0)),
                    ("none", (None, 1)), ("int-array-repeats", _rep), ("list-repeats", [1, 1, 0]),
                    ("int-array-2d", np.array([[0, 1], [1, 1]], np.int64)),
                    ("pair-of-arrays", (np.array([0, 1, 0]), np.array([2, 2, 2]))),
                    ("slice-and-array", (slice(1, 3), np.array([3, 0, 3]))),
                    ("bool-mask", _rng.random((4, 5)) > 0.5)]:
    case(f"getitem-{name}", lambda x, i=index: x[i], lambda x, i=index: x[i], randn(4, 5))
case("getitem-tensor-index", lambda x, i: x[i], lambda x, i: x[i], randn(4, 5), _rep)

# ---------------------------------------------------------------- join and split
case("cat-dim0", lambda a, b: mx.cat([a, b]), lambda a, b: torch.cat([a, b]), randn(2, 3), randn(4, 3))
case("cat-dim1", lambda a, b, c: mx.cat([a, b, c], dim=1), lambda a, b, c: torch.cat([a, b, c], dim=1),
     randn(2, 3), randn(2, 1), randn(2, 2))
case("cat-negative-dim", lambda a, b: mx.concat([a, b], dim=-1), lambda a, b: torch.cat([a, b], dim=-1),
     randn(2, 3, 2), randn(2, 3, 4))
case("stack-dim0", lambda a, b: mx.stack([a, b]), lambda a, b: torch.stack([a, b]), randn(2, 3), randn(2, 3))
case("stack-dim-last", lambda a, b, c: mx.stack([a, b, c], dim=-1), lambda a, b, c: torch.stack([a, b, c], dim=-1),
     randn(2, 3), randn(2, 3), randn(2, 3))
case("split-size", lambda x: x.split(2, dim=1), lambda x: x.split(2, dim=1), randn(3, 5))
case("split-sections", lambda x: mx.split(x, [1, 3, 1], dim=1), lambda x: torch.split(x, [1, 3, 1], dim=1), randn(3, 5))
case("split-negative-dim", lambda x: x.split(3, dim=-1), lambda x: x.split(3, dim=-1), randn(2, 3, 7))
case("chunk", lambda x: x.chunk(3, dim=0), lambda x: x.chunk(3, dim=0), randn(7, 2))
case("chunk-even", lambda x: mx.chunk(x, 2, dim=1), lambda x: torch.chunk(x, 2, dim=1), randn(3, 4))

# ---------------------------------------------------------------- selection
_cond = _rng.random((3, 4)) > 0.5
case("where", lambda c, a, b: mx.where(c, a, b), torch.where, _cond, randn(3, 4), randn(3, 4))
case("where-broadcast", lambda c, a, b: mx.where(c, a, b), torch.where, _rng.random((3, 1)) > 0.5, randn(1, 4), randn(3, 4))
case("where-scalar", lambda c, a: mx.where(c, a, 0.0), lambda c, a: torch.where(c, a, 0.0), _cond, randn(3, 4))
case("masked_fill", lambda x, m: x.masked_fill(m, -1e9), lambda x, m: x.masked_fill(m, -1e9), randn(3, 4), _cond)
case("masked_fill-tensor-value", lambda x, m: x.masked_fill(m, mx.tensor(2.0)),
     lambda x, m: x.masked_fill(m, torch.tensor(2.0)), randn(3, 4), _cond)
case("masked_fill-broadcast", lambda x, m: x.masked_fill(m, 0.5), lambda x, m: x.masked_fill(m, 0.5),
     randn(2, 3, 4), _rng.random((1, 4)) > 0.5)

# ---------------------------------------------------------------- nn ops
for axis in [-1, 0, 1]:
    case(f"softmax-axis{axis}", lambda x, a=axis: F.softmax(x, a), lambda x, a=axis: TF.softmax(x, a), randn(2, 3, 5) * 3)
    case(f"log_softmax-axis{axis}", lambda x, a=axis: F.log_softmax(x, a), lambda x, a=axis: TF.log_softmax(x, a),
         randn(2, 3, 5) * 3)
case("softmax-large-logits", lambda x: x.softmax(-1), lambda x: x.softmax(-1), randn(3, 6) * 1e3)
case("log_softmax-large-logits", lambda x: x.log_softmax(-1), lambda x: x.log_softmax(-1), randn(3, 6) * 1e4)
case("softmax-masked-row", lambda x: x.masked_fill(np.array([True, True, False, False]), -np.inf).softmax(-1),
     lambda x: x.masked_fill(torch.tensor([True, True, False, False]), -torch.inf).softmax(-1), randn(3, 4))
case("layer_norm", lambda x, w, b: F.layer_norm(x, 6, w, b), lambda x, w, b: TF.layer_norm(x, (6,), w, b),
     randn(2, 3, 6) * 2 + 1, randn(6), randn(6))
case("layer_norm-no-affine", lambda x: F.layer_norm(x, (6,)), lambda x: TF.layer_norm(x, (6,)), randn(4, 6))
case("layer_norm-eps", lambda x, w, b: F.layer_norm(x, 8, w, b, eps=1e-3),
     lambda x, w, b: TF.layer_norm(x, (8,), w, b, eps=1e-3), randn(5, 8) * 0.01, randn(8), randn(8))
case("dropout-p0", lambda x: F.dropout(x, 0.0), lambda x: TF.dropout(x, 0.0), randn(3, 4))
case("dropout-eval", lambda x: F.dropout(x, 0.5, training=False), lambda x: TF.dropout(x, 0.5, training=False),
     randn(3, 4))
case("embedding-repeated-ids", lambda i, w: F.embedding(i, w), TF.embedding, np.array([[1, 3, 1], [1, 0, 6]]), randn(7, 4))
case("embedding-padding_idx", lambda i, w: F.embedding(i, w, padding_idx=0),
     lambda i, w: TF.embedding(i, w, padding_idx=0), np.array([[0, 2, 0, 5], [2, 2, 0, 1]]), randn(6, 3))
_tgt = ids(5, 6)
_tgt_ignored = _tgt.copy()
_tgt_ignored[[1, 4]] = -100
for reduction in ["mean", "sum", "none"]:
    for smoothing in [0.0, 0.1]:
        for name, target in [("", _tgt), ("-ignore_index", _tgt_ignored)]:
            kw = dict(reduction=reduction, label_smoothing=smoothing)
            case(f"cross_entropy-{reduction}-ls{smoothing}{name}", lambda x, t, kw=kw: F.cross_entropy(x, t, **kw),
                 lambda x, t, kw=kw: TF.cross_entropy(x, t, **kw), randn(6, 5) * 2, target)
case("cross_entropy-custom-ignore_index", lambda x, t: F.cross_entropy(x, t, ignore_index=2),
     lambda x, t: TF.cross_entropy(x, t, ignore_index=2), randn(6, 5), _tgt)
_tgt3 = ids(4, 2, 3)
_tgt3[0, 1] = -100
for reduction in ["mean", "none"]:
    case(f"cross_entropy-3d-{reduction}", lambda x, t, r=reduction: F.cross_entropy(x, t, reduction=r, label_smoothing=0.2),
         lambda x, t, r=reduction: TF.cross_entropy(x, t, reduction=r, label_smoothing=0.2), randn(2, 4, 3), _tgt3)
for reduction in ["mean", "sum", "none"]:
    case(f"mse_loss-{reduction}", lambda x, y, r=reduction: F.mse_loss(x, y, reduction=r),
         lambda x, y, r=reduction: TF.mse_loss(x, y, reduction=r), randn(3, 4), randn(3, 4))


@pytest.mark.parametrize("mx_fn, torch_fn, inputs, kw", CASES)
@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
def test_op_matches_torch(backend_name, mx_fn, torch_fn, inputs, kw):
    assert_close_to_torch(mx_fn, torch_fn, *inputs, **kw)


# ---------------------------------------------------------------- dropout in training mode
def test_dropout_train_statistics_and_gradient(backend_name):
    """Each element is kept with probability 1 - p and scaled by 1/(1 - p); the gradient uses the same mask."""
    mx.manual_seed(0)
    p = 0.3
    x = mx.tensor(np.full((200, 100), 2.0, np.float32), requires_grad=True)
    y = F.dropout(x, p)
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], 2.0 / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 0.01  # 20 000 Bernoulli draws: std 0.0032
    assert abs(y.numpy().mean() - 2.0) < 0.03  # inverted dropout keeps the expectation
    w = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    y.backward(w)
    np.testing.assert_allclose(x.grad.numpy(), w * kept / (1 - p), rtol=1e-6)
    assert y.dtype == np.float32


def test_dropout_is_reproducible_with_manual_seed():
    x = mx.ones(5, 7)
    mx.manual_seed(42)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    mx.manual_seed(42)
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)  # a fresh mask each call
    state = mx.random.get_rng_state()
    d = F.dropout(x, 0.5).numpy()
    mx.random.set_rng_state(state)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), d)
    gen = np.random.default_rng(3)
    e = F.dropout(x, 0.5, generator=gen).numpy()
    np.testing.assert_array_equal(F.dropout(x, 0.5, generator=np.random.default_rng(3)).numpy(), e)


def test_dropout_p1_and_invalid_p():
    x = mx.ones(2, 3, requires_grad=True)
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0.0)
    np.testing.assert_array_equal(F.dropout(x, 1.0, training=False).numpy(), 1.0)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout"):
            F.dropout(x, p)


def test_cross_entropy_all_targets_ignored():
    """As in torch: the mean over zero kept targets is 0/0 = nan, with zero gradients; sum and none are 0."""
    logits = randn(3, 4)
    target = np.full(3, -100)
    x = mx.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target)
    loss.backward()
    assert np.isnan(loss.item()) and not x.grad.numpy().any()
    for reduction in ["sum", "none"]:
        assert_close_to_torch(lambda x, t: F.cross_entropy(x, t, reduction=reduction),
                              lambda x, t: TF.cross_entropy(x, t, reduction=reduction), logits, target)
