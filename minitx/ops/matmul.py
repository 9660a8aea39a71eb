"""Matrix multiplication with batched broadcasting (the ``@`` operator).

C = A B with A (..., M, K) and B (..., K, N):
    dA = dC Bᵀ   (..., M, K)        dB = Aᵀ dC   (..., K, N)
then each is reduced over the batch axes it was broadcast along. 1-D operands follow NumPy's rule:
a vector is promoted to a matrix for the product and the added axis removed afterwards.
"""
import numpy as np

from minitx.autograd import Function
from minitx.backends import kernel
from minitx.ops.broadcast import unbroadcast


def _check_matmul_shapes(a_shape, b_shape):
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, a is {a_shape}, b is {b_shape}")
    k_a = a_shape[-1]
    k_b = b_shape[-2] if len(b_shape) >= 2 else b_shape[0]
    if k_a != k_b:
        raise ValueError(f"matmul: inner dimensions differ: a is {a_shape}, b is {b_shape}")
    try:
        np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions cannot broadcast: a is {a_shape}, b is {b_shape}") from None


class MatMul(Function):
    """C = A @ B (see module docstring for the gradient formulas)."""

    @staticmethod
    def forward(ctx, a, b):
        _check_matmul_shapes(a.shape, b.shape)
        ctx.save(a, b)
        a2 = a[None, :] if a.ndim == 1 else a  # (K,) -> (1, K)
        b2 = b[:, None] if b.ndim == 1 else b  # (K,) -> (K, 1)
        c = kernel("matmul", a2, b2)(a2, b2)
        if a.ndim == 1:
            c = c[..., 0, :]
        if b.ndim == 1:
            c = c[..., 0]
        return c

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad  # put back the axes the forward removed: b's first (the last axis), then a's
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        da = db = None
        # BEGIN SOLUTION hint="dA = dC Bᵀ and dB = Aᵀ dC (np.swapaxes(..., -1, -2), kernel(\"matmul\", ...)), each unbroadcast over the batch axes to a2/b2's shape and reshaped to a/b's shape; None when not needed"
        if ctx.needs_input_grad[0]:
            bt = np.swapaxes(b2, -1, -2)
            da = unbroadcast(kernel("matmul", g, bt)(g, bt), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            at = np.swapaxes(a2, -1, -2)
            db = unbroadcast(kernel("matmul", at, g)(at, g), b2.shape).reshape(b.shape)
        return da, db
        # END SOLUTION
