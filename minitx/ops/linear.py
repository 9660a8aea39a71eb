"""The affine map of ``torch.nn.functional.linear`` as one op: y = x Wᵀ + b.

x (..., K), W (N, K) as ``nn.Linear`` stores it, b (N,); the leading axes of x are rows of one product:

    y  = x Wᵀ + b            (..., N)
    dx = dy W                (..., K)
    dW = Σ dyᵀ x             (N, K)   summed over every row (all leading axes of x)
    db = Σ dy                (N,)

It is the composition ``x @ W.transpose(0, 1) + b`` (MatMul, Transpose and Add, whose backwards give the same
three formulas) written as one node: a Transformer runs a Linear for every projection, so one op instead of
three is a third of the graph bookkeeping per layer (it shows in token-by-token generation), and the bias is
added into the product's output instead of a fresh array.
"""
import math

import numpy as np

from minitx.autograd import Function
from minitx.backends import kernel


class Linear(Function):
    """y = x Wᵀ + b (see the module docstring for the gradients); ``bias`` may be None."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        rows = x.reshape(_row_count(x.shape), x.shape[-1])      # (M, K): every leading axis of x is a row
        w_t = weight.T                                          # (K, N), a view: the kernel reads W as stored
        y = kernel("matmul", rows, w_t)(rows, w_t)              # (M, N)
        if bias is not None:
            y = _add_bias(y, bias)
        ctx.save(rows, weight)
        ctx.has_bias = bias is not None
        return y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        rows, weight = ctx.saved
        dx = dw = db = None
        # BEGIN SOLUTION hint="view grad as (M, N) rows like the forward's x; dx = dy W reshaped to x's shape (..., K), dW = dyᵀ x over all rows, db = dy summed over the rows (only when ctx.has_bias); kernel(\"matmul\", ...) for the products; None for what ctx.needs_input_grad does not want"
        grad_rows = grad.reshape(rows.shape[0], weight.shape[0])  # (M, N)
        if ctx.needs_input_grad[0]:
            dx = kernel("matmul", grad_rows, weight)(grad_rows, weight).reshape(*grad.shape[:-1], weight.shape[1])
        if ctx.needs_input_grad[1]:
            grad_t = grad_rows.T                                # (N, M)
            dw = kernel("matmul", grad_t, rows)(grad_t, rows)   # (N, K)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = grad_rows.sum(axis=0)                          # (N,)
        # END SOLUTION
        return dx, dw, db


def _row_count(shape: tuple) -> int:
    """M: the product of the leading axes (1 for a vector; reshape(-1, K) cannot say it when K is 0)."""
    return math.prod(shape[:-1])


def _add_bias(y: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """y + bias, into y's own buffer when the sum keeps y's dtype (y is the product's fresh output)."""
    if np.result_type(y, bias) == y.dtype and y.flags.writeable:
        return np.add(y, bias, out=y)
    return y + bias
