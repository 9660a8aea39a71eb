"""Optimizers, clipping and schedules vs torch / HF: 10 steps on the same MLP give the same parameter trajectory."""
import numpy as np
import pytest
import torch

import minitx
import minitx.optim as optim
from minitx.tensor import Tensor

pytestmark = pytest.mark.optim

ATOL = 2e-6  # fp32: after 10 steps the trajectories agree to a few ulps of O(1) weights


def _mlp_init(seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"w1": (5, 8), "b1": (8,), "w2": (8, 3), "b2": (3,)}
    params = {k: rng.standard_normal(s).astype(np.float32) * 0.5 for k, s in shapes.items()}
    x = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    return params, x, y


def _mx_loss(p, x, y):
    h = (Tensor(x) @ p["w1"] + p["b1"]).tanh()
    return (((h @ p["w2"] + p["b2"]) - Tensor(y)) ** 2).mean()


def _torch_loss(p, x, y):
    h = torch.tanh(torch.from_numpy(x) @ p["w1"] + p["b1"])
    return ((h @ p["w2"] + p["b2"] - torch.from_numpy(y)) ** 2).mean()


def _run_both(make_mx, make_torch, steps=10, groups=None):
    """Train the same MLP with both frameworks; return the max abs parameter difference over all steps."""
    init, x, y = _mlp_init()
    p_mx = {k: Tensor(v.copy(), requires_grad=True) for k, v in init.items()}
    p_t = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in init.items()}
    opt_mx = make_mx(groups(p_mx) if groups else list(p_mx.values()))
    opt_t = make_torch(groups(p_t) if groups else list(p_t.values()))
    worst = 0.0
    for _ in range(steps):
        opt_mx.zero_grad()
        opt_t.zero_grad()
        _mx_loss(p_mx, x, y).backward()
        _torch_loss(p_t, x, y).backward()
        opt_mx.step()
        opt_t.step()
        for k in init:
            worst = max(worst, float(np.max(np.abs(p_mx[k].data - p_t[k].detach().numpy()))))
    return worst


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.8, weight_decay=0.05),
]


@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.hw1_autograd
def test_sgd_matches_torch(cfg):
    diff = _run_both(lambda p: optim.SGD(p, **cfg), lambda p: torch.optim.SGD(p, **cfg))
    assert diff < ATOL, diff


ADAM_CONFIGS = [
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.1, amsgrad=True),
]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("cfg", ADAM_CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.hw1_autograd
def test_adam_adamw_match_torch(name, cfg):
    diff = _run_both(lambda p: getattr(optim, name)(p, **cfg), lambda p: getattr(torch.optim, name)(p, **cfg))
    assert diff < ATOL, diff


@pytest.mark.hw1_autograd
def test_param_groups_with_own_hyperparameters_match_torch():
    def groups(p):
        return [{"params": [p["w1"], p["w2"]], "weight_decay": 0.1}, {"params": [p["b1"], p["b2"]], "lr": 0.02}]

    diff = _run_both(lambda g: optim.AdamW(g, lr=0.01, weight_decay=0.0),
                     lambda g: torch.optim.AdamW(g, lr=0.01, weight_decay=0.0), groups=groups)
    assert diff < ATOL, diff


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("cfg", ADAM_CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_adam_step_kernel_on_every_path_matches_torch(path, name, cfg):
    """The update is one kernel (backends.kernel("adamw_step")): the NumPy reference, or the fused C++ step at
    every ISA; each path follows torch for 10 steps."""
    diff = _run_both(lambda p: getattr(optim, name)(p, **cfg), lambda p: getattr(torch.optim, name)(p, **cfg))
    assert diff < ATOL, diff


def test_adamw_no_decay_groups_on_every_path_match_torch(path):
    def groups(p):  # param_groups_no_decay's split: weights decay, biases do not
        return [{"params": [p["w1"], p["w2"]], "weight_decay": 0.05},
                {"params": [p["b1"], p["b2"]], "weight_decay": 0.0}]

    diff = _run_both(lambda g: optim.AdamW(g, lr=0.02, betas=(0.85, 0.995), eps=1e-7),
                     lambda g: torch.optim.AdamW(g, lr=0.02, betas=(0.85, 0.995), eps=1e-7), groups=groups)
    assert diff < ATOL, diff


def test_adamw_float64_params_and_views_take_the_reference():
    """The C++ step is float32 and in place on contiguous arrays; anything else runs numpy_ref.adamw_step, with
    the same result."""
    from minitx.backends import kernel, numpy_ref

    p64 = np.ones(4)
    assert kernel("adamw_step", p64, p64, p64, p64) is numpy_ref.adamw_step
    view = np.ones((4, 4), np.float32)[:, ::2]
    assert kernel("adamw_step", view, view, np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32)) \
        is numpy_ref.adamw_step


def test_param_groups_no_decay_rule():
    named = [(n, Tensor(np.zeros(2, np.float32), requires_grad=True)) for n in
             ["encoder.layer.0.attention.query.weight", "encoder.layer.0.attention.query.bias",
              "embeddings.LayerNorm.weight", "h.0.ln_1.weight", "h.0.norm1.weight", "wte.weight"]]
    decay, no_decay = optim.param_groups_no_decay(named, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == [id(named[0][1]), id(named[3][1]), id(named[5][1])]
    assert [id(p) for p in no_decay["params"]] == [id(named[1][1]), id(named[2][1]), id(named[4][1])]


@pytest.mark.parametrize("max_norm,norm_type", [(0.5, 2.0), (100.0, 2.0), (0.3, 1.0), (0.1, float("inf"))])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (3,), (2, 2, 2)]]
    p_mx = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    p_t = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, q, g in zip(p_mx, p_t, grads):
        p.grad = Tensor(g.copy())
        q.grad = torch.tensor(g.copy())
    total_mx = optim.clip_grad_norm_(p_mx, max_norm, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(p_t, max_norm, norm_type)
    assert total_mx == pytest.approx(float(total_t), rel=1e-6)
    for p, q in zip(p_mx, p_t):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
@pytest.mark.hw1_autograd
def test_state_dict_round_trip_continues_identically(name):
    kwargs = dict(lr=0.05, momentum=0.9, nesterov=True) if name == "SGD" else dict(lr=0.01, amsgrad=True)
    init, x, y = _mlp_init()

    def make():
        params = {k: Tensor(v.copy(), requires_grad=True) for k, v in init.items()}
        return params, getattr(optim, name)(list(params.values()), **kwargs)

    def train(params, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            _mx_loss(params, x, y).backward()
            opt.step()

    ref_params, ref_opt = make()
    train(ref_params, ref_opt, 10)

    params, opt = make()
    train(params, opt, 5)
    saved_state = opt.state_dict()
    saved_params = {k: v.data.copy() for k, v in params.items()}
    resumed, resumed_opt = make()
    for k in resumed:
        resumed[k].data[...] = saved_params[k]
    resumed_opt.load_state_dict(saved_state)
    for entry in resumed_opt.state_dict()["state"].values():
        assert all(isinstance(v, (np.ndarray, int)) for v in entry.values())
    train(resumed, resumed_opt, 5)
    for k in ref_params:
        np.testing.assert_array_equal(resumed[k].data, ref_params[k].data)


def _lr_sequence(scheduler, optimizer, steps):
    lrs = []
    for _ in range(steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("name", ["linear", "cosine", "constant", "constant_with_warmup"])
def test_schedules_match_hf(name):
    import transformers

    warmup, total = 4, 20
    p_mx = Tensor(np.zeros(2, np.float32), requires_grad=True)
    p_t = torch.zeros(2, requires_grad=True)
    opt_mx, opt_t = optim.SGD([p_mx], lr=0.5), torch.optim.SGD([p_t], lr=0.5)
    s_mx = optim.get_scheduler(name, opt_mx, num_warmup_steps=warmup, num_training_steps=total)
    s_t = transformers.get_scheduler(name, opt_t, num_warmup_steps=warmup, num_training_steps=total)
    ours, theirs = _lr_sequence(s_mx, opt_mx, total + 3), _lr_sequence(s_t, opt_t, total + 3)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert opt_mx.param_groups[0]["lr"] == pytest.approx(opt_t.param_groups[0]["lr"], abs=1e-15)


def test_noam_schedule_formula():
    """Vaswani §5.3: lr = d^-0.5 · min(s^-0.5, s·w^-1.5): linear rise for w steps, peak at s = w, then s^-0.5 decay."""
    d_model, warmup = 64, 10
    p = Tensor(np.zeros(2, np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    lrs = _lr_sequence(optim.get_noam_schedule(opt, d_model=d_model, num_warmup_steps=warmup), opt, 40)
    expected = [0.0] + [d_model ** -0.5 * min(s ** -0.5, s * warmup ** -1.5) for s in range(1, 40)]
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert int(np.argmax(lrs)) == warmup


def test_scheduler_state_dict_round_trip():
    p = Tensor(np.zeros(2, np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = optim.get_scheduler("cosine", opt, num_warmup_steps=3, num_training_steps=12)
    _lr_sequence(sched, opt, 5)
    opt2 = optim.SGD([Tensor(np.zeros(2, np.float32), requires_grad=True)], lr=1.0)
    sched2 = optim.get_scheduler("cosine", opt2, num_warmup_steps=3, num_training_steps=12)
    sched2.load_state_dict(sched.state_dict())
    assert _lr_sequence(sched2, opt2, 5) == _lr_sequence(sched, opt, 5)


def test_errors_are_actionable():
    with pytest.raises(ValueError, match="unknown schedule 'warmup_foo'"):
        optim.get_scheduler("warmup_foo", optim.SGD([Tensor(np.zeros(1, np.float32))], lr=1.0), 1, 2)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([Tensor(np.zeros(1, np.float32))], lr=0.1, nesterov=True)
