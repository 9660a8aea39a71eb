"""Op behaviour that the op table (tests/op_table.py, run by test_conformance.py) cannot state as one
call compared with torch: dropout in training mode (random masks) and its seeding, and the all-ignored
cross-entropy check of the loss together with its gradient. Tolerances live in torch_compare.py."""
import numpy as np
import pytest
import torch.nn.functional as TF

import minitx as mx
import minitx.nn.functional as F
from torch_compare import assert_close_to_torch

pytestmark = pytest.mark.ops


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


def test_dropout_saves_a_boolean_mask():
    """What the backward keeps is the keep mask, 1 byte per element (a float32 mask would be 4)."""
    x = mx.tensor(np.ones((64, 32), np.float32), requires_grad=True)
    y = F.dropout(x, 0.25)
    keep, scale = y._node.ctx.saved
    assert keep.dtype == np.bool_ and keep.shape == (64, 32) and scale == np.float32(1 / 0.75)
    np.testing.assert_array_equal(y.numpy() != 0, keep)


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
    logits = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    target = np.full(3, -100)
    x = mx.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target)
    loss.backward()
    assert np.isnan(loss.item()) and not x.grad.numpy().any()
    for reduction in ["sum", "none"]:
        assert_close_to_torch(lambda x, t: F.cross_entropy(x, t, reduction=reduction),
                              lambda x, t: TF.cross_entropy(x, t, reduction=reduction), logits, target)
