"""``minitx.testing.gradcheck`` (central differences, float64) on every differentiable op,
including broadcasting pairs and non-contiguous inputs — and a check that gradcheck catches a wrong backward."""
import numpy as np
import pytest

import minitx as mx
import minitx.nn.functional as F
from minitx.ops.linear_cross_entropy import linear_cross_entropy
from minitx.testing import gradcheck

pytestmark = pytest.mark.autograd

_rng = np.random.default_rng(7)


def t(*shape, low=None, high=None, order="C"):
    """A float64 leaf requiring grad; ``low``/``high`` give uniform values, else standard normal.
    ``order="F"`` stores it column-major, so the op sees a non-contiguous (transposed) layout."""
    data = _rng.uniform(low, high, shape) if low is not None else _rng.standard_normal(shape)
    data = np.asfortranarray(data) if order == "F" else data
    return mx.tensor(data, requires_grad=True)


def apart(*shape):
    """Standard normals pushed away from 0 and from each other: no kinks, no ties."""
    data = np.sign(_rng.standard_normal(shape)) * _rng.permutation(np.arange(1, np.prod(shape) + 1)).reshape(shape)
    return mx.tensor(data * 0.3, requires_grad=True)


CASES = {
    # elementwise, incl. broadcasting pairs
    "add": (lambda x, y: x + y, [t(3, 4), t(3, 4)]),
    "add-broadcast": (lambda x, y: x + y, [t(3, 1), t(1, 4)]),
    "sub-broadcast": (lambda x, y: x - y, [t(2, 3, 4), t(4)]),
    "mul-broadcast": (lambda x, y: x * y, [t(2, 1, 4), t(3, 1)]),
    "div-broadcast": (lambda x, y: x / y, [t(2, 3), t(3, low=0.5, high=2.0)]),
    "div-scalar-numerator": (lambda x: 2.0 / x, [t(3, low=0.5, high=2.0)]),
    "neg": (lambda x: -x, [t(3, 2)]),
    "pow-int": (lambda x: x ** 3, [t(3, 2)]),
    "pow-tensor": (lambda x, y: x ** y, [t(3, 2, low=0.5, high=2.0), t(2)]),
    "rpow": (lambda x: 3.0 ** x, [t(3, 2)]),
    "exp": (lambda x: x.exp(), [t(3, 2)]),
    "log": (lambda x: x.log(), [t(3, 2, low=0.5, high=2.0)]),
    "sqrt": (lambda x: x.sqrt(), [t(3, 2, low=0.5, high=2.0)]),
    "abs": (lambda x: x.abs(), [apart(3, 2)]),
    "tanh": (lambda x: x.tanh(), [t(3, 2)]),
    "sigmoid": (lambda x: x.sigmoid(), [t(3, 2)]),
    "relu": (lambda x: x.relu(), [apart(3, 2)]),
    "gelu-erf": (lambda x: F.gelu(x), [t(3, 4)]),
    "gelu-tanh": (lambda x: F.gelu(x, approximate="tanh"), [t(3, 4)]),
    "cast-to-float64": (lambda x: x.double() * 2.0, [t(3)]),  # float32 steps would swamp ε = 1e-6
    # reductions
    "sum-axis": (lambda x: x.sum((0, 2)), [t(2, 3, 4)]),
    "sum-keepdim": (lambda x: x.sum(-1, keepdim=True), [t(2, 3, 4)]),
    "mean": (lambda x: x.mean(1), [t(2, 3, 4)]),
    "mean-all": (lambda x: x.mean(), [t(2, 3)]),
    "max-axis": (lambda x: x.max(1, keepdim=True), [apart(3, 4)]),
    "max-all": (lambda x: x.max(), [apart(3, 4)]),
    "min-axis": (lambda x: x.min(0), [apart(3, 4)]),
    "var": (lambda x: x.var(-1), [t(3, 5)]),
    "var-all-correction0": (lambda x: x.var(correction=0), [t(3, 5)]),
    # matmul
    "matmul-2d": (lambda a, b: a @ b, [t(3, 4), t(4, 2)]),
    "matmul-batched-broadcast": (lambda a, b: a @ b, [t(2, 1, 3, 4), t(3, 4, 2)]),
    "matmul-1d-left": (lambda a, b: a @ b, [t(4), t(2, 4, 3)]),
    "matmul-1d-right": (lambda a, b: a @ b, [t(2, 3, 4), t(4)]),
    "matmul-1d-1d": (lambda a, b: a @ b, [t(4), t(4)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [t(2, 3), t(4, 3), t(4)]),
    # shapes
    "reshape": (lambda x: x.reshape(3, -1) * mx.tensor(np.arange(8.0)), [t(2, 3, 4)]),
    "permute": (lambda x: x.permute(2, 0, 1), [t(2, 3, 4)]),
    "transpose": (lambda x: x.transpose(0, 1), [t(2, 3, 4)]),
    "expand": (lambda x: x.expand(2, 3, 4) * mx.tensor(np.arange(24.0).reshape(2, 3, 4)), [t(3, 1)]),
    "unsqueeze-squeeze": (lambda x: x.unsqueeze(0).squeeze(0).unsqueeze(-1), [t(2, 3)]),
    # indexing
    "getitem-slice": (lambda x: x[1:, ::2], [t(3, 4)]),
    "getitem-int-array-repeats": (lambda x: x[np.array([0, 2, 0, 0])], [t(3, 4)]),
    "getitem-mixed": (lambda x: x[np.array([1, 1]), 1:3], [t(3, 4)]),
    "getitem-bool-mask": (lambda x: x[x.numpy() > 0], [t(3, 4)]),
    "cat": (lambda a, b: mx.cat([a, b], dim=1), [t(2, 3), t(2, 2)]),
    "stack": (lambda a, b: mx.stack([a, b], dim=1), [t(2, 3), t(2, 3)]),
    "split": (lambda x: x.split([1, 3], dim=1)[1] * x.split(2, dim=1)[0].sum(), [t(2, 4)]),
    "chunk": (lambda x: mx.chunk(x, 3, dim=0)[2], [t(7, 2)]),
    "where": (lambda a, b: mx.where(np.array([[True], [False], [True]]), a, b), [t(3, 4), t(4)]),
    "masked_fill": (lambda x: x.masked_fill(np.array([True, False, True]), -5.0), [t(2, 3)]),
    # nn ops
    "softmax": (lambda x: x.softmax(-1), [t(3, 5)]),
    "softmax-axis0": (lambda x: x.softmax(0), [t(3, 5)]),
    "log_softmax": (lambda x: x.log_softmax(-1), [t(3, 5)]),
    "log_softmax-axis1": (lambda x: x.log_softmax(1), [t(2, 3, 4)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 5, w, b), [t(2, 3, 5), t(5), t(5)]),
    "layer_norm-no-affine": (lambda x: F.layer_norm(x, 5), [t(3, 5)]),
    # a fresh generator with the same seed on every call: the same mask for autograd and each difference
    "dropout-train": (lambda x: F.dropout(x, 0.4, generator=np.random.default_rng(5)), [t(4, 5)]),
    "embedding": (lambda w: F.embedding(np.array([[1, 3, 1], [0, 1, 4]]), w), [t(5, 3)]),
    # padding_idx deliberately zeroes a true derivative (that row stays fixed), so it is checked against
    # torch in test_ops_parity.py, not here.
    "cross_entropy": (lambda x: F.cross_entropy(x, np.array([1, 0, 3, -100])), [t(4, 5)]),
    "cross_entropy-smoothing-sum": (lambda x: F.cross_entropy(x, np.array([1, 0, 3]), label_smoothing=0.1,
                                                              reduction="sum"), [t(3, 5)]),
    "cross_entropy-none-3d": (lambda x: F.cross_entropy(x, np.array([[1, 0], [2, -100]]), reduction="none"),
                              [t(2, 3, 2)]),
    "mse_loss": (lambda x, y: F.mse_loss(x, y), [t(3, 4), t(3, 4)]),
    # the gradient is computed in the forward and scaled by dL/dloss (here 3) in the backward
    "linear_cross_entropy": (lambda h, w: linear_cross_entropy(h, w, np.array([1, -100, 3, 0, 2]), chunk=2) * 3.0,
                             [t(5, 3), t(4, 3)]),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
def test_gradcheck(name):
    fn, inputs = CASES[name]
    assert gradcheck(fn, inputs)


# ---------------------------------------------------------------- non-contiguous inputs
NON_CONTIGUOUS = {
    "mul-transposed": (lambda x, y: x.T * y, [t(4, 3), t(3, 4)]),
    "matmul-transposed": (lambda a, b: a.transpose(0, 1) @ b.T, [t(4, 3), t(2, 4)]),
    "matmul-batched-permuted": (lambda a, b: a.permute(1, 0, 2) @ b, [t(3, 2, 4), t(2, 4, 3)]),
    "softmax-transposed": (lambda x: x.T.softmax(-1), [t(5, 3)]),
    "log_softmax-transposed": (lambda x: x.T.log_softmax(-1), [t(5, 3)]),
    "layer_norm-transposed": (lambda x, w, b: F.layer_norm(x.T, 4, w, b), [t(4, 3), t(4), t(4)]),
    "gelu-transposed": (lambda x: F.gelu(x.T), [t(4, 3)]),
    "sum-transposed": (lambda x: x.T.sum(0), [t(4, 3)]),
    "var-transposed": (lambda x: x.permute(2, 0, 1).var(-1), [t(2, 3, 4)]),
    "getitem-strided": (lambda x: x[::2].T[np.array([0, 0, 2])], [t(5, 3)]),
    "cross_entropy-transposed": (lambda x: F.cross_entropy(x.T, np.array([0, 2, 1])), [t(4, 3)]),
    "fortran-ordered-leaf": (lambda a, b: (a @ b).softmax(-1), [t(3, 4, order="F"), t(4, 2, order="F")]),
}


@pytest.mark.parametrize("name", list(NON_CONTIGUOUS))
@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
def test_gradcheck_non_contiguous(name):
    fn, inputs = NON_CONTIGUOUS[name]
    assert gradcheck(fn, inputs)


# ---------------------------------------------------------------- gradcheck itself
class SquareWithWrongBackward(mx.Function):
    """y = x², with the classic mistake dx = x * dy (the factor 2 forgotten)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return x * grad


class SquareWithRightBackward(SquareWithWrongBackward):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return 2.0 * x * grad


class SwappedOperandsMul(mx.Function):
    """z = x * y with the two gradients swapped: right only when x == y."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        return grad * x, grad * y


@pytest.mark.hw1_autograd
def test_gradcheck_fails_on_a_wrong_backward():
    with pytest.raises(AssertionError, match="gradcheck failed for input 0"):
        gradcheck(SquareWithWrongBackward.apply, [t(3, 2)])
    assert gradcheck(SquareWithWrongBackward.apply, [t(3, 2)], raise_exception=False) is False


@pytest.mark.hw1_autograd
def test_gradcheck_names_the_wrong_input():
    with pytest.raises(AssertionError, match="input 1"):
        gradcheck(lambda x, y: SwappedOperandsMul.apply(x, y), [mx.tensor(np.ones(3)), t(3)])


@pytest.mark.hw1_autograd
def test_gradcheck_passes_on_the_fixed_backward():
    assert gradcheck(SquareWithRightBackward.apply, [t(3, 2)])


@pytest.mark.hw1_autograd
def test_gradcheck_passes_integer_tensors_through_and_ignores_no_grad():
    ids = mx.tensor([[1, 0], [2, 2]])
    with mx.no_grad():
        assert gradcheck(lambda w, i: F.embedding(i, w).tanh(), [t(3, 4), ids])
    assert ids.dtype == np.int64


@pytest.mark.hw1_autograd
def test_gradcheck_works_from_float32_inputs_and_leaves_them_untouched():
    x = mx.tensor(np.array([0.3, -1.2, 2.0], np.float32), requires_grad=True)
    before = x.numpy().copy()
    assert gradcheck(lambda v: (v * v).tanh(), [x])
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.grad is None and x.dtype == np.float32
