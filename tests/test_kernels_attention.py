"""The fused (flash) attention kernels against the NumPy reference, float64 and torch.

Forward and backward vs ``minitx.reference`` (float64) with causal masks (aligned to the end when
Lq != Lk), boolean and additive masks broadcast from (B,1,1,Lk) / (Lq,Lk) / full shapes, fully
masked rows (zeros and lse = -inf, never NaN), odd sizes; gradients vs torch's
``scaled_dot_product_attention`` autograd; and ``F.scaled_dot_product_attention`` under both backends.
"""
import math

import numpy as np
import pytest

import minitx
from minitx import reference

pytestmark = [pytest.mark.kernels, pytest.mark.attention]

if not minitx.cpp_available():
    pytest.skip("the C++ extension minitx._C is not built", allow_module_level=True)

from minitx import kernels  # noqa: E402

ATOL = 2e-5


def rand(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def make_mask(kind, rng, b, h, lq, lk):
    if kind is None:
        return None
    if kind == "padding":  # (B, 1, 1, Lk), every row keeps its first key
        keep = rng.random((b, 1, 1, lk)) > 0.4
        keep[..., 0] = True
        return keep
    if kind == "bool_full":
        return rng.random((b, h, lq, lk)) > 0.3
    if kind == "additive_2d":
        return (rng.standard_normal((lq, lk)) * 2).astype(np.float32)
    if kind == "additive_inf":  # -inf entries, broadcast over heads
        m = np.where(rng.random((b, 1, lq, lk)) > 0.3, 0.0, -np.inf).astype(np.float32)
        return m
    raise ValueError(kind)


def check_forward_backward(q, k, v, mask, causal, scale, rng):
    out, lse = kernels.attention_forward(q, k, v, mask, causal, scale)
    f64 = [a.astype(np.float64) for a in (q, k, v)]
    mask64 = mask if mask is None or mask.dtype == np.bool_ else mask.astype(np.float64)
    out64, lse64 = reference.attention_forward(*f64, mask64, causal, scale)
    assert not np.isnan(out).any() and not np.isnan(lse).any()
    np.testing.assert_allclose(out, out64, atol=ATOL, rtol=1e-4)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(lse64))
    finite = np.isfinite(lse64)
    np.testing.assert_allclose(lse[finite], lse64[finite], atol=ATOL, rtol=1e-5)
    dout = rand(rng, *out.shape)
    grads = kernels.attention_backward(dout, q, k, v, out, lse, mask, causal, scale)
    grads64 = reference.attention_backward(dout.astype(np.float64), *f64, out64, lse64, mask64, causal, scale)
    for got, want in zip(grads, grads64):
        assert not np.isnan(got).any()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    return out, lse


@pytest.mark.parametrize("mask_kind", [None, "padding", "bool_full", "additive_2d", "additive_inf"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lq,lk,d", [(1, 1, 1), (7, 7, 8), (7, 65, 16), (65, 63, 7), (127, 129, 32)])
def test_attention_matches_reference(lq, lk, d, causal, mask_kind, rng):
    b, h = 2, 3
    q, k, v = rand(rng, b, h, lq, d), rand(rng, b, h, lk, d), rand(rng, b, h, lk, d)
    check_forward_backward(q, k, v, make_mask(mask_kind, rng, b, h, lq, lk), causal, None, rng)


def test_attention_custom_scale_and_value_dim(rng):
    q, k, v = rand(rng, 1, 2, 9, 5), rand(rng, 1, 2, 11, 5), rand(rng, 1, 2, 11, 3)
    check_forward_backward(q, k, v, None, True, 0.7, rng)


def test_attention_avx_and_scalar_paths_agree(rng):
    q, k, v = rand(rng, 1, 2, 70, 64), rand(rng, 1, 2, 70, 64), rand(rng, 1, 2, 70, 64)
    dout = rand(rng, 1, 2, 70, 64)
    before = kernels.info()["isa"]
    results = {}
    for isa in kernels.info()["isa_available"]:
        kernels.set_isa(isa)
        out, lse = kernels.attention_forward(q, k, v, causal=True)
        results[isa] = (out, lse, *kernels.attention_backward(dout, q, k, v, out, lse, causal=True))
    kernels.set_isa(before)
    for got in results.values():  # out, lse, dq, dk, dv
        for a, b in zip(got, results["scalar"]):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_fully_masked_rows_give_zeros_not_nan(rng):
    b, h, lq, lk, d = 1, 2, 5, 6, 4
    q, k, v = rand(rng, b, h, lq, d), rand(rng, b, h, lk, d), rand(rng, b, h, lk, d)
    keep = np.ones((b, 1, lq, lk), bool)
    keep[0, 0, 2] = False  # query 2 sees nothing
    out, lse = check_forward_backward(q, k, v, keep, False, None, rng)
    assert (out[:, :, 2] == 0).all() and np.isneginf(lse[:, :, 2]).all()
    # causal with Lq > Lk: the first Lq - Lk queries see no key
    q = rand(rng, b, h, 8, d)
    out, lse = check_forward_backward(q, k[:, :, :3].copy(), v[:, :, :3].copy(), None, True, None, rng)
    assert (out[:, :, :5] == 0).all() and np.isneginf(lse[:, :, :5]).all()


def test_empty_key_sequence(rng):
    q, k = rand(rng, 1, 1, 3, 4), np.zeros((1, 1, 0, 4), np.float32)
    out, lse = kernels.attention_forward(q, k, k)
    assert out.shape == (1, 1, 3, 4) and (out == 0).all() and np.isneginf(lse).all()


def test_attention_gradients_match_torch_sdpa(rng):
    torch = pytest.importorskip("torch")
    b, h, lq, lk, d = 2, 2, 13, 17, 8
    q, k, v = rand(rng, b, h, lq, d), rand(rng, b, h, lk, d), rand(rng, b, h, lk, d)
    keep = rng.random((b, 1, 1, lk)) > 0.3
    keep[..., 0] = True
    causal = np.arange(lk)[None, :] <= np.arange(lq)[:, None] + (lk - lq)  # end-aligned (torch is_causal is not)
    keep = keep & causal
    dout = rand(rng, b, h, lq, d)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.tensor(keep))
    t_out.backward(torch.tensor(dout))
    out, lse = kernels.attention_forward(q, k, v, keep, False, None)
    np.testing.assert_allclose(out, t_out.detach().numpy(), atol=ATOL)
    dq, dk, dv = kernels.attention_backward(dout, q, k, v, out, lse, keep, False, None)
    np.testing.assert_allclose(dq, tq.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(dk, tk.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(dv, tv.grad.numpy(), atol=1e-4)
    # the causal flag and the explicit end-aligned mask are the same thing
    out_c, _ = kernels.attention_forward(q, k, v, None, True, None)
    out_m, _ = kernels.attention_forward(q, k, v, np.ascontiguousarray(causal), False, None)
    np.testing.assert_allclose(out_c, out_m, atol=1e-6)


@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
@pytest.mark.hw3_attention
def test_sdpa_tensor_api_fused_vs_unfused(rng):
    import minitx.nn.functional as F

    q, k, v = rand(rng, 2, 2, 6, 8), rand(rng, 2, 2, 9, 8), rand(rng, 2, 2, 9, 8)
    keep = rng.random((2, 1, 1, 9)) > 0.3
    keep[..., 0] = True
    results = {}
    for backend in ("numpy", "cpp"):
        with minitx.backend(backend):
            ts = [minitx.tensor(a, requires_grad=True) for a in (q, k, v)]
            out = F.scaled_dot_product_attention(*ts, attn_mask=keep, is_causal=True)
            (out * out).sum().backward()
            results[backend] = [out.numpy()] + [t.grad.numpy() for t in ts]
    for got, want in zip(results["cpp"], results["numpy"]):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_attention_validation_names_shapes(rng):
    q, k = rand(rng, 1, 2, 3, 4), rand(rng, 1, 2, 5, 8)
    with pytest.raises(ValueError, match=r"q is \(1, 2, 3, 4\), k is \(1, 2, 5, 8\)"):
        kernels.attention_forward(q, k, k)
    k = rand(rng, 1, 2, 5, 4)
    with pytest.raises(ValueError, match=r"mask of shape \(3, 4\) is not broadcastable to \(1, 2, 3, 5\)"):
        kernels.attention_forward(q, k, k, np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="mask must be bool"):
        kernels.attention_forward(q, k, k, np.ones((3, 5), np.int64))
    assert math.isfinite(kernels.attention_forward(q, k, k)[1].sum())
