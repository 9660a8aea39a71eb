"""No input may crash the C++ kernels: hypothesis throws wrong ranks, dtypes, zero-size,
non-contiguous, mismatched and non-array arguments at every entry point of ``minitx.kernels``.

Each call must either return or raise ValueError/TypeError. The fuzzing runs in a subprocess, so a
segfault or abort shows up as a failed test (with its exit code) instead of killing the test run.
"""
import subprocess
import sys
import textwrap

import pytest

import minitx

pytestmark = pytest.mark.kernels

if not minitx.cpp_available():
    pytest.skip("the C++ extension minitx._C is not built", allow_module_level=True)

FUZZ = textwrap.dedent('''
    import numpy as np
    from hypothesis import given, settings, HealthCheck, strategies as st
    from minitx import kernels

    DTYPES = [np.float32, np.float32, np.float32, np.float64, np.float16, np.int32, np.bool_]

    @st.composite
    def arrays(draw):
        kind = draw(st.sampled_from(["array", "array", "array", "none", "scalar", "list"]))
        if kind == "none":
            return None
        if kind == "scalar":
            return draw(st.sampled_from([0, 1.5, "x", -3]))
        shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=5)))
        if kind == "list":
            return np.zeros(shape).tolist()
        a = np.zeros(shape, draw(st.sampled_from(DTYPES)))
        a[...] = 1
        layout = draw(st.sampled_from(["c", "c", "transposed", "strided"]))
        if layout == "transposed" and a.ndim >= 2:
            a = np.swapaxes(a, -1, -2)
        elif layout == "strided" and a.ndim >= 1:
            a = np.repeat(a, 2, axis=-1)[..., ::2]
        return a

    @st.composite
    def attention_args(draw):  # mostly consistent shapes, then one thing broken
        b, h, lq, lk, d = (draw(st.integers(0, 3)) for _ in range(5))
        q = np.ones((b, h, lq, d), np.float32)
        k = np.ones((b, h, lk, d), np.float32)
        v = np.ones((b, h, lk, draw(st.integers(0, 3))), np.float32)
        mask_shape = tuple(draw(st.sampled_from([1, b, h, lq, lk, 2])) for _ in range(draw(st.integers(0, 5))))
        mask = draw(st.sampled_from([None, np.ones(mask_shape, bool), np.zeros(mask_shape, np.float32)]))
        args = [q, k, v]
        broken = draw(st.integers(0, 3))
        if broken < 3:
            args[broken] = draw(arrays())
        return args, mask, draw(st.booleans())

    KERNELS = {
        "matmul": 2, "matmul_tn": 2, "matmul_nt": 2, "matmul_cffi": 2, "softmax_forward": 1, "softmax_backward": 2,
        "layer_norm_forward": 3, "layer_norm_backward": 5, "gelu_forward": 1, "gelu_backward": 2,
        "attention_forward": 3, "attention_backward": 6, "cross_entropy_forward": 2, "cross_entropy_backward": 4,
    }
    EXPECTED = (ValueError, TypeError)

    def call(fn, *args, **kw):
        try:
            fn(*args, **kw)
        except EXPECTED:
            pass

    cfg = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    for name, arity in KERNELS.items():
        fn = getattr(kernels, name)

        @cfg
        @given(st.lists(arrays(), min_size=arity, max_size=arity))
        def fuzz(args):
            call(fn, *args)

        fuzz()

    @cfg
    @given(attention_args())
    def fuzz_attention(a):
        (q, k, v), mask, causal = a
        call(kernels.attention_forward, q, k, v, mask, causal)
        if all(isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 4 for x in (q, k, v)):
            out = np.ones(q.shape[:3] + v.shape[3:], np.float32)
            lse = np.zeros(q.shape[:3], np.float32)
            call(kernels.attention_backward, out, q, k, v, out, lse, mask, causal)

    fuzz_attention()

    @cfg
    @given(st.integers(0, 4), st.integers(0, 5),
           st.lists(st.integers(-2**40, 2**40) | st.integers(-101, 6), max_size=6),
           st.integers(-101, 3), st.sampled_from([0.0, 0.3, 1.0, -0.1, 2.0, float("nan")]), st.integers(0, 4))
    def fuzz_cross_entropy(n, c, target, ignore_index, smoothing, broken):
        # consistent shapes and dtypes, then any int64 targets (out of range, ignored) and maybe one input broken
        logits, t = np.ones((n, c), np.float32), np.array(target, np.int64)
        dloss, lse = np.ones(n, np.float32), np.zeros(n)
        args = [dloss, logits, lse, t]
        if broken < 4:
            args[broken] = args[broken].astype(np.int32) if broken == 3 else args[broken][..., :1]
        call(kernels.cross_entropy_forward, args[1], args[3], ignore_index, smoothing)
        call(kernels.cross_entropy_backward, *args, ignore_index, smoothing)

    fuzz_cross_entropy()

    @cfg
    @given(st.integers(0, 20), st.integers(0, 6), st.booleans(), st.integers(-1, 3),
           st.sampled_from([0.0, 0.9, 1.0, -0.5, float("nan")]))
    def fuzz_adamw(n, broken, amsgrad, step, beta):
        # param, grad, m, v (and v_max) of one size, then maybe one of them the wrong size, dtype or read-only
        arrays = [np.ones(n, np.float32) for _ in range(5)]
        if broken < 5:
            arrays[broken] = [arrays[broken][:-1], arrays[broken].astype(np.float64)][n % 2]
        elif broken == 5:
            arrays[0].flags.writeable = False
        call(kernels.adamw_step, *arrays[:4], arrays[4] if amsgrad else None, 0.1, beta, 0.999, 1e-8, 0.01, step)

    fuzz_adamw()

    @cfg
    @given(st.integers(-3, 6), st.sampled_from(["none", "tanh", "erf", ""]))
    def fuzz_options(version, approximate):
        x = np.ones((2, 3), np.float32)
        call(kernels.matmul, x, x.T.copy(), version=version)
        call(kernels.gelu_forward, x, approximate)
        call(kernels.set_isa, approximate)

    fuzz_options()
    print("fuzzed ok")
''')


@pytest.mark.hw4_matmul_blocking
def test_no_input_crashes_any_kernel():
    proc = subprocess.run([sys.executable, "-c", FUZZ], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"kernel fuzzing crashed (exit code {proc.returncode}):\n{proc.stderr[-3000:]}"
    assert "fuzzed ok" in proc.stdout
