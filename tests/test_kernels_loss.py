"""The fused cross-entropy and AdamW kernels (csrc/loss/, csrc/optim/) against their NumPy twins and torch.

On every ISA: odd class counts (SIMD tails), C = 1, N = 0, ignored rows, label smoothing, the edge values torch
defines (NaN logit -> NaN loss and gradient row; -inf on another class -> finite unless ε > 0; a row of -inf ->
NaN; ignored rows exactly 0 whatever they hold), logits far from 0 (the float64 lse), a size split over threads,
and the binding's refusals. AdamW: one step and ten steps, every variant, against the reference.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minitx
from minitx import reference

pytestmark = [pytest.mark.kernels, pytest.mark.filterwarnings("ignore::RuntimeWarning")]

if not minitx.cpp_available():
    pytest.skip("the C++ extension minitx._C is not built", allow_module_level=True)

from minitx import kernels  # noqa: E402
from test_kernels import isa  # noqa: E402,F401  (the fixture: every ISA this CPU has)


def cross_entropy_both(x, t, dloss, **kw):
    """(loss, lse, dlogits) from the C++ kernels and from the NumPy reference."""
    loss, lse = kernels.cross_entropy_forward(x, t, **kw)
    ref_loss, ref_lse = reference.cross_entropy_forward(x, t, **kw)
    return ((loss, lse, kernels.cross_entropy_backward(dloss, x, lse, t, **kw)),
            (ref_loss, ref_lse, reference.cross_entropy_backward(dloss, x, ref_lse, t, **kw)))


def assert_same(got, expected, rtol=1e-5, atol=1e-6):
    for g, e, name in zip(got, expected, ("loss", "lse", "dlogits")):
        assert g.dtype == e.dtype and g.shape == e.shape, name
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("n,c", [(0, 5), (3, 1), (4, 7), (5, 8), (6, 15), (3, 16), (7, 17), (2, 1001), (9, 30522)])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_matches_reference(isa, n, c, label_smoothing, rng):
    x = rng.standard_normal((n, c), dtype=np.float32) * 3
    t = rng.integers(0, c, n)
    t[::3] = -100
    dloss = rng.standard_normal(n, dtype=np.float32)
    got, expected = cross_entropy_both(x, t, dloss, label_smoothing=label_smoothing)
    assert_same(got, expected)
    assert np.all(got[0][t == -100] == 0) and np.all(got[2][t == -100] == 0)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_matches_torch(isa, label_smoothing, rng):
    x = rng.standard_normal((37, 103), dtype=np.float32) * 4
    t = rng.integers(0, 103, 37)
    t[[0, 5, 6]] = 7
    loss, lse = kernels.cross_entropy_forward(x, t, ignore_index=7, label_smoothing=label_smoothing)
    dloss = rng.standard_normal(37, dtype=np.float32)
    dx = kernels.cross_entropy_backward(dloss, x, lse, t, ignore_index=7, label_smoothing=label_smoothing)
    xt = torch.from_numpy(x).requires_grad_()
    ref = TF.cross_entropy(xt, torch.from_numpy(t), ignore_index=7, label_smoothing=label_smoothing, reduction="none")
    ref.backward(torch.from_numpy(dloss))
    np.testing.assert_allclose(loss, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_cross_entropy_far_from_zero_keeps_float32_precision(isa, rng):
    """Logits around 1000: float32 lse (ulp 6e-5) would put a 6e-5 relative error into softmax; the float64 lse
    keeps the gradient as exact as torch's log_softmax (x - max - log Σ)."""
    x = (1000 + rng.standard_normal((8, 50), dtype=np.float32)).astype(np.float32)
    t = rng.integers(0, 50, 8)
    loss, lse = kernels.cross_entropy_forward(x, t)
    dx = kernels.cross_entropy_backward(np.ones(8, np.float32), x, lse, t)
    x64 = x.astype(np.float64)
    p = np.exp(x64 - x64.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(8), t] -= 1
    np.testing.assert_allclose(dx, p, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_edge_values(isa, label_smoothing):
    c = 19  # odd: the masked tail of the AVX2 loop sees the edge values too
    x = np.zeros((5, c), np.float32)
    x[0, 3] = np.nan          # kept row with a NaN: NaN loss and NaN gradient row
    x[1, 18] = -np.inf        # -inf on a class that is not the target: finite without smoothing
    x[2] = np.nan             # ignored row full of NaN: exactly 0
    x[3] = -np.inf            # kept row of only -inf: NaN
    x[4, 2] = -np.inf         # ignored row with -inf
    t = np.array([0, 1, -100, 4, -100])
    dloss = np.ones(5, np.float32)
    got, expected = cross_entropy_both(x, t, dloss, label_smoothing=label_smoothing)
    assert_same(got, expected)
    loss, _, dx = got
    assert np.isnan(loss[0]) and np.isnan(dx[0]).all() and np.isnan(loss[3]) and np.isnan(dx[3]).all()
    assert loss[2] == 0 and loss[4] == 0 and not dx[[2, 4]].any()
    assert np.isfinite(dx[1]).all() and dx[1, 18] == -dloss[1] * label_smoothing / c
    assert np.isfinite(loss[1]) if label_smoothing == 0 else loss[1] == np.inf
    with torch.no_grad():
        ref = TF.cross_entropy(torch.from_numpy(x), torch.from_numpy(t), reduction="none",
                               label_smoothing=label_smoothing)
    np.testing.assert_allclose(loss, ref.numpy(), rtol=1e-5)


def test_cross_entropy_threaded_rows_match_one_thread(rng):
    x = rng.standard_normal((300, 4099), dtype=np.float32)
    t = rng.integers(0, 4099, 300)
    t[rng.random(300) < 0.85] = -100  # masked-LM-like: most rows ignored, so the threads get uneven work
    dloss = np.full(300, 1 / 300, np.float32)
    threads = kernels.get_num_threads()
    loss, lse = kernels.cross_entropy_forward(x, t)
    dx = kernels.cross_entropy_backward(dloss, x, lse, t)
    kernels.set_num_threads(1)
    try:
        loss1, lse1 = kernels.cross_entropy_forward(x, t)
        dx1 = kernels.cross_entropy_backward(dloss, x, lse1, t)
    finally:
        kernels.set_num_threads(threads)
    np.testing.assert_array_equal(loss, loss1)
    np.testing.assert_array_equal(dx, dx1)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_backward_in_place_of_the_logits(isa, label_smoothing, rng):
    """out=logits overwrites the logits with their gradient (each element is read before it is written): the same
    values as a fresh output, in the NumPy reference too; a read-only out is refused."""
    x = rng.standard_normal((37, 1031), dtype=np.float32) * 3
    t = rng.integers(0, 1031, 37)
    t[::5] = -100
    dloss = rng.random(37).astype(np.float32)
    _, lse = kernels.cross_entropy_forward(x, t, label_smoothing=label_smoothing)
    fresh = kernels.cross_entropy_backward(dloss, x, lse, t, label_smoothing=label_smoothing)
    for module in (kernels, reference):
        buf = x.copy()
        got = module.cross_entropy_backward(dloss, buf, lse, t, label_smoothing=label_smoothing, out=buf)
        assert got is buf or np.shares_memory(got, buf)
        np.testing.assert_allclose(buf, fresh, rtol=1e-5, atol=1e-7)
    read_only = x.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        kernels.cross_entropy_backward(dloss, x, lse, t, out=read_only)


@pytest.mark.parametrize("call,message", [
    (lambda x, t, d, l: kernels.cross_entropy_forward(x, np.array([0, 1, 5])), r"target\[2\] = 5 .*\[0, 4\)"),
    (lambda x, t, d, l: kernels.cross_entropy_forward(x, np.array([0, -1, -100])), r"target\[1\] = -1"),
    (lambda x, t, d, l: kernels.cross_entropy_forward(x, t.astype(np.int32)), r"target must be int64"),
    (lambda x, t, d, l: kernels.cross_entropy_forward(x, t[:2]), r"target must be \(N,\) .*\(3, 4\).*\(2,\)"),
    (lambda x, t, d, l: kernels.cross_entropy_forward(x[None], t), r"logits must be 2-D .*\(1, 3, 4\)"),
    (lambda x, t, d, l: kernels.cross_entropy_forward(np.zeros((3, 0), np.float32), t), r"C >= 1"),
    (lambda x, t, d, l: kernels.cross_entropy_forward(x, t, label_smoothing=1.5), r"label_smoothing .* 1.5"),
    (lambda x, t, d, l: kernels.cross_entropy_backward(d, x, l.astype(np.float32), t), r"lse must be float64"),
    (lambda x, t, d, l: kernels.cross_entropy_backward(d[:1], x, l, t), r"dloss must be \(N,\)"),
    (lambda x, t, d, l: kernels.cross_entropy_backward(d, x.T, l, t), r"C-contiguous"),
    (lambda x, t, d, l: kernels.cross_entropy_backward(d, x, l, t, out=np.zeros((3, 5), np.float32)),
     r"out and logits must have the same shape, out is \(3, 5\), logits is \(3, 4\)"),
    (lambda x, t, d, l: kernels.cross_entropy_backward(d, x, l, t, out=np.zeros((3, 4))), r"out must be float32"),
    (lambda x, t, d, l: kernels.cross_entropy_backward(d, x, l, t, out=np.zeros((3, 4), np.float32)[::-1]),
     r"C-contiguous"),
])
def test_cross_entropy_binding_refuses_bad_input(call, message):
    x, t = np.zeros((3, 4), np.float32), np.array([0, 3, -100])
    with pytest.raises(ValueError, match=message):
        call(x, t, np.ones(3, np.float32), np.zeros(3))


# ---------------------------------------------------------------- AdamW
ADAM_VARIANTS = [dict(weight_decay=0.0), dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled_weight_decay=False),
                 dict(weight_decay=0.01, amsgrad=True)]


@pytest.mark.parametrize("variant", ADAM_VARIANTS, ids=lambda v: "-".join(f"{k}{x}" for k, x in v.items()))
@pytest.mark.parametrize("n", [1, 7, 8, 13, 100003])  # tails of the 8-wide loop; the last is split over threads
def test_adamw_step_matches_reference(isa, variant, n, rng):
    variant = dict(variant)
    amsgrad = variant.pop("amsgrad", False)
    states = []
    for _ in range(2):  # the same start for the kernel and the reference
        r = np.random.default_rng(1)
        p = r.standard_normal(n, dtype=np.float32)
        states.append([p, np.zeros_like(p), np.zeros_like(p), np.zeros_like(p) if amsgrad else None])
    for step in range(1, 11):
        g = rng.standard_normal(n, dtype=np.float32)
        for fn, (p, m, v, vmax) in zip((kernels.adamw_step, reference.adamw_step), states):
            fn(p, g, m, v, vmax, 0.01, 0.9, 0.999, 1e-8, step=step, **variant)
        for got, expected in zip(*states):
            if got is not None:
                np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("bad,message", [
    (lambda p: dict(param=p[:3]), r"param and grad must have the same shape"),
    (lambda p: dict(exp_avg=np.zeros(5)), r"exp_avg must be float32"),
    (lambda p: dict(param=read_only(p)), r"param is read-only"),
    (lambda p: dict(step=0), r"step must be >= 1"),
    (lambda p: dict(beta1=1.0), r"betas must be in \[0, 1\)"),
    (lambda p: dict(max_exp_avg_sq=np.zeros(3, np.float32)), r"max_exp_avg_sq"),
])
def test_adamw_step_binding_refuses_bad_input(bad, message):
    p = np.ones(4, np.float32)
    args = dict(param=p, grad=np.ones(4, np.float32), exp_avg=np.zeros(4, np.float32),
                exp_avg_sq=np.zeros(4, np.float32), max_exp_avg_sq=None, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0, step=1)
    args.update(bad(p))
    with pytest.raises(ValueError, match=message):
        kernels.adamw_step(**args)
