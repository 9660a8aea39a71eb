"""The autograd engine itself: graph walk, accumulation, freeing, grad modes, errors and dtypes."""
import numpy as np
import pytest
import torch

import minitx as mx
import minitx.nn.functional as F

pytestmark = pytest.mark.autograd


# ---------------------------------------------------------------- the graph walk
@pytest.mark.hw1_autograd
def test_chain_of_10000_ops_backprops_without_recursion():
    """backward() uses an explicit stack: a 10 000-op chain would overflow Python's recursion limit."""
    x = mx.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-3)
    del y  # freeing the long chain must not recurse either


@pytest.mark.hw1_autograd
def test_deep_chain_of_mixed_ops_matches_closed_form():
    x = mx.tensor(0.5, dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(5_000):
        y = (y + 1.0) - 1.0
    y = y * 3.0
    y.backward()
    assert x.grad.item() == pytest.approx(3.0)


@pytest.mark.hw1_autograd
def test_diamond_graph_sums_both_paths():
    """x feeds y and z, both feed the output: dL/dx = dL/dy dy/dx + dL/dz dz/dx."""
    x = mx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x  # dy/dx = 2x
    z = x.exp()  # dz/dx = e^x
    (y + z).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + np.exp(x.numpy()), rtol=1e-6)


@pytest.mark.hw1_autograd
def test_tensor_used_twice_in_one_op():
    x = mx.tensor([3.0, -2.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, -4.0])
    w = mx.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (w @ w).sum().backward()
    tw = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (tw @ tw).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy())


def test_shared_subgraph_reached_by_many_paths():
    """A node reached along 2^20 paths is still visited once (topological order, not path enumeration)."""
    x = mx.tensor(1.0, dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(20):
        y = y + y  # y = 2^k x
    y.backward()
    assert x.grad.item() == 2.0 ** 20


# ---------------------------------------------------------------- accumulation and freeing
@pytest.mark.hw1_autograd
def test_gradients_accumulate_until_zeroed():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


@pytest.mark.hw1_autograd
def test_second_backward_through_freed_graph_raises():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.backward()


@pytest.mark.hw1_autograd
def test_retain_graph_allows_second_backward():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2.0).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)


@pytest.mark.hw1_autograd
def test_grad_is_a_fresh_tensor_not_an_alias():
    """x.grad must not alias a buffer that a later op or backward could modify."""
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    g = np.ones(2, np.float32)
    (x + 0.0).backward(g)
    g[0] = 100.0
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    assert isinstance(x.grad, mx.Tensor) and x.grad.dtype == np.float32


@pytest.mark.hw1_autograd
def test_non_leaf_grads_are_not_kept_unless_retained():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    k = x * 3.0
    k.retain_grad()
    (h * k).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(k.grad.numpy(), h.numpy())
    assert not h.is_leaf and x.is_leaf


@pytest.mark.hw1_autograd
def test_backward_with_explicit_grad():
    x = mx.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * x
    y.backward(mx.tensor([[1.0, 0.0], [0.5, 2.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, 0.0], [3.0, 16.0]])


def test_backward_on_non_scalar_without_grad_raises():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*\(2,\)"):
        (x * 2.0).backward()


def test_backward_grad_of_wrong_shape_raises():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (x * 2.0).backward(np.ones(3))


def test_backward_on_tensor_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mx.tensor([1.0]).sum().backward()


# ---------------------------------------------------------------- grad modes
def test_no_grad_builds_no_graph_and_restores():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    assert mx.is_grad_enabled()
    with mx.no_grad():
        assert not mx.is_grad_enabled()
        y = x * 2.0
        with mx.enable_grad():
            z = x * 2.0
    assert mx.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad


def test_no_grad_restores_after_exception():
    with pytest.raises(ZeroDivisionError):
        with mx.no_grad():
            1 / 0
    assert mx.is_grad_enabled()


@pytest.mark.hw1_autograd
def test_detach_shares_data_but_cuts_the_graph():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.numpy(), y.numpy())
    (x * d).sum().backward()  # d is a constant: dL/dx = d
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


@pytest.mark.hw1_autograd
def test_requires_grad_():
    x = mx.tensor([1.0, 2.0])
    assert not x.requires_grad
    assert x.requires_grad_() is x and x.requires_grad
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    x.requires_grad_(False)
    assert not (x * x).requires_grad
    with pytest.raises(TypeError, match="floating point"):
        mx.tensor([1, 2]).requires_grad_()
    with pytest.raises(TypeError, match="floating point"):
        mx.tensor([1, 2], requires_grad=True)


@pytest.mark.hw1_autograd
def test_constant_inputs_get_no_grad():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    c = mx.tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None


# ---------------------------------------------------------------- errors name the op and both shapes
@pytest.mark.parametrize("op, pattern", [
    (lambda: mx.ones(2, 3) + mx.ones(4), r"add: .*\(2, 3\).*\(4,\)"),
    (lambda: mx.ones(2, 3) - mx.ones(3, 2), r"sub: .*\(2, 3\).*\(3, 2\)"),
    (lambda: mx.ones(2, 3) * mx.ones(4, 1, 2), r"mul: .*\(2, 3\).*\(4, 1, 2\)"),
    (lambda: mx.ones(2, 3) / mx.ones(2), r"div: .*\(2, 3\).*\(2,\)"),
    (lambda: mx.ones(2, 3) ** mx.ones(2), r"pow: .*\(2, 3\).*\(2,\)"),
    (lambda: mx.ones(4, 3) @ mx.ones(5, 2), r"matmul: .*\(4, 3\).*\(5, 2\)"),
    (lambda: mx.ones(2, 4, 3) @ mx.ones(3, 3, 2), r"matmul: .*\(2, 4, 3\).*\(3, 3, 2\)"),
    (lambda: mx.ones(2, 3).reshape(4, 2), r"reshape: .*\(2, 3\).*\(4, 2\)"),
    (lambda: mx.ones(2, 3).view(-1, 4), r"reshape: .*\(2, 3\).*\(-1, 4\)"),
    (lambda: mx.cat([mx.ones(2, 3), mx.ones(2, 4)]), r"concat: .*\(2, 3\).*\(2, 4\)"),
    (lambda: mx.stack([mx.ones(2, 3), mx.ones(3, 2)]), r"stack: .*\(2, 3\).*\(3, 2\)"),
    (lambda: mx.ones(3, 2).expand(3, 4), r"expand: .*\(3, 2\).*\(3, 4\)"),
    (lambda: mx.where(np.ones((2, 3), bool), mx.ones(2, 3), mx.ones(4)), r"where: .*\(4,\)"),
    (lambda: mx.ones(2, 3).masked_fill(np.ones(4, bool), 0.0), r"masked_fill: .*\(4,\).*\(2, 3\)"),
    (lambda: F.linear(mx.ones(2, 3), mx.ones(4, 5)), r"linear: .*\(2, 3\).*\(4, 5\)"),
    (lambda: F.linear(mx.ones(2, 3), mx.ones(3)), r"linear: .*\(2, 3\).*\(3,\)"),
    (lambda: F.linear(mx.ones(2, 3), mx.ones(4, 3), mx.ones(3)), r"linear: bias .*\(3,\).*\(4,\).*\(4, 3\)"),
    (lambda: F.layer_norm(mx.ones(2, 3), 3, mx.ones(4), mx.ones(3)), r"layer_norm: .*\(4,\).*\(2, 3\)"),
    (lambda: F.mse_loss(mx.ones(2, 3), mx.ones(3, 2)), r"mse_loss: .*\(2, 3\).*\(3, 2\)"),
    (lambda: F.cross_entropy(mx.ones(2, 3), np.zeros(3, np.int64)), r"cross_entropy: .*\(2, 3\).*\(3,\)"),
    (lambda: mx.ones(2, 3).split([1, 1], dim=1), r"split: .*\(2, 3\)"),
])
def test_shape_mismatch_raises_value_error_naming_op_and_shapes(op, pattern):
    with pytest.raises(ValueError, match=pattern):
        op()


@pytest.mark.parametrize("op", [lambda t: t.sum(2), lambda t: t.mean(-3), lambda t: t.max(5), lambda t: t.softmax(2),
                                lambda t: t.unsqueeze(3), lambda t: t.unsqueeze(-4), lambda t: t.squeeze(2),
                                lambda t: t.transpose(0, 2), lambda t: t.permute(0, 2), lambda t: t.flatten(2),
                                lambda t: mx.cat([t, t], dim=2), lambda t: mx.stack([t, t], dim=4)])
def test_dim_out_of_range_raises_index_error_like_torch(op):
    """minitx/ops/dims.py: a dim outside [-n, n - 1] raises IndexError naming the op and the range; never wraps."""
    with pytest.raises(IndexError, match=r"dimension out of range \(expected to be in range of \[-"):
        op(mx.ones(2, 3))


# ---------------------------------------------------------------- dtypes
def test_dtype_rules_match_torch():
    assert mx.tensor([1.0, 2.0]).dtype == np.float32  # Python floats: float32 (torch's default)
    assert mx.tensor(1.5).dtype == np.float32
    assert mx.tensor([1, 2]).dtype == np.int64  # Python ints: int64
    assert mx.tensor(np.array([1, 2], np.int32)).dtype == np.int32
    assert mx.tensor([True, False]).dtype == np.bool_
    assert mx.tensor(np.ones(2)).dtype == np.float64  # float64 arrays are preserved
    assert mx.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert mx.tensor([1, 2], dtype=mx.float32).dtype == np.float32
    for make in (mx.zeros, mx.ones, mx.randn, mx.rand):
        assert make(2, 3).dtype == np.float32
    assert mx.arange(5).dtype == np.int64 and mx.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert mx.full((2,), 3.0).dtype == np.float32


def test_tensor_copies_its_data():
    a = np.zeros(3, np.float32)
    t = mx.tensor(a)
    a[0] = 5.0
    assert t.numpy()[0] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
def test_ops_preserve_float_dtype_and_grads_match(dtype):
    """Python scalars do not promote (x * 2.0 stays float32); gradients have the input's dtype."""
    x = mx.tensor(np.array([[0.5, 1.5], [2.0, 3.0]], dtype), requires_grad=True)
    w = mx.tensor(np.ones((2, 3), dtype), requires_grad=True)
    y = ((x * 2.0 + 1) / 3 - 0.5) ** 2
    y = F.gelu(F.layer_norm((y @ w).tanh().sigmoid().exp().log().sqrt(), 3)).softmax(-1)
    loss = F.cross_entropy(y, np.array([0, 2])) + y.mean() + y.var() + y.max() + y.sum(0).min()
    assert loss.dtype == dtype
    loss.backward()
    assert x.grad.dtype == dtype and w.grad.dtype == dtype
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.hw1_autograd
def test_ndarray_on_the_left_defers_to_tensor():
    x = mx.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], np.float32) * x - np.ones(2, np.float32)
    assert isinstance(y, mx.Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


@pytest.mark.hw1_autograd
def test_int_tensor_arithmetic_and_casts():
    i = mx.tensor([1, 2, 3])
    assert (i + 1).dtype == np.int64
    assert (i * 2).numpy().tolist() == [2, 4, 6]
    assert i.float().dtype == np.float32 and i.double().dtype == np.float64
    x = mx.tensor([1.7, -2.2], requires_grad=True)
    assert x.long().numpy().tolist() == [1, -2] and not x.long().requires_grad
    assert x.astype(np.int32).dtype == np.int32
    y = x.double()
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)


def test_basic_tensor_api():
    x = mx.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and len(x) == 2
    assert isinstance(x.numpy(), np.ndarray)
    assert x.sum().item() == 21.0 and isinstance(x.sum().item(), float)
    with pytest.raises(ValueError, match="one-element"):
        x.item()
    assert x.argmax(1).numpy().tolist() == [2, 2]
    assert (x > 2.0).numpy().sum() == 4
    assert "requires_grad=True" in repr(mx.tensor([1.0], requires_grad=True))
