"""The one mask rule of attention: what a mask means, on every path (the fused C++ kernel, the NumPy
reference kernel and the unfused Tensor ops all read masks through this file).

A mask says which keys each query may attend to. It is one of two kinds, as in PyTorch's
``scaled_dot_product_attention``:

* boolean keep-mask: True = may attend, False = blocked;
* additive float mask: added to the scores, ``-inf`` blocks a key. A value at or below
  ``finfo(dtype).min / 2`` blocks it too (HF models build padding masks from ``finfo.min``), so
  ``canonical_mask`` turns those into ``-inf``: "blocked" has one meaning everywhere.

Integer masks are refused (is a 1 "keep" or "add 1"?), as PyTorch refuses them. A mask broadcasts to
(B, H, Lq, Lk): (Lq, Lk) for every batch and head, (B, 1, 1, Lk) for padding. ``causal`` blocks key j
for query i when j > i + (Lk - Lq): the queries are the *last* Lq positions (a KV cache makes Lk > Lq).

A query that may attend to no key at all (a fully masked row) gets an output of **zeros** and passes no
gradient, on every path: a softmax over the empty set is undefined, and zeros keep the rest of the
network finite. (PyTorch 2.13's SDPA also returns zeros for an all-False boolean row.)
"""
import numpy as np


def canonical_mask(mask, dtype, target_shape, op="scaled_dot_product_attention"):
    """The mask in the form every attention path takes: None, a boolean keep-mask, or an additive float
    mask of ``dtype`` whose blocked entries are exactly ``-inf``.

    ``target_shape`` is (B, H, Lq, Lk) (or the scores' shape); the mask must broadcast to it.
    """
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ and mask.dtype.kind != "f":
        raise RuntimeError(f"{op}: attn_mask must be boolean (True = attend) or an additive float mask, got dtype "
                           f"{mask.dtype}; for a 0/1 mask pass mask.astype(bool)")
    try:
        broadcast_ok = np.broadcast_shapes(mask.shape, tuple(target_shape)) == tuple(target_shape)
    except ValueError:
        broadcast_ok = False
    if not broadcast_ok:
        raise ValueError(f"{op}: attn_mask of shape {mask.shape} does not broadcast to the attention scores "
                         f"(batch, heads, query_length, key_length) = {tuple(target_shape)}")
    if mask.dtype == np.bool_:
        return mask
    mask = mask.astype(dtype, copy=False)
    return np.where(mask <= np.finfo(dtype).min / 2, -np.inf, mask).astype(dtype, copy=False)


def causal_keep(lq: int, lk: int) -> np.ndarray:
    """(Lq, Lk) boolean: query i may see key j when j <= i + (Lk - Lq)."""
    return np.arange(lk)[None, :] <= np.arange(lq)[:, None] + (lk - lq)


def attention_bias(mask, causal: bool, lq: int, lk: int, dtype) -> tuple:
    """(keep, additive, visible) for the paths that form the score matrix S (the NumPy reference kernel
    and the unfused Tensor ops), from a mask already made canonical:

        S' = where(keep, S + additive, finfo.min),   P = softmax(S') · visible

    keep (…, Lq, Lk) bool: the keys each query may see. additive: the finite part of an additive mask
    (0 where blocked) or None. visible (…, Lq, 1) bool: rows with at least one key; the others are zeroed.
    Blocked scores are *replaced* by the most negative finite number, not -inf, so a fully masked row
    stays free of NaN in the softmax and its backward (then ``visible`` zeroes it).
    """
    keep = causal_keep(lq, lk) if causal else np.ones((lq, lk), dtype=bool)
    additive = None
    if mask is not None and mask.dtype == np.bool_:
        keep = keep & mask
    elif mask is not None:
        blocked = np.isneginf(mask)
        keep = keep & ~blocked
        additive = np.where(blocked, 0, mask).astype(dtype, copy=False)
    return keep, additive, keep.any(axis=-1, keepdims=True)
