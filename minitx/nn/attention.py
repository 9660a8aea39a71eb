"""Multi-head attention (Vaswani et al., 2017, §3.2.2):

    MultiHead(X, C) = Concat(head_1, …, head_h) W_O,   head_i = Attention(X W_Q^i, C W_K^i, C W_V^i)

Self-attention when C = X, cross-attention (decoder → encoder) when C is the encoder output. The h heads
are computed at once by reshaping (B, L, E) -> (B, h, L, E/h); ``minitx.ops.attention.attention`` does the
rest (fused or unfused, as ``minitx.backends.attention_path`` decides).

Masks (all optional, combined into one canonical mask; the rule is in ``minitx/masks.py``):
  * ``padding_mask`` (B, Lk): 1 = real token, 0 = padding (the HF ``attention_mask`` convention).
  * ``attn_mask``: boolean (True = may attend) or additive float, shape (Lq, Lk), (B, Lq, Lk) or (B, H, Lq, Lk).
  * ``is_causal``: query i sees keys ≤ i (aligned to the end when a KV cache makes Lk > Lq).

KV cache (incremental decoding): a ``KVCache`` holds the projected keys and values of earlier positions in
a buffer allocated once; each step writes its new keys/values in place and attends over the filled prefix,
so it projects only the new token and copies nothing that is already cached. Cross-attention caches the
encoder's (K, V) as a plain pair: it never changes.
"""
from typing import NamedTuple, Optional

import numpy as np

from minitx.masks import canonical_mask
from minitx.nn.linear import Linear
from minitx.nn.module import Module
from minitx.ops.attention import attention
from minitx.tensor import Tensor, data_of


class AttentionOutput(NamedTuple):
    output: Tensor                     # (B, Lq, E)
    weights: Optional[Tensor]          # (B, h, Lq, Lk) probabilities when need_weights=True
    past_key_value: Optional[object]   # use_cache=True: the KVCache (self-attention) or (K, V) (cross)


class KVCache:
    """One layer's keys and values for incremental decoding, in a buffer filled left to right.

    ``buffer`` is (2, B, h, capacity, E/h): [0] keys, [1] values. A step with ``new`` positions writes them in
    place at [length, length + new) and returns views of the filled prefix [0, length + new): nothing already
    cached is copied again (``torch.cat`` in HF's DynamicCache copies the whole cache every token). The
    buffer is allocated at the first ``append``, with room for ``capacity`` positions; when it is full it
    doubles (one copy). ``generate`` passes capacity = max_length, so it never grows there.

    It holds arrays, not a graph: a cache is for inference (no gradient reaches earlier steps through it),
    so the new keys/values are split into heads on the arrays, with no autograd op.
    Reads like HF's (K, V) pair: ``keys, values = cache``, ``cache[0].shape == (B, h, length, E/h)``.
    """

    def __init__(self, num_heads: int, capacity: int = 0):
        self.num_heads, self.capacity = num_heads, capacity
        self.length = 0
        self.buffer = None

    def append(self, keys, values):  # keys, values: (B, new, E) projections -> all of them, (B, h, length, E/h)
        keys, values = self._split_heads(data_of(keys)), self._split_heads(data_of(values))
        start, end = self.length, self.length + keys.shape[2]
        if self.buffer is None or end > self.buffer.shape[3]:
            self._grow(keys, end)
        self.buffer[0, :, :, start:end] = keys
        self.buffer[1, :, :, start:end] = values
        self.length = end
        return self.keys, self.values

    def _split_heads(self, x: np.ndarray) -> np.ndarray:  # (B, L, E) -> (B, h, L, E/h), a view
        batch, length, embed_dim = x.shape
        return x.reshape(batch, length, self.num_heads, embed_dim // self.num_heads).transpose(0, 2, 1, 3)

    def _grow(self, keys: np.ndarray, needed: int) -> None:
        batch, heads, _, head_dim = keys.shape
        old = 0 if self.buffer is None else self.buffer.shape[3]
        buffer = np.empty((2, batch, heads, max(needed, self.capacity, 2 * old), head_dim), dtype=keys.dtype)
        if self.buffer is not None:
            buffer[:, :, :, :self.length] = self.buffer[:, :, :, :self.length]
        self.buffer = buffer

    @property
    def keys(self) -> Tensor:      # (B, h, length, E/h), a view
        return Tensor(self.buffer[0, :, :, :self.length], _copy=False)

    @property
    def values(self) -> Tensor:    # (B, h, length, E/h), a view
        return Tensor(self.buffer[1, :, :, :self.length], _copy=False)

    def __getitem__(self, index: int) -> Tensor:
        return (self.keys, self.values)[index]

    def __len__(self) -> int:
        return 2

    def reorder_cache(self, beam_idx: np.ndarray) -> None:
        """Beam search: row i continues row ``beam_idx[i]``, in place. Only the rows whose source is another row are
        copied (a beam that keeps its own history, as most do from step to step, costs nothing)."""
        beam_idx = np.asarray(beam_idx)
        moved = np.flatnonzero(beam_idx != np.arange(len(beam_idx)))
        if moved.size:
            filled = self.buffer[:, :, :, :self.length]
            filled[:, moved] = filled[:, beam_idx[moved]]  # the right side is gathered (copied) before the write


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
        k, v, present = self.keys_values(x, context, past_key_value, use_cache)
        if padding_mask is not None and np.shape(data_of(padding_mask))[-1] != k.shape[2]:
            raise ValueError(f"MultiHeadAttention: padding_mask has shape {np.shape(data_of(padding_mask))} but there are "
                             f"{k.shape[2]} keys (with a KV cache the mask covers past + new positions)")
        mask = combine_masks(padding_mask, attn_mask, q.dtype, q.shape[:-1] + (k.shape[2],))
        heads, weights = attention(q, k, v, attn_mask=mask, dropout_p=self.dropout, is_causal=is_causal,
                                   training=self.training, need_weights=need_weights)
        output = self.out_proj(self.merge_heads(heads))
        return AttentionOutput(output, weights, present)

    def keys_values(self, x, context, past_key_value, use_cache: bool):
        """(K, V, cache to return): K, V (B, h, Lk, E/h) over every position the queries attend to.

        Self-attention with a cache (or ``use_cache``) writes this step's keys/values into the ``KVCache``
        and attends over all of it; cross-attention computes the encoder's K, V once and reuses the pair.
        """
        if context is not None and past_key_value is not None:
            k, v = past_key_value  # cross-attention: the encoder's keys/values never change
            return k, v, (k, v) if use_cache else None
        if context is not None or (past_key_value is None and not use_cache):
            source = x if context is None else context
            k, v = self.split_heads(self.key(source)), self.split_heads(self.value(source))
            return k, v, (k, v) if use_cache else None
        cache = KVCache(self.num_heads) if past_key_value is None else past_key_value
        if not isinstance(cache, KVCache):
            raise TypeError(f"MultiHeadAttention: a self-attention past_key_value must be the KVCache a previous "
                            f"call returned (use_cache=True), got {type(cache).__name__}")
        k, v = cache.append(self.key(x), self.value(x))
        return k, v, cache if use_cache else None

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
