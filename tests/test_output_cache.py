"""The output cache of the C++ kernels (csrc/output_cache.h): large outputs reuse freed blocks, a block goes
back only when no array or view uses it, the limit is honoured, and results never depend on what a reused
block held before."""
import subprocess
import sys
import threading

import numpy as np
import pytest

from minitx import kernels, reference

MIB = 1 << 20


@pytest.fixture
def cache():
    """A cache with the default limit, empty at the start and restored after the test."""
    limit = kernels.output_cache_info()["limit_bytes"]
    kernels.set_output_cache_limit(256 * MIB)
    kernels.empty_output_cache()
    yield kernels
    kernels.set_output_cache_limit(limit)


def big(rng, rows=1024, n=512):  # 2 MiB of float32: above min_cached_output_bytes
    return rng.standard_normal((rows, n), dtype=np.float32)


def test_a_freed_output_is_reused_and_the_result_is_right(cache, rng):
    x = big(rng)
    y = cache.softmax_forward(x)
    address = y.ctypes.data
    before = cache.output_cache_info()
    del y
    assert cache.output_cache_info()["cached_blocks"] == before["cached_blocks"] + 1
    g = cache.gelu_forward(x)  # same size: takes the block softmax's output held
    after = cache.output_cache_info()
    assert g.ctypes.data == address and after["hits"] == before["hits"] + 1
    np.testing.assert_allclose(g, reference.gelu_forward(x), atol=1e-6)
    del g
    y = cache.softmax_forward(x)  # and back: nothing of the GELU values leaks into the softmax
    np.testing.assert_allclose(y, reference.softmax_forward(x), atol=1e-6)


def test_a_view_keeps_the_block_out_of_the_cache(cache, rng):
    y = cache.softmax_forward(big(rng))
    expected = y[::3].copy()
    view = y[::3]
    del y
    assert cache.output_cache_info()["cached_blocks"] == 0
    cache.softmax_forward(big(rng))  # would take the block if it had been given back
    np.testing.assert_array_equal(view, expected)
    del view
    assert cache.output_cache_info()["cached_blocks"] >= 1


def test_small_outputs_bypass_the_cache(cache, rng):
    before = cache.output_cache_info()
    cache.softmax_forward(big(rng, 16, 64))  # freed at once
    after = cache.output_cache_info()
    assert (after["hits"], after["misses"], after["cached_blocks"]) == (before["hits"], before["misses"], 0)


def test_large_outputs_are_aligned(cache, rng):
    assert cache.softmax_forward(big(rng)).ctypes.data % 64 == 0
    assert cache.matmul(big(rng, 1024, 64), big(rng, 64, 2048)).ctypes.data % (2 * MIB) == 0  # 8 MiB


def test_limit_evicts_oldest_and_zero_turns_it_off(cache, rng):
    cache.set_output_cache_limit(5 * MIB)
    outputs = [cache.gelu_forward(big(rng)) for _ in range(3)]  # 2 MiB each
    del outputs
    info = cache.output_cache_info()
    assert info["cached_bytes"] <= 5 * MIB and info["cached_blocks"] == 2
    cache.set_output_cache_limit(0)
    assert cache.output_cache_info()["cached_bytes"] == 0
    misses = cache.output_cache_info()["misses"]
    y = cache.gelu_forward(big(rng))
    assert y.base is None and y.flags.owndata  # off: NumPy's own allocator, as without the cache
    del y
    info = cache.output_cache_info()
    assert info["cached_bytes"] == 0 and info["misses"] == misses
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        cache.set_output_cache_limit(-1)


def test_empty_output_cache_releases_everything(cache, rng):
    cache.gelu_forward(big(rng))  # freed at once
    assert cache.output_cache_info()["cached_bytes"] > 0
    cache.empty_output_cache()
    assert cache.output_cache_info()["cached_bytes"] == 0


def test_every_kernel_output_is_right_through_reused_blocks(cache, rng):
    q, k, v = (rng.standard_normal((1, 4, 256, 64), dtype=np.float32) for _ in range(3))  # 256 KiB each…
    q, k, v = (np.repeat(t, 4, axis=1) for t in (q, k, v))  # …1 MiB each: cached
    for _ in range(2):  # the second round runs on blocks the first one freed
        out, lse = cache.attention_forward(q, k, v, causal=True)
        ref_out, ref_lse = reference.attention_forward(q, k, v, causal=True)
        np.testing.assert_allclose(out, ref_out, atol=2e-5)
        dq, dk, dv = cache.attention_backward(out, q, k, v, out, lse, causal=True)
        for got, want in zip((dq, dk, dv), reference.attention_backward(out, q, k, v, ref_out, ref_lse, causal=True)):
            np.testing.assert_allclose(got, want, atol=2e-4)
        del out, lse, dq, dk, dv
    assert cache.output_cache_info()["hits"] >= 4


def test_concurrent_threads_get_distinct_blocks(cache, rng):
    x = big(rng)
    want = reference.softmax_forward(x)
    errors = []

    def work():
        for _ in range(20):
            y = kernels.softmax_forward(x)
            if not np.allclose(y, want, atol=1e-6):
                errors.append("wrong result")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_limit_from_environment():
    code = "from minitx import kernels; print(kernels.output_cache_info()['limit_bytes'])"
    env = {"MINITX_OUTPUT_CACHE_MB": "3", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == 3 * MIB
