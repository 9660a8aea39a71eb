"""The one rule of broadcasting gradients.

If ``x`` of shape ``s`` was broadcast to a larger shape in the forward pass, every copy of an element
contributed to the output, so its gradient is the *sum* over the broadcast axes:

    dL/dx = unbroadcast(dL/dy, x.shape)
          = sum of dL/dy over the leading axes NumPy prepended and over the axes where x had size 1.

Every binary op uses this helper, so the rule lives in one place.
"""
import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Reduce ``grad`` (the broadcast shape) back to ``shape`` by summing the broadcast axes."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"unbroadcast: gradient of shape {grad.shape} cannot reduce to larger shape {tuple(shape)}")
    # BEGIN SOLUTION hint="sum grad over its first `extra` axes (the ones NumPy prepended), then with keepdims=True over every axis where shape has size 1 but grad does not; reshape to shape"
    grad = grad.sum(axis=tuple(range(extra))) if extra else grad
    size_one_axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if size_one_axes:
        grad = grad.sum(axis=size_one_axes, keepdims=True)
    return grad.reshape(shape)
    # END SOLUTION


def broadcast_shapes(op: str, a_shape: tuple, b_shape: tuple) -> tuple:
    """The broadcast result shape, or a ValueError naming ``op`` and both shapes."""
    try:
        return np.broadcast_shapes(a_shape, b_shape)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {tuple(a_shape)} and {tuple(b_shape)} cannot be broadcast together"
        ) from None
