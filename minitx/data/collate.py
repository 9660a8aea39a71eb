"""Batching: pad a list of feature dicts into NumPy int64 arrays of shape (B, L).

Sequences are padded on the right to the longest in the batch: ``input_ids`` with the tokenizer's pad id,
``labels`` with -100 (ignored by the loss), everything else (``token_type_ids``, ``attention_mask``) with 0.
Scalar features (``next_sentence_label``, a sequence-classification ``labels``) are stacked into (B,).
"""
from collections.abc import Iterator, Sequence

import numpy as np

from minitx.data.pretraining import IGNORE_INDEX


def collate(features: Sequence[dict], pad_token_id: int = 0) -> dict:
    """[{key: 1-D array or scalar}, ...] -> {key: array (B, L) int64 or (B,)}; floats stay float (STS-B)."""
    if not features:
        raise ValueError("collate: empty batch")
    batch = {}
    for key in features[0]:
        values = [np.asarray(f[key]) for f in features]
        if values[0].ndim == 0:
            dtype = np.float32 if values[0].dtype.kind == "f" else np.int64
            batch[key] = np.array(values, dtype=dtype)
            continue
        pad = pad_token_id if key == "input_ids" else IGNORE_INDEX if key == "labels" else 0
        max_len = max(len(v) for v in values)
        out = np.full((len(values), max_len), pad, dtype=np.int64)   # (B, L)
        for row, v in enumerate(values):
            out[row, :len(v)] = v
        batch[key] = out
    return batch


def batches(dataset, batch_size: int, shuffle: bool = False, seed: int = 0, pad_token_id: int = 0,
            drop_last: bool = False) -> Iterator[dict]:
    """Iterate a map-style dataset (``len`` + ``[i]``) in collated batches; ``shuffle`` uses a NumPy
    Generator seeded with ``seed`` (pass seed + epoch for a new, reproducible order each epoch)."""
    order = np.arange(len(dataset))
    if shuffle:
        np.random.default_rng(seed).shuffle(order)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        if drop_last and len(idx) < batch_size:
            return
        yield collate([dataset[int(i)] for i in idx], pad_token_id)
