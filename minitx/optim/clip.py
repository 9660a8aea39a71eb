"""Gradient clipping by global norm (Pascanu et al. 2013, "On the difficulty of training RNNs", §3.2).

    total = ( sum over all params p of ||g_p||_q^q )^(1/q)        (q = norm_type; q = inf: max |g|)
    if total > max_norm:  g <- g * max_norm / (total + 1e-6)

All gradients are scaled by the same factor, so the update keeps its direction. Returns ``total`` (the norm before
clipping), like ``torch.nn.utils.clip_grad_norm_``, so it can be logged.
"""
import math

import numpy as np

from minitx.tensor import Tensor


def clip_grad_norm_(params, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale the ``.grad`` of ``params`` in place so their joint ``norm_type``-norm is at most ``max_norm``."""
    params = [params] if isinstance(params, Tensor) else list(params)
    grads = [p.grad.data for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(g))) for g in grads)
    else:
        per_param = np.array([np.linalg.norm(g.ravel().astype(np.float64), ord=norm_type) for g in grads])
        total = float(np.linalg.norm(per_param, ord=norm_type))
    clip_coef = max_norm / (total + 1e-6)
    if clip_coef < 1.0:
        for g in grads:
            g *= np.asarray(clip_coef, dtype=g.dtype)
    return total
