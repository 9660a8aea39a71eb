"""Scaled dot-product attention (Vaswani et al., 2017, §3.2.1):

    Attention(Q, K, V) = softmax(Q Kᵀ · scale + bias) V,   scale = 1/√d_k

``bias`` keeps the keys a query may attend to and blocks the others (padding, causality): the one mask
rule is in ``minitx/masks.py``. Two paths compute the same thing; ``minitx.backends.attention_path``
picks one:

* fused (the C++ kernel takes the inputs, no weights wanted): one Function whose forward streams K/V tiles
  with an online softmax and keeps only the log-sum-exp per row (flash attention; Dao et al., 2022); its
  backward recomputes the probabilities from that LSE. Memory O(L) instead of O(L²).
* unfused: built from the Tensor ops (matmul, softmax), so autograd derives the backward; the L×L matrix P
  is formed (and returned when ``need_weights``).

Attention dropout multiplies P by Z = keep/(1-p), the keep mask hashed from a per-call seed and each
element's position (``numpy_ref.attention_dropout_scale``): both paths draw the same mask from the same
seed, and the fused backward regenerates it instead of storing it.
A fully masked row (a query that may attend to nothing) gives zeros and no gradient on both paths.
"""
import math

import numpy as np

from minitx import backends
from minitx.autograd import Function
from minitx.masks import attention_bias, canonical_mask
from minitx.backends.numpy_ref import attention_dropout_scale
from minitx.ops.functions import where
from minitx.random import default_generator
from minitx.tensor import Tensor, data_of


class FusedAttention(Function):
    """The fused kernel as one autograd op (forward/backward in ``kernels.attention_*``)."""

    @staticmethod
    def forward(ctx, q, k, v, mask=None, causal=False, scale=None, dropout_p=0.0, dropout_seed=0):
        # q: (B,H,Lq,D), k/v: (B,H,Lk,D) -> out (B,H,Lq,Dv); only the seed of the dropout mask is kept
        options = dict(mask=mask, causal=causal, scale=scale, dropout_p=dropout_p, dropout_seed=dropout_seed)
        out, lse = backends.kernel("attention_forward", q, k, v)(q, k, v, **options)
        ctx.save(q, k, v, out, lse, options)
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse, options = ctx.saved
        dq, dk, dv = backends.kernel("attention_backward", dout, q, k, v)(dout, q, k, v, out, lse, **options)
        return dq, dk, dv


def draw_dropout_seed() -> int:
    """A fresh seed for one call's attention-dropout mask, from minitx's generator (``minitx.manual_seed``
    makes it reproducible; gradient checkpointing replays it)."""
    return int(default_generator().integers(0, 2 ** 63))


def attention_probabilities(q: Tensor, k: Tensor, mask=None, causal=False, scale=None) -> Tensor:
    """P = softmax(Q Kᵀ · scale + bias): (B, H, Lq, Lk), the matrix the fused path never forms.

    ``mask`` is canonical (``minitx.masks.canonical_mask``); ``attention_bias`` reads it.
    """
    # BEGIN SOLUTION hint="scale defaults to 1/sqrt(d_k); scores = Q Kᵀ · scale (B, H, Lq, Lk); keep, additive, visible = attention_bias(mask, causal, Lq, Lk, q.dtype); add `additive` when it is not None; where(keep, scores, np.finfo(q.dtype).min), softmax over the keys, times visible (fully masked rows become 0); all with Tensor ops so autograd derives the backward"
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, Lq, Lk)
    keep, additive, visible = attention_bias(mask, causal, q.shape[-2], k.shape[-2], q.dtype)
    if additive is not None:
        scores = scores + additive
    return where(keep, scores, float(np.finfo(q.dtype).min)).softmax(-1) * visible.astype(q.dtype)
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
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    dropout_p = dropout_p if training else 0.0
    seed = draw_dropout_seed() if dropout_p > 0 else 0
    if backends.attention_path(query.data, key.data, value.data, dropout_p, need_weights) == "fused":
        out = FusedAttention.apply(query, key, value, mask=mask, causal=is_causal, scale=scale,
                                   dropout_p=dropout_p, dropout_seed=seed)
        return out, None
    p = attention_probabilities(query, key, mask, is_causal, scale)  # (B, H, Lq, Lk)
    if dropout_p > 0:
        p = p * attention_dropout_scale(seed, p.shape, dropout_p, p.dtype)
    return p @ value, (p if need_weights else None)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float = None, training: bool = True) -> Tensor:
    """softmax(Q Kᵀ/√d + mask) V, with torch's argument names.

    query (B, H, Lq, D), key/value (B, H, Lk, D). ``attn_mask``: boolean (True = may attend) or additive
    float, broadcastable to (B, H, Lq, Lk); padding masks are (B, 1, 1, Lk); integer masks are refused
    (``minitx/masks.py``). ``is_causal``: query i sees keys up to i (aligned to the end when Lk > Lq, as
    with a KV cache). Attention dropout (``dropout_p > 0`` while training) drops each probability with
    probability ``dropout_p`` and scales the rest by 1/(1 - dropout_p), on either path.
    """
    return attention(query, key, value, attn_mask, dropout_p, is_causal, scale, training)[0]
