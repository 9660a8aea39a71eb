"""Scaled dot-product attention (Vaswani et al., 2017, §3.2.1):

    Attention(Q, K, V) = softmax(Q Kᵀ · scale + bias) V,   scale = 1/√d_k

``bias`` keeps the keys a query may attend to and blocks the others (padding, causality): the one mask
rule is in ``minitx/masks.py``. Two paths compute the same thing; ``minitx.backends.attention_path``
picks one:

* fused (the C++ kernel takes the inputs, no dropout, no weights wanted): one Function whose forward
  streams K/V tiles with an online softmax and keeps only the log-sum-exp per row (flash attention;
  Dao et al., 2022); its backward recomputes the probabilities from that LSE. Memory O(L) instead of O(L²).
* unfused: built from the Tensor ops (matmul, softmax, dropout), so autograd derives the backward; the
  L×L matrix P is formed (and returned when ``need_weights``).

A fully masked row (a query that may attend to nothing) gives zeros and no gradient on both paths.
"""
import math

import numpy as np

from minitx import backends
from minitx.autograd import Function
from minitx.masks import attention_bias, canonical_mask
from minitx.ops.functions import where
from minitx.ops.nn_ops import dropout
from minitx.tensor import Tensor, data_of


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


def attention_probabilities(q: Tensor, k: Tensor, mask=None, causal=False, scale=None, dropout_p=0.0,
                            training=True) -> Tensor:
    """P = softmax(Q Kᵀ · scale + bias): (B, H, Lq, Lk), the matrix the fused path never forms.

    ``mask`` is canonical (``minitx.masks.canonical_mask``); ``attention_bias`` reads it.
    """
    # BEGIN SOLUTION hint="scale defaults to 1/sqrt(d_k); scores = Q Kᵀ · scale (B, H, Lq, Lk); keep, additive, visible = attention_bias(mask, causal, Lq, Lk, q.dtype); add `additive` when it is not None; where(keep, scores, np.finfo(q.dtype).min), softmax over the keys, times visible (fully masked rows become 0); then dropout(p, dropout_p, training) when dropout_p > 0 — all with Tensor ops so autograd derives the backward"
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, Lq, Lk)
    keep, additive, visible = attention_bias(mask, causal, q.shape[-2], k.shape[-2], q.dtype)
    if additive is not None:
        scores = scores + additive
    p = where(keep, scores, float(np.finfo(q.dtype).min)).softmax(-1) * visible.astype(q.dtype)
    return dropout(p, dropout_p, training) if dropout_p > 0 else p
    # END SOLUTION


def attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
              is_causal: bool = False, scale: float = None, training: bool = True, need_weights: bool = False):
    """(output, weights): scaled_dot_product_attention, plus the probabilities P when ``need_weights``
    (else None). The path (fused or unfused) is chosen by ``minitx.backends.attention_path``."""
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: incompatible shapes query {query.shape}, "
                         f"key {key.shape}, value {value.shape}")
    scores_shape = np.broadcast_shapes(query.shape[:-2], key.shape[:-2]) + (query.shape[-2], key.shape[-2])
    mask = canonical_mask(None if attn_mask is None else data_of(attn_mask), query.dtype, scores_shape)
    dropout_p = dropout_p if training else 0.0
    if backends.attention_path(query.data, key.data, value.data, dropout_p, need_weights) == "fused":
        return FusedAttention.apply(query, key, value, mask=mask, causal=is_causal, scale=scale), None
    p = attention_probabilities(query, key, mask, is_causal, scale, dropout_p, training)
    return p @ value, (p if need_weights else None)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float = None, training: bool = True) -> Tensor:
    """softmax(Q Kᵀ/√d + mask) V, with torch's argument names.

    query (B, H, Lq, D), key/value (B, H, Lk, D). ``attn_mask``: boolean (True = may attend) or additive
    float, broadcastable to (B, H, Lq, Lk); padding masks are (B, 1, 1, Lk); integer masks are refused
    (``minitx/masks.py``). ``is_causal``: query i sees keys up to i (aligned to the end when Lk > Lq, as
    with a KV cache). Attention dropout (``dropout_p > 0`` while training) takes the unfused path.
    """
    return attention(query, key, value, attn_mask, dropout_p, is_causal, scale, training)[0]
