"""Attention dropout: one hashed mask (numpy_ref.attention_dropout_scale) on the fused and unfused paths.

The C++ kernel regenerates the mask from (seed, position) in forward and backward; these tests hold it to the
float64 NumPy reference on every ISA, check the mask's statistics and determinism, the Tensor API on both
backends (same seed, same numbers), p = 0 / p = 1 / eval mode, argument validation, and that the fused path
keeps no L×L array for the backward. (Values and gradients against torch's math with the same mask are rows of
the op conformance table: tests/op_table.py, ``scaled_dot_product_attention_dropout``.)
"""
import numpy as np
import pytest

import minitx
import minitx.nn.functional as F
from minitx import reference
from minitx.ops.attention import FusedAttention

pytestmark = pytest.mark.attention
needs_cpp = pytest.mark.skipif(not minitx.cpp_available(), reason="the C++ extension minitx._C is not built")


def rand(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def test_mask_keeps_one_minus_p_and_depends_only_on_seed_and_position():
    z = reference.attention_dropout_scale(7, (4, 3, 100, 100), 0.3, np.float32)
    kept = z > 0
    n = kept.size
    assert abs(kept.mean() - 0.7) < 4 * np.sqrt(0.21 / n)  # within 4 standard deviations of a binomial
    assert set(np.unique(z)) == {np.float32(0), np.float32(1 / 0.7)}
    again = reference.attention_dropout_scale(7, (4, 3, 100, 100), 0.3, np.float32)
    np.testing.assert_array_equal(z, again)
    other_seed = reference.attention_dropout_scale(8, (4, 3, 100, 100), 0.3, np.float32)
    assert (z != other_seed).mean() > 0.3
    # element n's decision does not depend on the shape around it (C-order position only)
    np.testing.assert_array_equal(reference.attention_dropout_scale(7, (1200, 100), 0.3, np.float32),
                                  z.reshape(1200, 100))
    assert (reference.attention_dropout_scale(7, (3, 5), 1.0, np.float64) == 0).all()
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        reference.attention_dropout_scale(7, (3, 5), 1.5, np.float32)


@needs_cpp
@pytest.mark.kernels
@pytest.mark.parametrize("causal,mask_kind", [(False, None), (True, None), (False, "padding"), (True, "additive")])
@pytest.mark.parametrize("b,h,lq,lk,d", [(2, 3, 5, 7, 8), (1, 2, 130, 257, 16), (1, 1, 129, 64, 5)])
def test_kernel_matches_reference_on_every_isa(b, h, lq, lk, d, causal, mask_kind, rng):
    from minitx import kernels

    q, k, v, dout = rand(rng, b, h, lq, d), rand(rng, b, h, lk, d), rand(rng, b, h, lk, d), rand(rng, b, h, lq, d)
    mask = None
    if mask_kind == "padding":
        mask = rng.random((b, 1, 1, lk)) > 0.3
        mask[..., 0] = True
    elif mask_kind == "additive":
        mask = rand(rng, lq, lk)
    f64 = [a.astype(np.float64) for a in (q, k, v)]
    mask64 = mask.astype(np.float64) if mask is not None and mask.dtype != bool else mask
    out64, lse64 = reference.attention_forward(*f64, mask64, causal, None, 0.25, 99)
    grads64 = reference.attention_backward(dout.astype(np.float64), *f64, out64, lse64, mask64, causal, None, 0.25, 99)
    before = kernels.info()["isa"]
    try:
        for isa in kernels.info()["isa_available"]:
            kernels.set_isa(isa)
            out, lse = kernels.attention_forward(q, k, v, mask, causal, None, 0.25, 99)
            np.testing.assert_allclose(out, out64, atol=2e-5, rtol=1e-4, err_msg=isa)
            grads = kernels.attention_backward(dout, q, k, v, out, lse, mask, causal, None, 0.25, 99)
            for name, got, want in zip("qkv", grads, grads64):
                np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4, err_msg=f"{isa} d{name}")
    finally:
        kernels.set_isa(before)


@needs_cpp
@pytest.mark.kernels
def test_kernel_dropout_changes_the_output_and_p0_does_not(rng):
    from minitx import kernels

    q, k, v = rand(rng, 1, 2, 9, 4), rand(rng, 1, 2, 9, 4), rand(rng, 1, 2, 9, 4)
    plain, lse = kernels.attention_forward(q, k, v)
    dropped, lse_dropped = kernels.attention_forward(q, k, v, None, False, None, 0.5, 3)
    np.testing.assert_array_equal(kernels.attention_forward(q, k, v, None, False, None, 0.0, 3)[0], plain)
    assert np.abs(dropped - plain).max() > 0.1
    np.testing.assert_array_equal(lse_dropped, lse)  # the log-sum-exp is taken before dropout


@needs_cpp
@pytest.mark.kernels
@pytest.mark.parametrize("p,seed,message", [(1.0, 0, r"dropout_p must be in \[0, 1\), got 1"),
                                            (-0.1, 0, r"dropout_p must be in \[0, 1\)"),
                                            (float("nan"), 0, r"dropout_p must be in \[0, 1\)"),
                                            (0.1, -5, r"dropout_seed must be >= 0")])
def test_kernel_validates_dropout_arguments(p, seed, message, rng):
    from minitx import kernels

    q = rand(rng, 1, 1, 3, 4)
    with pytest.raises(ValueError, match=message):
        kernels.attention_forward(q, q, q, None, False, None, p, seed)
    with pytest.raises(ValueError, match=message):
        kernels.attention_backward(q, q, q, q, q, np.zeros((1, 1, 3), np.float32), None, False, None, p, seed)


def run_sdpa(q, k, v, seed, **kwargs):
    """Output and input gradients of a training-mode SDPA call after minitx.manual_seed(seed)."""
    minitx.manual_seed(seed)
    ts = [minitx.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ts, **kwargs)
    (out * out).sum().backward()
    return [out.numpy()] + [t.grad.numpy() for t in ts]


@needs_cpp
def test_fused_and_unfused_paths_draw_the_same_mask(rng):
    q, k, v = rand(rng, 2, 2, 6, 8), rand(rng, 2, 2, 9, 8), rand(rng, 2, 2, 9, 8)
    keep = rng.random((2, 1, 1, 9)) > 0.3
    keep[..., 0] = True
    options = dict(attn_mask=keep, is_causal=True, dropout_p=0.4)
    with minitx.backend("cpp"):
        fused = run_sdpa(q, k, v, 5, **options)
        minitx.manual_seed(5)
        out = F.scaled_dot_product_attention(*(minitx.tensor(a, requires_grad=True) for a in (q, k, v)), **options)
        assert out._node.fn is FusedAttention
    with minitx.backend("numpy"):
        unfused = run_sdpa(q, k, v, 5, **options)
    for got, want in zip(fused, unfused):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    with minitx.backend("numpy"):
        plain = run_sdpa(q, k, v, 5, attn_mask=keep, is_causal=True)
    assert np.abs(fused[0] - plain[0]).max() > 0.05  # dropout did something
    assert np.abs(run_sdpa(q, k, v, 6, **options)[0] - fused[0]).max() > 0.05  # a new seed, a new mask


def test_eval_mode_and_p_zero_and_p_one(rng):
    q, k, v = rand(rng, 1, 2, 4, 8), rand(rng, 1, 2, 4, 8), rand(rng, 1, 2, 4, 8)
    plain = run_sdpa(q, k, v, 0)
    for got, want in zip(run_sdpa(q, k, v, 0, dropout_p=0.5, training=False), plain):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(run_sdpa(q, k, v, 0, dropout_p=0.0), plain):
        np.testing.assert_array_equal(got, want)
    out, dq, dk, dv = run_sdpa(q, k, v, 0, dropout_p=1.0)
    assert (out == 0).all() and (dq == 0).all() and (dk == 0).all() and (dv == 0).all()
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\], got 1.2"):
        run_sdpa(q, k, v, 0, dropout_p=1.2)


def test_gradcheck_with_dropout(rng):
    def f(q, k, v):
        minitx.manual_seed(11)  # one mask for every evaluation gradcheck makes
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, is_causal=True)

    inputs = [minitx.tensor(rng.standard_normal((1, 2, 5, 3)), requires_grad=True) for _ in range(3)]
    assert minitx.testing.gradcheck(f, inputs)


@needs_cpp
def test_fused_dropout_saves_no_lxl_array(rng):
    """The backward keeps q, k, v, out and the (B, H, Lq) log-sum-exp, not the dropped (B, H, Lq, Lk) P."""
    q, k, v = (minitx.tensor(rand(rng, 1, 2, 64, 8), requires_grad=True) for _ in range(3))
    with minitx.backend("cpp"):
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1)
    assert out._node.fn is FusedAttention
    saved = [a for a in out._node.ctx.saved if isinstance(a, np.ndarray)]
    assert [a.shape for a in saved] == [(1, 2, 64, 8)] * 4 + [(1, 2, 64)]
