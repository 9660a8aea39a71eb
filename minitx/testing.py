"""Tools for checking gradients: ``gradcheck`` compares autograd with finite differences.

For every input element x_i, the central difference

    dL/dx_i ≈ (L(x + ε e_i) - L(x - ε e_i)) / (2ε)

approximates the derivative with error O(ε²). ``L`` is ``sum(fn(*inputs) * w)`` for a fixed random
weight ``w``, which tests the full vector-Jacobian product, not just the sum of the outputs.
Runs in float64 so ε = 1e-6 is meaningful.
"""
import numpy as np

from minitx.tensor import Tensor, enable_grad, no_grad


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True) -> bool:
    """Check autograd gradients of ``fn(*inputs)`` against central differences.

    ``inputs``: floating Tensors are checked on float64 copies (the originals are left untouched);
    integer Tensors (ids, targets) and any other arguments are passed through unchanged. Gradients are checked for every Tensor input with ``requires_grad=True``.
    Returns True, or raises AssertionError naming the input and the worst element.
    """
    inputs = [Tensor(t.data, requires_grad=t.requires_grad, dtype=np.float64) if _is_float_tensor(t) else t
              for t in inputs]
    rng = np.random.default_rng(seed)
    with enable_grad():
        out = fn(*inputs)
        weight = rng.standard_normal(out.shape)
        (out * Tensor(weight)).sum().backward()

    def objective() -> float:
        with no_grad():
            return float((fn(*inputs).data * weight).sum())

    for index, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = t.grad.data if t.grad is not None else np.zeros_like(t.data)
        numeric = np.zeros_like(t.data)
        for i in np.ndindex(t.shape):  # perturb the input in place, whatever its memory layout
            original = t.data[i]
            t.data[i] = original + eps
            plus = objective()
            t.data[i] = original - eps
            minus = objective()
            t.data[i] = original
            numeric[i] = (plus - minus) / (2 * eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            worst = np.unravel_index(np.argmax(np.abs(analytic - numeric)), t.shape)
            if raise_exception:
                raise AssertionError(
                    f"gradcheck failed for input {index} (shape {t.shape}) at {worst}: "
                    f"autograd {analytic[worst]:.8g} vs numerical {numeric[worst]:.8g}"
                )
            return False
    return True


def _is_float_tensor(value) -> bool:
    return isinstance(value, Tensor) and value.dtype.kind == "f"
