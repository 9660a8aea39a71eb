"""Scaled dot-product attention (Vaswani et al., 2017, §3.2.1):

    Attention(Q, K, V) = softmax(Q Kᵀ · scale + bias) V,   scale = 1/√d_k

``bias`` is 0 where a query may attend and -∞ where it may not (padding, causality). Two paths
compute the same thing:

* fused (C++ backend, float32, no dropout): one Function whose forward streams K/V tiles with an
  online softmax and keeps only the log-sum-exp per row (flash attention; Dao et al., 2022); its
  backward recomputes the probabilities from that LSE. Memory O(L) instead of O(L²).
* unfused (NumPy backend, float64, or attention dropout): built from the Tensor ops
  (matmul, softmax, dropout), so autograd derives the backward; the L×L matrix is materialised.

A fully masked row (a query that may attend to nothing) gives zeros in both paths, never NaN.
"""
import math

import numpy as np

from minitx import backends
from minitx.tensor import Function, Tensor


def _mask_array(mask):
    if mask is None:
        return None
    return mask.data if isinstance(mask, Tensor) else np.asarray(mask)


class FusedAttention(Function):
    """The fused kernel as one autograd op (forward/backward in ``kernels.attention_*``)."""

    @staticmethod
    def forward(ctx, q, k, v, mask=None, causal=False, scale=None):  # q: (B,H,Lq,D), k/v: (B,H,Lk,D)
        attention_forward = backends.kernel("attention_forward", q, k, v)
        out, lse = attention_forward(q, k, v, mask=mask, causal=causal, scale=scale)
        ctx.save(q, k, v, out, lse, mask, causal, scale)
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse, mask, causal, scale = ctx.saved
        attention_backward = backends.kernel("attention_backward", dout, q, k, v)
        dq, dk, dv = attention_backward(dout, q, k, v, out, lse, mask=mask, causal=causal, scale=scale)
        return dq, dk, dv


def attention_bias(mask, causal: bool, lq: int, lk: int, dtype) -> tuple:
    """(additive bias, allowed) for the unfused path: bias = 0 / finfo.min, broadcastable to (..., Lq, Lk).

    The most negative finite number (not -∞) keeps softmax free of NaN; ``allowed`` marks rows with at
    least one visible key, so fully masked rows can be zeroed afterwards.
    """
    # BEGIN SOLUTION hint="allowed (Lq, Lk): causal keeps key j for query i when j <= i + (lk - lq); AND a boolean mask in; an additive mask adds to the bias (clip at neg = np.finfo(dtype).min) and blocks where it is -inf or <= neg/2. bias = 0 where allowed else neg; return (bias, allowed.any(axis=-1, keepdims=True))"
    neg = np.finfo(dtype).min
    allowed = np.ones((lq, lk), dtype=bool)
    if causal:
        allowed = np.arange(lk)[None, :] <= np.arange(lq)[:, None] + (lk - lq)
    bias = np.where(allowed, 0.0, neg).astype(dtype)
    if mask is not None:
        if mask.dtype == np.bool_:
            allowed = allowed & mask
            bias = np.where(allowed, 0.0, neg).astype(dtype)
        else:
            bias = np.maximum(bias + mask.astype(dtype), neg)
            allowed = allowed & np.isfinite(mask) & (mask > neg / 2)
    return bias, allowed.any(axis=-1, keepdims=True)
    # END SOLUTION


def attention_probabilities(q: Tensor, k: Tensor, mask=None, causal=False, scale=None, dropout_p=0.0,
                            training=True) -> Tensor:
    """P = softmax(Q Kᵀ · scale + bias): (B, H, Lq, Lk), the matrix the fused path never forms."""
    from minitx.nn.functional import dropout

    # BEGIN SOLUTION hint="scale defaults to 1/sqrt(d_k); scores = Q Kᵀ · scale (B, H, Lq, Lk); add the bias from attention_bias(...), softmax over the keys, zero the rows with no visible key, then dropout(p, dropout_p, training) when dropout_p > 0 — all with Tensor ops so autograd derives the backward"
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, Lq, Lk)
    bias, row_visible = attention_bias(_mask_array(mask), causal, q.shape[-2], k.shape[-2], q.dtype)
    p = (scores + bias).softmax(-1) * row_visible.astype(q.dtype)
    return dropout(p, dropout_p, training) if dropout_p > 0 else p
    # END SOLUTION


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float = None, training: bool = True) -> Tensor:
    """softmax(Q Kᵀ/√d + mask) V, with torch's argument names.

    query (B, H, Lq, D), key/value (B, H, Lk, D). ``attn_mask``: boolean (True = may attend) or additive
    float, broadcastable to (B, H, Lq, Lk); padding masks are (B, 1, 1, Lk). ``is_causal``: query i sees
    keys up to i (aligned to the end when Lk > Lq, as with a KV cache). Attention dropout (``dropout_p > 0``
    while training) always takes the unfused path.
    """
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: incompatible shapes query {query.shape}, "
                         f"key {key.shape}, value {value.shape}")
    mask = _mask_array(attn_mask)
    use_fused = (backends.get_backend() == "cpp" and query.dtype == np.float32
                 and (dropout_p == 0.0 or not training) and query.ndim == 4)
    if use_fused:
        return FusedAttention.apply(query, key, value, mask=mask, causal=is_causal, scale=scale)
    p = attention_probabilities(query, key, mask, is_causal, scale, dropout_p, training)
    return p @ value
