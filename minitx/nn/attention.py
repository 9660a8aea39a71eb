"""Multi-head attention (Vaswani et al., 2017, §3.2.2):

    MultiHead(X, C) = Concat(head_1, …, head_h) W_O,   head_i = Attention(X W_Q^i, C W_K^i, C W_V^i)

Self-attention when C = X, cross-attention (decoder → encoder) when C is the encoder output. The h heads
are computed at once by reshaping (B, L, E) -> (B, h, L, E/h); ``minitx.ops.attention.attention`` does the
rest (fused or unfused, as ``minitx.backends.attention_path`` decides).

Masks (all optional, combined into one canonical mask; the rule is in ``minitx/masks.py``):
  * ``padding_mask`` (B, Lk): 1 = real token, 0 = padding (the HF ``attention_mask`` convention).
  * ``attn_mask``: boolean (True = may attend) or additive float, shape (Lq, Lk), (B, Lq, Lk) or (B, H, Lq, Lk).
  * ``is_causal``: query i sees keys ≤ i (aligned to the end when a KV cache makes Lk > Lq).

KV cache (incremental decoding): ``past_key_value=(K, V)``, each (B, h, L_past, E/h), holds the projected
keys and values of earlier positions; the new ones are appended, so each step projects only the new token.
"""
from typing import NamedTuple, Optional

import numpy as np

from minitx.masks import canonical_mask
from minitx.nn.linear import Linear
from minitx.nn.module import Module
from minitx.ops.functions import cat
from minitx.ops.attention import attention
from minitx.tensor import Tensor, data_of


class AttentionOutput(NamedTuple):
    output: Tensor                     # (B, Lq, E)
    weights: Optional[Tensor]          # (B, h, Lq, Lk) probabilities when need_weights=True
    past_key_value: Optional[tuple]    # (K, V), each (B, h, Lk, E/h), when use_cache=True


def combine_masks(padding_mask, attn_mask, dtype, scores_shape):
    """One canonical mask (``minitx/masks.py``) for the attention, broadcastable to ``scores_shape`` =
    (B, H, Lq, Lk): boolean (True = attend) unless ``attn_mask`` is additive, then additive with -inf
    where a key is padding."""
    keep = None
    if padding_mask is not None:
        pad = data_of(padding_mask)
        if pad.ndim != 2:
            raise ValueError(f"padding_mask must be (batch, key_length) with 1 = token, 0 = padding; got shape {pad.shape}")
        keep = (pad != 0)[:, None, None, :]  # (B, 1, 1, Lk)
    if attn_mask is None:
        return keep
    mask = data_of(attn_mask)
    if mask.ndim == 3:
        mask = mask[:, None]  # (B, Lq, Lk) -> (B, 1, Lq, Lk)
    mask = canonical_mask(mask, dtype, scores_shape, "MultiHeadAttention")
    if keep is None:
        return mask
    return mask & keep if mask.dtype == np.bool_ else np.where(keep, mask, -np.inf).astype(dtype)


class MultiHeadAttention(Module):
    """Multi-head attention with separate Q/K/V projections named like HF BERT (``query``, ``key``,
    ``value``) and an output projection ``out_proj``. ``dropout`` applies to the attention probabilities."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout = dropout
        self.query = Linear(embed_dim, embed_dim, bias)
        self.key = Linear(embed_dim, embed_dim, bias)
        self.value = Linear(embed_dim, embed_dim, bias)
        self.out_proj = Linear(embed_dim, embed_dim, bias)

    def split_heads(self, x):  # (B, L, E) -> (B, h, L, E/h)
        b, length, _ = x.shape
        return x.reshape(b, length, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def merge_heads(self, x):  # (B, h, L, E/h) -> (B, L, E)
        b, _, length, _ = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, length, self.embed_dim)

    def forward(self, x, context=None, padding_mask=None, attn_mask=None, is_causal: bool = False,
                need_weights: bool = False, past_key_value=None, use_cache: bool = False) -> AttentionOutput:
        """x: (B, Lq, E) queries; context: (B, Lk, E) for cross-attention (None: self-attention)."""
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention: expected input (batch, length, {self.embed_dim}), got {x.shape}")
        q = self.split_heads(self.query(x))
        if context is not None and past_key_value is not None:
            k, v = past_key_value  # cross-attention: the encoder's keys/values never change
        else:
            source = x if context is None else context
            k, v = self.split_heads(self.key(source)), self.split_heads(self.value(source))
            if past_key_value is not None:  # self-attention: append this step's keys/values
                k, v = cat([past_key_value[0], k], dim=2), cat([past_key_value[1], v], dim=2)
        if padding_mask is not None and np.shape(data_of(padding_mask))[-1] != k.shape[2]:
            raise ValueError(f"MultiHeadAttention: padding_mask has shape {np.shape(data_of(padding_mask))} but there are "
                             f"{k.shape[2]} keys (with a KV cache the mask covers past + new positions)")
        mask = combine_masks(padding_mask, attn_mask, q.dtype, q.shape[:-1] + (k.shape[2],))
        heads, weights = attention(q, k, v, attn_mask=mask, dropout_p=self.dropout, is_causal=is_causal,
                                   training=self.training, need_weights=need_weights)
        output = self.out_proj(self.merge_heads(heads))
        return AttentionOutput(output, weights, (k, v) if use_cache else None)

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
