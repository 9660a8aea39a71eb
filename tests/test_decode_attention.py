"""The decoding attention kernel (csrc/attention/decode.cpp): at most 4 queries per head and no dropout, with K
and V read in place from a KV cache's prefix (a view into a larger buffer) or a broadcast (stride 0).

Every case is compared with the NumPy reference on contiguous copies, on every ISA: masks (padding, additive,
fully masked rows), causal alignment to the end, NaN keys and queries, Lk = 0, and the hand-over to the flash
kernel at 5 queries or with dropout.
"""
import numpy as np
import pytest

import minitx
from minitx import reference

pytestmark = [pytest.mark.kernels, pytest.mark.attention]

if not minitx.cpp_available():
    pytest.skip("the C++ extension minitx._C is not built", allow_module_level=True)

from minitx import kernels  # noqa: E402
from test_kernels import isa  # noqa: E402,F401  (the fixture: every ISA this CPU has)

pytestmark.append(pytest.mark.usefixtures("isa"))


def cache_prefix(rng, b, h, length, d, spare=7):
    """(B, H, length, D) keys and values as views of a (2, B, H, length + spare, D) buffer, like nn.KVCache."""
    buffer = rng.standard_normal((2, b, h, length + spare, d), dtype=np.float32)
    return buffer[0, :, :, :length], buffer[1, :, :, :length]


def assert_matches_reference(q, k, v, mask=None, causal=False):
    out, lse = kernels.attention_forward(q, k, v, mask, causal)
    with np.errstate(all="ignore"):
        ref_out, ref_lse = reference.attention_forward(q, np.ascontiguousarray(k), np.ascontiguousarray(v), mask,
                                                       causal)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref_out))
    np.testing.assert_allclose(out, ref_out, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(lse, ref_lse, atol=2e-5, rtol=1e-4)
    return out, lse


@pytest.mark.parametrize("lq", [1, 2, 4, 5])  # 5: the flash kernel, on the same strided views (copied)
@pytest.mark.parametrize("lk", [1, 13, 300])
@pytest.mark.parametrize("causal", [False, True])
def test_cache_prefix_read_in_place(lq, lk, causal):
    rng = np.random.default_rng(lq * 1000 + lk)
    k, v = cache_prefix(rng, 3, 2, lk, 16)
    q = rng.standard_normal((3, 2, lq, 16), dtype=np.float32)
    assert not k.flags.c_contiguous
    assert_matches_reference(q, k, v, causal=causal)


@pytest.mark.parametrize("kind", ["padding", "additive", "fully_masked_row"])
def test_masks(kind):
    rng = np.random.default_rng(1)
    k, v = cache_prefix(rng, 2, 3, 9, 8)
    q = rng.standard_normal((2, 3, 2, 8), dtype=np.float32)
    if kind == "padding":
        mask = rng.random((2, 1, 1, 9)) > 0.4
        mask[..., 0] = True
    elif kind == "additive":
        mask = rng.standard_normal((2, 3, 2, 9)).astype(np.float32)
        mask[0, 1, 1, 4] = -np.inf
    else:
        mask = np.ones((2, 3, 2, 9), bool)
        mask[1, 2, 0] = False
    out, lse = assert_matches_reference(q, k, v, mask)
    if kind == "fully_masked_row":
        assert np.all(out[1, 2, 0] == 0) and lse[1, 2, 0] == -np.inf


def test_broadcast_keys_and_values_are_read_in_place():
    rng = np.random.default_rng(2)
    k, v = (np.broadcast_to(rng.standard_normal((1, 4, 6, 8), dtype=np.float32), (3, 4, 6, 8)) for _ in range(2))
    q = rng.standard_normal((3, 4, 1, 8), dtype=np.float32)
    assert k.strides[0] == 0
    assert_matches_reference(q, k, v)


def test_edge_values_and_no_keys():
    rng = np.random.default_rng(3)
    k, v = cache_prefix(rng, 1, 2, 5, 8)
    q = rng.standard_normal((1, 2, 3, 8), dtype=np.float32)
    q[0, 0, 1, 2] = np.nan           # that query's row is NaN
    k[0, 1, 3, 0] = np.nan           # every query of head 1 sees it: NaN rows
    out, lse = assert_matches_reference(q, k, v)
    assert np.isnan(out[0, 0, 1]).all() and not np.isnan(out[0, 0, [0, 2]]).any() and np.isnan(out[0, 1]).all()
    hidden = np.ones((1, 2, 3, 5), bool)
    hidden[..., 3] = False           # the NaN key behind the mask stays hidden
    out, _ = assert_matches_reference(q, k, v, hidden)
    assert not np.isnan(out[0, 1]).any()
    empty_k, empty_v = cache_prefix(rng, 1, 2, 0, 8)
    out, lse = kernels.attention_forward(q, empty_k, empty_v)
    assert np.all(out == 0) and np.all(lse == -np.inf)


def test_dropout_takes_the_flash_kernel_with_the_same_mask():
    rng = np.random.default_rng(4)
    k, v = cache_prefix(rng, 2, 2, 11, 8)
    q = rng.standard_normal((2, 2, 1, 8), dtype=np.float32)
    out, _ = kernels.attention_forward(q, k, v, dropout_p=0.3, dropout_seed=7)
    ref, _ = reference.attention_forward(q, np.ascontiguousarray(k), np.ascontiguousarray(v), dropout_p=0.3,
                                         dropout_seed=7)
    np.testing.assert_allclose(out, ref, atol=2e-5, rtol=1e-4)


def test_bad_keys_are_refused_with_their_name():
    q = np.zeros((1, 1, 1, 4), np.float32)
    with pytest.raises(ValueError, match="k must be float32, got float64"):
        kernels.attention_forward(q, np.zeros((1, 1, 3, 4), np.float64), np.zeros((1, 1, 3, 4), np.float32))
    with pytest.raises(ValueError, match="v must be"):
        kernels.attention_forward(q, np.zeros((1, 1, 3, 4), np.float32), np.zeros((1, 1, 2, 4), np.float32))
    strided = np.zeros((1, 1, 3, 8), np.float32)[..., ::2]  # rows not contiguous: copied, then computed
    out, _ = kernels.attention_forward(q, strided, strided)
    assert out.shape == (1, 1, 1, 4) and np.all(out == 0)
