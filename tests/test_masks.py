"""The one attention-mask rule (minitx/masks.py) on every path: boolean or additive, integer refused, fully
masked rows give zeros and pass no gradient — fused and unfused, NumPy and C++, identical."""
import numpy as np
import pytest

import minitx as mx
import minitx.nn.functional as F
from conftest import PATHS, on_path
from minitx.masks import canonical_mask
from minitx.nn.attention import MultiHeadAttention

pytestmark = [pytest.mark.attention]

def _qkv(rng, b=2, h=2, lq=3, lk=4, d=8):
    return [mx.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
            for s in ((b, h, lq, d), (b, h, lk, d), (b, h, lk, d))]


NEG = float(np.finfo(np.float32).min)


@pytest.mark.parametrize("kind", ["bool", "neg_inf", "finfo_min"])
def test_fully_masked_rows_give_zeros_and_no_gradient(path, kind, rng):
    q, k, v = _qkv(rng)
    keep = np.ones((2, 1, 3, 4), bool)
    keep[0, 0, 1] = False  # batch 0, query 1 sees nothing
    mask = keep if kind == "bool" else np.where(keep, 0.0, -np.inf if kind == "neg_inf" else NEG).astype(np.float32)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert np.all(out.numpy()[0, :, 1] == 0) and np.isfinite(out.numpy()).all()
    out.backward(np.ones(out.shape, np.float32))
    assert np.all(q.grad.numpy()[0, :, 1] == 0)
    for g in (q.grad, k.grad, v.grad):
        assert np.isfinite(g.numpy()).all()


def test_every_path_gives_the_same_masked_attention(rng):
    """Padding + causal + additive, with one fully padded batch row: all paths agree with the NumPy one."""
    q, k, v = _qkv(rng, lq=4, lk=4)
    additive = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
    results = []
    for path in PATHS:
        with on_path(*path):
            results.append(F.scaled_dot_product_attention(q, k, v, attn_mask=additive, is_causal=True).numpy())
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=1e-5, atol=1e-6)


def test_multi_head_attention_fully_padded_batch_row_is_zero_on_every_path(rng):
    """key_padding_mask meeting an additive attn_mask (HF's finfo.min convention) used to give zeros on NumPy
    and the mean of V on C++; now both give the output projection of zeros (its bias)."""
    mx.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    mha.eval()
    x = mx.tensor(rng.standard_normal((2, 3, 8)).astype(np.float32))
    padding = np.array([[1, 1, 0], [0, 0, 0]])  # batch row 1 is all padding
    additive = np.zeros((3, 3), np.float32)
    outs = []
    for path in PATHS:
        with on_path(*path):
            outs.append(mha(x, padding_mask=padding, attn_mask=additive).output.numpy())
    np.testing.assert_allclose(outs[-1], outs[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[0][1], np.broadcast_to(mha.out_proj.bias.numpy(), (3, 8)), atol=1e-6)


def test_need_weights_path_matches_fused(path, rng):
    q, k, v = (t.detach() for t in _qkv(rng))
    mask = rng.random((2, 1, 3, 4)) > 0.3
    mask[1, 0, 2] = False  # one fully masked row
    out, weights = mx.ops.attention.attention(q, k, v, attn_mask=mask, need_weights=True)
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    np.testing.assert_allclose(out.numpy(), fused.numpy(), rtol=1e-5, atol=1e-6)
    visible = np.broadcast_to(mask.any(-1), weights.shape[:-1])
    np.testing.assert_allclose(weights.numpy().sum(-1)[visible], 1.0, rtol=1e-5)
    assert np.all(weights.numpy()[~visible] == 0)


def test_integer_mask_is_refused_with_a_clear_error(rng):
    q, k, v = _qkv(rng)
    with pytest.raises(RuntimeError, match="attn_mask must be boolean .* got dtype int64"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 4), np.int64))


def test_mask_that_does_not_broadcast_names_both_shapes(rng):
    q, k, v = _qkv(rng)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 4\) does not broadcast .* \(2, 2, 3, 4\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((5, 4), bool))


def test_canonical_mask_turns_near_min_values_into_neg_inf():
    mask = np.array([[0.0, NEG, NEG / 2, -1e30, -np.inf]], np.float32)
    out = canonical_mask(mask, np.float32, (1, 5))
    np.testing.assert_array_equal(out, np.array([[0.0, -np.inf, -np.inf, -1e30, -np.inf]], np.float32))
    assert out.dtype == np.float32
