"""One helper that checks a minitx op against its PyTorch twin: forward values AND input gradients.

    from torch_compare import assert_close_to_torch
    assert_close_to_torch(lambda x, y: x @ y, lambda x, y: x @ y, a, b)

The same NumPy inputs go to both libraries. Floating arrays become ``requires_grad`` tensors on both
sides; integer and boolean arrays become constant tensors; anything else (numbers, tuples, None) is
passed through unchanged. Both outputs are compared, then each output is back-propagated with the
same fixed random cotangent w (i.e. the vector-Jacobian product of ``sum(out * w)``), and the
gradient of every floating input is compared.

Tolerances, stated once (fp32):
    |actual - expected| <= ATOL * scale + RTOL * |expected|,   scale = max(1, max |expected|)
RTOL = 1e-5 is ~80 float32 ulps. The absolute part is relative to the tensor's magnitude because
float32 rounding error is proportional to the size of the terms summed, not to a result that
happens to cancel to ~0 (a matmul entry, a softmax gradient). Any looser tolerance must be passed
explicitly by the caller with a comment saying why.

``tests/`` has no ``__init__.py``, so pytest (import mode "prepend") puts this folder on sys.path and
test files import this module by its name.
"""
import numpy as np
import torch

import minitx as mx

RTOL = 1e-5
ATOL = 1e-6

_TORCH_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64, torch.bool: np.bool_}


def _convert(inputs, differentiable):
    """The minitx and torch versions of ``inputs`` and which of them get gradients."""
    mx_inputs, torch_inputs, wants_grad = [], [], []
    for i, value in enumerate(inputs):
        if isinstance(value, np.ndarray):
            grad = value.dtype.kind == "f" if differentiable is None else i in differentiable
            mx_inputs.append(mx.tensor(value, requires_grad=grad))
            torch_inputs.append(torch.tensor(value, requires_grad=grad))
        else:
            grad = False
            mx_inputs.append(value)
            torch_inputs.append(value)
        wants_grad.append(grad)
    return mx_inputs, torch_inputs, wants_grad


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str, rtol=RTOL, atol=ATOL) -> None:
    """Assert same shape, same dtype and values within the module's tolerance rule."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch's {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != torch's {expected.dtype}"
    if expected.dtype.kind not in "fc":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(actual), finite, err_msg=f"{what}: non-finite entries differ")
    np.testing.assert_array_equal(actual[~finite], expected[~finite], err_msg=f"{what}: inf/nan entries differ")
    scale = max(1.0, float(np.abs(expected[finite]).max(initial=0.0)))
    error = np.abs(actual[finite].astype(np.float64) - expected[finite])
    bound = atol * scale + rtol * np.abs(expected[finite])
    if error.size and not (error <= bound).all():
        worst = int(np.argmax(error - bound))
        raise AssertionError(
            f"{what}: max error {error.max():.3g} exceeds tolerance (worst: {actual[finite].ravel()[worst]!r} vs "
            f"torch {expected[finite].ravel()[worst]!r}, rtol={rtol}, atol={atol}·{scale:.3g})"
        )


def assert_close_to_torch(mx_fn, torch_fn, *inputs, rtol=RTOL, atol=ATOL, grad_rtol=None, grad_atol=None,
                          differentiable=None, check_grad=True, seed=0):
    """Run ``mx_fn`` and ``torch_fn`` on the same ``inputs``; compare outputs, then every input gradient.

    ``differentiable``: indices of the inputs that get gradients (default: every floating array).
    ``grad_rtol``/``grad_atol`` default to ``rtol``/``atol``. Returns the minitx outputs (a tuple).
    """
    mx_inputs, torch_inputs, wants_grad = _convert(inputs, differentiable)
    mx_out = _as_tuple(mx_fn(*mx_inputs))
    torch_out = _as_tuple(torch_fn(*torch_inputs))
    assert len(mx_out) == len(torch_out), f"{len(mx_out)} outputs vs torch's {len(torch_out)}"
    for k, (a, e) in enumerate(zip(mx_out, torch_out)):
        assert isinstance(a, mx.Tensor), f"output {k} is a {type(a).__name__}, not a minitx Tensor"
        assert_close(a.numpy(), e.detach().numpy(), f"forward output {k}", rtol, atol)

    if not check_grad or not any(wants_grad):
        return mx_out
    rng = np.random.default_rng(seed)
    cotangents = [rng.standard_normal(e.shape).astype(_TORCH_DTYPES[e.dtype]) for e in torch_out]
    differentiable_out = [k for k, e in enumerate(torch_out) if e.requires_grad]
    torch.autograd.backward([torch_out[k] for k in differentiable_out],
                            [torch.from_numpy(cotangents[k]) for k in differentiable_out])
    if len(mx_out) == 1:
        mx_out[0].backward(cotangents[0])  # the op's own backward, no extra graph ops
    else:
        total = sum((mx_out[k] * mx.tensor(cotangents[k])).sum() for k in differentiable_out)
        total.backward()

    grad_rtol = rtol if grad_rtol is None else grad_rtol
    grad_atol = atol if grad_atol is None else grad_atol
    for i, (a, e, grad) in enumerate(zip(mx_inputs, torch_inputs, wants_grad)):
        if not grad:
            continue
        expected = np.zeros_like(inputs[i]) if e.grad is None else e.grad.numpy()
        actual = np.zeros_like(inputs[i]) if a.grad is None else a.grad.numpy()
        assert_close(actual, expected, f"gradient of input {i}", grad_rtol, grad_atol)
    return mx_out
