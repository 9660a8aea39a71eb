"""Adapter from the autograd ops to the C++ kernels (``minitx.kernels``), with the signatures of
``numpy_ref.py``.

The kernels take C-contiguous float32 arrays and validate strictly; the ops may hand over views
(transposes, slices), so this layer makes them contiguous first — except for a transposed matrix,
which goes to the ``matmul_tn`` / ``matmul_nt`` kernels as it is (they read it through strides).
For attention it broadcasts q/k/v to the scores' (B, H) and sums their gradients back; masks arrive canonical
(``minitx.masks``: boolean, or float32 with -inf where blocked) and the kernel broadcasts them by strides.
Which inputs reach this file at all is decided in one place: ``minitx.backends.kernel``.
"""
import numpy as np

from minitx import kernels
from minitx.backends import numpy_ref


def _operand(x: np.ndarray):
    """(array, transposed): a C-contiguous array, or the C-contiguous array whose last-two-axes swap x is."""
    if x.flags.c_contiguous:
        return x, False
    xt = np.swapaxes(x, -1, -2)
    if xt.flags.c_contiguous:
        return xt, True
    return np.ascontiguousarray(x), False


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, a_t = _operand(a)
    b, b_t = _operand(b)
    if a_t and b_t:  # Aᵀ Bᵀ: make B plain
        b, b_t = np.ascontiguousarray(np.swapaxes(b, -1, -2)), False
    if a_t:
        return kernels.matmul_tn(a, b)
    if b_t:
        return kernels.matmul_nt(a, b)
    return kernels.matmul(a, b)


def matmul_tn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return kernels.matmul_tn(np.ascontiguousarray(a), np.ascontiguousarray(b))


def matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return kernels.matmul_nt(np.ascontiguousarray(a), np.ascontiguousarray(b))


def softmax_forward(x: np.ndarray) -> np.ndarray:
    return kernels.softmax_forward(np.ascontiguousarray(x))


def softmax_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    return kernels.softmax_backward(np.ascontiguousarray(dy), np.ascontiguousarray(y))


def layer_norm_forward(x, weight, bias, eps=1e-5):
    n = x.shape[-1]
    weight = np.ones(n, np.float32) if weight is None else np.ascontiguousarray(weight, np.float32)
    bias = np.zeros(n, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    return kernels.layer_norm_forward(np.ascontiguousarray(x), weight, bias, float(eps))


def layer_norm_backward(dy, x, weight, mean, rstd):
    affine = weight is not None
    weight = np.ascontiguousarray(weight, np.float32) if affine else np.ones(x.shape[-1], np.float32)
    # np.require keeps a 1-D input's 0-d mean/rstd 0-d (np.ascontiguousarray would make them (1,))
    dx, dw, db = kernels.layer_norm_backward(np.ascontiguousarray(dy), np.ascontiguousarray(x), weight,
                                             np.require(mean, requirements="C"), np.require(rstd, requirements="C"))
    return (dx, dw, db) if affine else (dx, None, None)


def gelu_forward(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    return kernels.gelu_forward(np.ascontiguousarray(x), approximate)


def gelu_backward(dy: np.ndarray, x: np.ndarray, approximate: str = "none") -> np.ndarray:
    return kernels.gelu_backward(np.ascontiguousarray(dy), np.ascontiguousarray(x), approximate)


def _attention_inputs(q, k, v, mask, copy=True):
    """q, k, v as (B, H, L, D) float32, all broadcast to the scores' (B, H), contiguous unless ``copy=False``
    (k and v as views: the kernel reads a KV cache's prefix or a broadcast in place when decoding and copies
    them itself otherwise); the mask contiguous."""
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q, k, v = (np.broadcast_to(a, lead + a.shape[-2:]) for a in (q, k, v))
    q = np.ascontiguousarray(q)
    if copy:
        k, v = np.ascontiguousarray(k), np.ascontiguousarray(v)
    if mask is not None:
        mask = np.ascontiguousarray(mask)
    return q, k, v, mask


def attention_forward(q, k, v, mask=None, causal=False, scale=None, dropout_p=0.0, dropout_seed=0):
    q, k, v, mask = _attention_inputs(q, k, v, mask, copy=False)
    return kernels.attention_forward(q, k, v, mask, bool(causal), scale, float(dropout_p), int(dropout_seed))


def attention_backward(dout, q, k, v, out, lse, mask=None, causal=False, scale=None, dropout_p=0.0, dropout_seed=0):
    shapes = q.shape, k.shape, v.shape
    q, k, v, mask = _attention_inputs(q, k, v, mask)
    grads = kernels.attention_backward(np.ascontiguousarray(dout), q, k, v, np.ascontiguousarray(out),
                                       np.ascontiguousarray(lse), mask, bool(causal), scale, float(dropout_p),
                                       int(dropout_seed))
    return tuple(numpy_ref._sum_to(g, shape) for g, shape in zip(grads, shapes))


def cross_entropy_forward(logits, target, ignore_index=-100, label_smoothing=0.0):
    return kernels.cross_entropy_forward(np.ascontiguousarray(logits), np.ascontiguousarray(target, np.int64),
                                         int(ignore_index), float(label_smoothing))


def cross_entropy_backward(dloss, logits, lse, target, ignore_index=-100, label_smoothing=0.0, out=None):
    return kernels.cross_entropy_backward(np.ascontiguousarray(dloss), np.ascontiguousarray(logits),
                                          np.ascontiguousarray(lse, np.float64),
                                          np.ascontiguousarray(target, np.int64), int(ignore_index),
                                          float(label_smoothing), out)


def adamw_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
               decoupled_weight_decay=True):
    # param and the moments are updated in place: backends.kernel sends only C-contiguous ones here
    kernels.adamw_step(param, np.ascontiguousarray(grad), exp_avg, exp_avg_sq, max_exp_avg_sq, float(lr),
                       float(beta1), float(beta2), float(eps), float(weight_decay), int(step),
                       bool(decoupled_weight_decay))
