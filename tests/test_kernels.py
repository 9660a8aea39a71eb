"""The C++ kernels (minitx.kernels) against the NumPy reference (minitx.reference) and float64.

Every matmul rung, on every instruction set this CPU has (scalar, AVX2, AVX-512 where present —
skipped otherwise), on odd sizes, batched/broadcast and transposed operands; the fused softmax,
layer norm and GELU forward and backward; and the whole path through the autograd ops under the
"cpp" backend. Tolerances: matmul |err| <= 1e-5·sqrt(K)·scale, elementwise rtol 1e-5 / atol 1e-6.
"""
import numpy as np
import pytest

import minitx
from minitx import reference

pytestmark = pytest.mark.kernels

if not minitx.cpp_available():
    pytest.skip("the C++ extension minitx._C is not built", allow_module_level=True)

from minitx import kernels  # noqa: E402

ISAS = kernels.info()["isa_available"]
ALL_ISAS = ["scalar", "avx2", "avx512"]
SIZES = [(1, 1, 1), (7, 7, 7), (63, 65, 1), (65, 63, 127), (127, 1, 65), (33, 300, 70)]


@pytest.fixture(params=ALL_ISAS)
def isa(request):
    if request.param not in ISAS:
        pytest.skip(f"this CPU has no {request.param} (available: {ISAS})")
    before = kernels.info()["isa"]
    kernels.set_isa(request.param)
    yield request.param
    kernels.set_isa(before)


def rand(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def assert_matmul_close(c, a64, b64, k):
    """|C - A·B (float64)| <= 1e-5 · sqrt(K) · max|A||B| row scale."""
    expected = np.matmul(a64, b64)
    tol = 1e-5 * np.sqrt(max(k, 1)) * (np.abs(a64).max(initial=1) * np.abs(b64).max(initial=1)) * 4
    assert c.dtype == np.float32 and c.shape == expected.shape
    np.testing.assert_allclose(c, expected, atol=tol, rtol=0)


@pytest.mark.parametrize("version", [0, 1, pytest.param(2, marks=pytest.mark.hw4_matmul_blocking), 3, 4])
@pytest.mark.parametrize("m,k,n", SIZES)
def test_matmul_rungs_match_float64(isa, version, m, k, n, rng):
    a, b = rand(rng, m, k), rand(rng, k, n)
    c = kernels.matmul(a, b, version=version)
    assert_matmul_close(c, a.astype(np.float64), b.astype(np.float64), k)
    np.testing.assert_allclose(c, reference.matmul(a, b), atol=1e-5 * np.sqrt(k) * 16, rtol=1e-5)


@pytest.mark.parametrize("version", [0, 3, 4])
def test_matmul_transposed_variants(isa, version, rng):
    a, b = rand(rng, 65, 37), rand(rng, 37, 129)
    at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    expected = a.astype(np.float64) @ b
    np.testing.assert_allclose(kernels.matmul_tn(at, b, version=version), expected, atol=1e-4)
    np.testing.assert_allclose(kernels.matmul_nt(a, bt, version=version), expected, atol=1e-4)
    np.testing.assert_allclose(reference.matmul_tn(at, b), expected, atol=1e-4)
    np.testing.assert_allclose(reference.matmul_nt(a, bt), expected, atol=1e-4)


def test_matmul_large_threaded_matches_reference(rng):
    a, b = rand(rng, 300, 513), rand(rng, 513, 2100)  # > one NC panel, uneven thread split
    assert_matmul_close(kernels.matmul(a, b), a.astype(np.float64), b.astype(np.float64), 513)


@pytest.mark.parametrize("shape_a,shape_b", [((4, 7, 5), (4, 5, 3)), ((2, 1, 7, 5), (3, 5, 6)), ((7, 5), (2, 3, 5, 4)),
                                             ((3, 0, 5), (3, 5, 2)), ((2, 4, 0), (1, 0, 3))])
@pytest.mark.parametrize("version", [1, 4])
def test_matmul_batched_broadcast(shape_a, shape_b, version, rng):
    a, b = rand(rng, *shape_a), rand(rng, *shape_b)
    c = kernels.matmul(a, b, version=version)
    np.testing.assert_allclose(c, np.matmul(a.astype(np.float64), b), atol=1e-5)
    assert c.shape == np.matmul(a, b).shape


def test_matmul_many_small_batches_use_threads(rng):
    a, b = rand(rng, 64, 40, 48), rand(rng, 64, 48, 36)  # batch >= threads: whole products per thread
    np.testing.assert_allclose(kernels.matmul(a, b), np.matmul(a.astype(np.float64), b), atol=1e-4)


def test_matmul_cffi_matches_pybind(rng):
    a, b = rand(rng, 17, 9), rand(rng, 9, 33)
    np.testing.assert_array_equal(kernels.matmul_cffi(a, b), kernels.matmul(a, b))
    with pytest.raises(ValueError, match=r"a is \(17, 9\), b is \(17, 9\)"):
        kernels.matmul_cffi(a, a)


def test_matmul_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ: a is \(4, 3\), b is \(5, 2\)"):
        kernels.matmul(np.zeros((4, 3), np.float32), np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="float32"):
        kernels.matmul(np.zeros((4, 3)), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.matmul(np.zeros((3, 4), np.float32).T, np.zeros((3, 2), np.float32))

    with pytest.raises(ValueError, match="float32"):  # a byte-swapped float32 is not taken by the lean 2-D path
        kernels.matmul(np.zeros((4, 3), ">f4"), np.zeros((3, 2), np.float32))


@pytest.mark.parametrize("a_shape,b_lead", [((5, 3, 40), ()), ((8, 1, 40), ()), ((2, 4, 1, 40), (1,)),
                                            ((5, 3, 40), (5,))])
def test_matmul_batches_through_one_weight(isa, a_shape, b_lead, rng):
    """x (..., M, K) @ W: every batch through the same (broadcast) B runs as one product of all the rows; a
    batched B stays batched. Both give NumPy's answer, in the nn and nt forms."""
    a, b = rand(rng, *a_shape), rand(rng, *b_lead, 40, 33)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(kernels.matmul(a, b), expected, atol=1e-4)
    np.testing.assert_allclose(kernels.matmul_nt(a, np.ascontiguousarray(np.swapaxes(b, -1, -2))), expected, atol=1e-4)


@pytest.mark.parametrize("version", [3, 4])
def test_matmul_nt_weight_rows_a_multiple_of_4kib(isa, version, rng):
    """The packer reads a transposed B one weight row at a time (rows 1024 and 2048 floats long here: the stride
    that made 16 side-by-side reads share one cache set); a ragged last panel (N = 37) and K past a block."""
    for k in (1024, 2048):
        a, w = rand(rng, 40, k), rand(rng, 37, k)
        expected = a.astype(np.float64) @ w.T.astype(np.float64)
        np.testing.assert_allclose(kernels.matmul_nt(a, w, version=version), expected, atol=1e-5 * np.sqrt(k) * 16)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 8, 13, 16])  # the skinny path: 4-row blocks and their remainders
@pytest.mark.parametrize("k", [1, 15, 16, 17, 385])         # K in 16-wide steps (AVX-512) and 8-wide (AVX2), tails
def test_matmul_nt_skinny_rows_and_tails(isa, m, k, rng):
    """x @ Wᵀ with a decoder step's few rows: N = 1, 7 and 33 (a ragged block of W rows); a NaN in one row of x
    stays in that row of the output."""
    for n in (1, 7, 33):
        a, w = rand(rng, m, k), rand(rng, n, k)
        a[m - 1, k // 2] = np.nan
        expected = a.astype(np.float64) @ w.T.astype(np.float64)
        got = kernels.matmul_nt(a, w)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, atol=1e-5 * np.sqrt(k) * 16)


@pytest.mark.parametrize("m", [17, 31, 64, 65])  # 17..64: the few-rows path (Cᵀ = Bᵀ·Aᵀ); 65: the packed GEMM
@pytest.mark.parametrize("k,n", [(1, 97), (300, 1), (513, 1000)])  # K past one block of Aᵀ; a ragged last tile
def test_matmul_few_rows_every_form(isa, m, k, n, rng):
    """A decoder step of a beam search (batch × beams rows) through a weight: nn, nt and tn forms give NumPy's
    answer, and a NaN in one row of A reaches that row of C only (no zero is skipped, no row leaks)."""
    a, b = rand(rng, m, k), rand(rng, k, n)
    a[m // 2, k // 2] = np.nan
    expected = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-5 * np.sqrt(k) * 16
    for got in (kernels.matmul(a, b), kernels.matmul_nt(a, np.ascontiguousarray(b.T)),
                kernels.matmul_tn(np.ascontiguousarray(a.T), b)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, atol=tol)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 2), (16, 16, 16), (40, 30, 20)])  # both sides of the GIL cut-off
def test_matmul_2d_lean_path_plain_transposed_and_misaligned(m, k, n, rng):
    a, b = rand(rng, m, k), rand(rng, k, n)
    expected = a.astype(np.float64) @ b
    np.testing.assert_allclose(kernels.matmul(a, b), expected, atol=1e-5 * np.sqrt(k) * 16)
    np.testing.assert_allclose(kernels.matmul_tn(np.ascontiguousarray(a.T), b), expected, atol=1e-5 * np.sqrt(k) * 16)
    np.testing.assert_allclose(kernels.matmul_nt(a, np.ascontiguousarray(b.T)), expected, atol=1e-5 * np.sqrt(k) * 16)
    buf = np.zeros(m * k * 4 + 1, np.uint8)[1:].view(np.float32).reshape(m, k)  # not 4-byte aligned: general path
    buf[...] = a
    assert not buf.flags.aligned
    np.testing.assert_allclose(kernels.matmul(buf, b), expected, atol=1e-5 * np.sqrt(k) * 16)


# ---------------------------------------------------------------- skinny products (csrc/matmul/skinny.cpp)
# M <= 16 rows (a decoder step) read the weights in place; 17 rows take the packed path. K and N odd for
# the vector tails (8 lanes, 64-column strips, 8-row W blocks), 0 for the empty products.
SKINNY_M = [1, 2, 3, 7, 16, 17]
SKINNY_KN = [(1, 1), (7, 65), (33, 130), (300, 71), (0, 5), (5, 0)]


def skinny_forms(a, b):
    """The three kernel forms of a @ b, each with its NumPy reference: (name, kernel result, reference)."""
    at, bt = np.ascontiguousarray(np.swapaxes(a, -1, -2)), np.ascontiguousarray(np.swapaxes(b, -1, -2))
    return [("nn", kernels.matmul(a, b), reference.matmul(a, b)),
            ("nt", kernels.matmul_nt(a, bt), reference.matmul_nt(a, bt)),
            ("tn", kernels.matmul_tn(at, b), reference.matmul_tn(at, b))]


@pytest.mark.parametrize("m", SKINNY_M)
@pytest.mark.parametrize("k,n", SKINNY_KN)
def test_skinny_matmul_matches_reference(isa, m, k, n, rng):
    a, b = rand(rng, m, k), rand(rng, k, n)
    for form, c, ref in skinny_forms(a, b):
        assert_matmul_close(c, a.astype(np.float64), b.astype(np.float64), k)
        np.testing.assert_allclose(c, ref, atol=1e-5 * np.sqrt(max(k, 1)) * 16, rtol=1e-5, err_msg=form)


@pytest.mark.parametrize("m", [1, 5])
def test_skinny_matmul_threaded_split_of_n(isa, m, rng):
    a, b = rand(rng, m, 300), rand(rng, 300, 5001)  # >= 1 MB of weights: N split over the threads, unevenly
    for form, c, _ in skinny_forms(a, b):
        assert_matmul_close(c, a.astype(np.float64), b.astype(np.float64), 300)


@pytest.mark.parametrize("shape_a,shape_b", [((2, 3, 1, 33), (33, 70)), ((2, 1, 4, 9), (3, 9, 17)),
                                             ((5, 2, 65), (1, 65, 9)), ((0, 1, 5), (5, 3))])
def test_skinny_matmul_batched_broadcast(isa, shape_a, shape_b, rng):
    a, b = rand(rng, *shape_a), rand(rng, *shape_b)
    expected = np.matmul(a.astype(np.float64), b)
    for form, c, _ in skinny_forms(a, b):
        assert c.shape == expected.shape, form
        np.testing.assert_allclose(c, expected, atol=1e-4, err_msg=form)


def test_skinny_matmul_non_contiguous_through_the_backend(rng):
    from minitx.backends import cpp

    x, w = rand(rng, 3, 40), rand(rng, 50, 80)[::2, ::2]  # a strided view of a Linear weight (N, K)
    expected = x.astype(np.float64) @ w.T
    np.testing.assert_allclose(cpp.matmul(x, w.T), expected, atol=1e-4)
    np.testing.assert_allclose(cpp.matmul_nt(x, w), expected, atol=1e-4)
    np.testing.assert_allclose(cpp.matmul(x[:, ::-1], w.T[::-1]), expected, atol=1e-4)


@pytest.mark.parametrize("m", [1, 4])
def test_skinny_matmul_propagates_nan_and_inf(isa, m, rng):
    """NaN in A[i, p] makes row i NaN, NaN in B[p, j] column j; inf times an exact 0 is NaN too (no zero of
    A or B is skipped), inf otherwise stays ±inf: C has NaN exactly where the float64 product has."""
    k, n = 37, 70
    a, b = rand(rng, m, k), rand(rng, k, n)
    a[0, 3] = np.nan
    b[5, 66] = np.nan
    a[m - 1, 7], b[7, :9] = np.inf, 0.0  # inf·0: NaN in C[m-1, :9]
    b[11, 20] = -np.inf
    with np.errstate(invalid="ignore"):
        expected, forms = np.matmul(a.astype(np.float64), b), skinny_forms(a, b)
    for form, c, _ in forms:
        np.testing.assert_array_equal(np.isnan(c), np.isnan(expected), err_msg=form)
        np.testing.assert_array_equal(np.isinf(c), np.isinf(expected), err_msg=form)


# ---------------------------------------------------------------- fused row kernels
ROW_SHAPES = [(1,), (7,), (3, 63), (2, 5, 65), (4, 127), (2, 1024)]


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.hw2_softmax_layernorm
def test_softmax_forward_backward(isa, shape, rng):
    x, dy = rand(rng, *shape) * 4, rand(rng, *shape)
    y = kernels.softmax_forward(x)
    np.testing.assert_allclose(y, reference.softmax_forward(x.astype(np.float64)), rtol=1e-5, atol=1e-7)
    y64 = reference.softmax_forward(x.astype(np.float64))
    np.testing.assert_allclose(kernels.softmax_backward(dy, y), reference.softmax_backward(dy.astype(np.float64), y64),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.hw2_softmax_layernorm
def test_layer_norm_forward_backward(isa, shape, rng):
    n = shape[-1]
    x, dy = rand(rng, *shape) * 3 + 1, rand(rng, *shape)
    w, b = rand(rng, n), rand(rng, n)
    y, mean, rstd = kernels.layer_norm_forward(x, w, b, 1e-5)
    y64, mean64, rstd64 = reference.layer_norm_forward(x.astype(np.float64), w.astype(np.float64), b, 1e-5)
    np.testing.assert_allclose(y, y64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean, mean64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rstd, rstd64, rtol=1e-4)
    dx, dw, db = kernels.layer_norm_backward(dy, x, w, mean, rstd)
    dx64, dw64, db64 = reference.layer_norm_backward(dy.astype(np.float64), x.astype(np.float64),
                                                     w.astype(np.float64), mean64, rstd64)
    for got, want in ((dx, dx64), (dw, dw64), (db, db64)):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(1,), (63,), (5, 127), (3, 4, 65), (600001,)])  # the last one is split over threads
def test_gelu_forward_backward(isa, approximate, shape, rng):
    x, dy = rand(rng, *shape) * 3, rand(rng, *shape)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(kernels.gelu_forward(x, approximate), reference.gelu_forward(x64, approximate),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernels.gelu_backward(dy, x, approximate),
                               reference.gelu_backward(dy.astype(np.float64), x64, approximate), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_extreme_inputs_are_finite(isa, approximate):
    x = np.array([-1e4, -100, -30, -9, -5, 0, 5, 9, 30, 100, 1e4], np.float32)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(kernels.gelu_forward(x, approximate), reference.gelu_forward(x64, approximate),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernels.gelu_backward(np.ones_like(x), x, approximate),
                               reference.gelu_backward(np.ones_like(x64), x64, approximate), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2100, 257)])  # > 2^19 elements: several threads, per-thread dw/db
@pytest.mark.hw2_softmax_layernorm
def test_layer_norm_backward_threaded(isa, shape, rng):
    x, dy, w = rand(rng, *shape), rand(rng, *shape), rand(rng, shape[-1])
    _, mean, rstd = kernels.layer_norm_forward(x, w, np.zeros_like(w), 1e-5)
    _, mean64, rstd64 = reference.layer_norm_forward(x.astype(np.float64), w.astype(np.float64), 0.0, 1e-5)
    got = kernels.layer_norm_backward(dy, x, w, mean, rstd)
    want = reference.layer_norm_backward(dy.astype(np.float64), x.astype(np.float64), w.astype(np.float64), mean64,
                                         rstd64)
    for g, w_ in zip(got, want):
        np.testing.assert_allclose(g, w_, rtol=1e-3, atol=1e-4)


def test_gelu_rejects_unknown_form():
    with pytest.raises(ValueError, match="approximate"):
        kernels.gelu_forward(np.zeros(3, np.float32), "sigmoid")


def test_info_reports_dispatch():
    info = kernels.info()
    assert info["isa"] in info["isa_available"] and info["isa_available"][0] == "scalar"
    assert info["matmul_versions"] == [0, 1, 2, 3, 4] and info["matmul_default_version"] == 4
    assert info["threads"] >= 1 and info["compiler"]


# ---------------------------------------------------------------- through the autograd ops, cpp vs numpy
def _run_layer(backend, x, w, b, w2):
    with minitx.backend(backend):
        xt = minitx.tensor(x, requires_grad=True)
        wt, bt, w2t = (minitx.tensor(a, requires_grad=True) for a in (w, b, w2))
        import minitx.nn.functional as F

        h = F.layer_norm(xt, (x.shape[-1],), wt, bt)
        h = F.gelu(h @ w2t.T)
        loss = (F.softmax(h, -1) * h).sum()
        loss.backward()
        return [loss.numpy()] + [t.grad.numpy() for t in (xt, wt, bt, w2t)]


@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
def test_autograd_ops_agree_across_backends(rng):
    x, w, b, w2 = rand(rng, 2, 5, 16), rand(rng, 16), rand(rng, 16), rand(rng, 24, 16)
    for got, want in zip(_run_layer("cpp", x, w, b, w2), _run_layer("numpy", x, w, b, w2)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("env", [{"MINITX_SPIN_US": "0"}, {"MINITX_SPIN_US": "not-a-number"},
                                 {"MINITX_NUM_THREADS": "3"}, {"MINITX_ISA": "scalar"}])
def test_runtime_environment_variables(env):
    """The pool with no spin (every wait sleeps on the condition variable at once), a bad value (the default),
    more threads than cores and a lowered ISA all give the right products, in a fresh process."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np; from minitx import kernels; r = np.random.default_rng(0);\n"
            "a, b = r.standard_normal((300, 200), np.float32), r.standard_normal((200, 310), np.float32)\n"
            "for _ in range(30): assert np.allclose(kernels.matmul(a, b), a.astype(np.float64) @ b, atol=1e-3)\n"
            "print(kernels.info()['threads'], kernels.info()['isa'])")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    threads, isa = out.stdout.split()
    assert threads == env.get("MINITX_NUM_THREADS", threads) and isa == env.get("MINITX_ISA", isa)
