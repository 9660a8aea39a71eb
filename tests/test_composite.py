"""A whole model through the autograd: 2-layer MLP + layer_norm + softmax cross-entropy.

The loss and the gradient of every parameter must equal PyTorch's within the fp32 tolerance of
torch_compare.py, under both kernel backends."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minitx as mx
import minitx.nn.functional as F
from torch_compare import assert_close

pytestmark = pytest.mark.autograd

BATCH, D_IN, HIDDEN, CLASSES = 16, 12, 32, 7


def make_parameters(seed=0):
    rng = np.random.default_rng(seed)

    def init(*shape, scale):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {
        "w1": init(HIDDEN, D_IN, scale=D_IN ** -0.5), "b1": init(HIDDEN, scale=0.1),
        "ln_weight": 1.0 + init(HIDDEN, scale=0.1), "ln_bias": init(HIDDEN, scale=0.1),
        "w2": init(CLASSES, HIDDEN, scale=HIDDEN ** -0.5), "b2": init(CLASSES, scale=0.1),
    }


def forward(F_, p, x, target, label_smoothing):
    """The same model in either library: F_ is minitx.nn.functional or torch.nn.functional."""
    h = F_.gelu(F_.linear(x, p["w1"], p["b1"]))
    h = F_.layer_norm(h, (HIDDEN,), p["ln_weight"], p["ln_bias"])
    logits = F_.linear(h, p["w2"], p["b2"])
    return F_.cross_entropy(logits, target, label_smoothing=label_smoothing)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
def test_mlp_layer_norm_cross_entropy_matches_torch(backend_name, label_smoothing):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, D_IN)).astype(np.float32)
    target = rng.integers(0, CLASSES, BATCH)
    target[3] = -100  # one ignored position
    params = make_parameters()

    mx_params = {k: mx.tensor(v, requires_grad=True) for k, v in params.items()}
    torch_params = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    mx_x = mx.tensor(x, requires_grad=True)
    torch_x = torch.tensor(x, requires_grad=True)

    mx_loss = forward(F, mx_params, mx_x, target, label_smoothing)
    torch_loss = forward(TF, torch_params, torch_x, torch.from_numpy(target), label_smoothing)
    mx_loss.backward()
    torch_loss.backward()

    assert_close(mx_loss.numpy(), torch_loss.detach().numpy(), "loss")
    for name in params:
        assert_close(mx_params[name].grad.numpy(), torch_params[name].grad.numpy(), f"d loss / d {name}")
    assert_close(mx_x.grad.numpy(), torch_x.grad.numpy(), "d loss / d x")


@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
def test_a_few_sgd_steps_follow_torch(backend_name):
    """Three plain SGD steps: the parameters stay equal to torch's, so the gradients drive the same updates."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((BATCH, D_IN)).astype(np.float32)
    target = rng.integers(0, CLASSES, BATCH)
    params = make_parameters(seed=3)
    mx_params = {k: mx.tensor(v, requires_grad=True) for k, v in params.items()}
    torch_params = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    losses = []
    for _ in range(3):
        mx_loss = forward(F, mx_params, mx.tensor(x), target, 0.0)
        torch_loss = forward(TF, torch_params, torch.from_numpy(x), torch.from_numpy(target), 0.0)
        mx_loss.backward()
        torch_loss.backward()
        assert_close(mx_loss.numpy(), torch_loss.detach().numpy(), "loss")
        losses.append(mx_loss.item())
        with mx.no_grad(), torch.no_grad():
            for k in params:
                mx_params[k].data -= 0.5 * mx_params[k].grad.numpy()
                mx_params[k].zero_grad()
                torch_params[k] -= 0.5 * torch_params[k].grad
                torch_params[k].grad = None
    for k in params:
        assert_close(mx_params[k].numpy(), torch_params[k].detach().numpy(), f"{k} after 3 steps")
    assert losses[-1] < losses[0]
