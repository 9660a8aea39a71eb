"""What a tokenizer's ``__call__`` returns, and the truncation/padding rules shared by our tokenizers.

The rules are HF ``transformers``' (``tokenization_utils_base.py`` / ``tokenization_python.py``), so a model
fed by minitx sees exactly the ids it would see from HF:

- ``padding``:    False (none) · True or "longest" (to the longest sequence of the batch) · "max_length".
- ``truncation``: False (none) · True or "longest_first" · "only_first" · "only_second".
                  ``max_length`` counts the special tokens ([CLS] ... [SEP]).
- Only ``max_length`` given (``padding=False``, ``truncation=None``) means ``truncation="longest_first"``;
  ``truncation``/``padding="max_length"`` without ``max_length`` use ``model_max_length``.
"""
import numpy as np

PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}
TRUNCATION = {None: None, False: None, "do_not_truncate": None, True: "longest_first",
              "longest_first": "longest_first", "only_first": "only_first", "only_second": "only_second"}


class BatchEncoding(dict):
    """A dict (``enc["input_ids"]``) whose keys are also attributes (``enc.input_ids``), like HF's."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key '{name}' (keys: {sorted(self)})") from None


def resolve_strategies(padding, truncation, max_length, model_max_length):
    """(padding, truncation, max_length) -> (pad mode, truncation mode, max_length), with HF's defaults."""
    if padding not in PADDING:
        raise ValueError(f"padding must be one of {list(PADDING)}, got {padding!r}")
    if truncation not in TRUNCATION:
        raise ValueError(f"truncation must be one of {list(TRUNCATION)}, got {truncation!r}")
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"  # HF backward compatibility: max_length alone truncates
    pad, trunc = PADDING[padding], TRUNCATION[truncation]
    if max_length is None and (pad == "max_length" or trunc is not None):
        max_length = model_max_length
    if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
        raise ValueError(f"max_length must be a non-negative int, got {max_length!r}")
    return pad, trunc, max_length


def truncate_pair(ids, pair_ids, num_to_remove, strategy):
    """Removes ``num_to_remove`` ids from the right of ``ids``/``pair_ids`` (HF ``truncate_sequences``).

    "longest_first" on a pair first trims the longer sequence down to the shorter one, then takes the rest
    from both, half each; when both lengths are equal the odd token comes off the second sequence (HF slow;
    the Rust fast tokenizer takes it off the first).
    """
    if num_to_remove <= 0:
        return ids, pair_ids
    if strategy == "only_first" or (strategy == "longest_first" and pair_ids is None):
        return ids[:-num_to_remove], pair_ids
    if strategy == "only_second":
        return ids, (pair_ids[:-num_to_remove] if pair_ids is not None else None)
    # longest_first with a pair
    first_remove = min(abs(len(pair_ids) - len(ids)), num_to_remove)
    rest = num_to_remove - first_remove
    if len(ids) > len(pair_ids):
        n_ids, n_pair = first_remove + rest // 2, rest - rest // 2
    else:
        n_ids, n_pair = rest // 2, first_remove + rest - rest // 2
    return (ids[:-n_ids] if n_ids else ids), (pair_ids[:-n_pair] if n_pair else pair_ids)


def pad_batch(rows, pad_mode, max_length, pad_values):
    """Right-pads every row of each key in ``rows`` (list of dicts of lists); adds ``attention_mask``.

    ``pad_values``: {key: value used to pad that key}, e.g. {"input_ids": pad_id, "token_type_ids": 0}.
    """
    lengths = [len(r["input_ids"]) for r in rows]
    if pad_mode == "longest":
        target = max(lengths, default=0)
    elif pad_mode == "max_length":
        target = max_length
    else:
        target = None
    out = []
    for row, n in zip(rows, lengths):
        row = dict(row)
        row["attention_mask"] = [1] * n
        missing = 0 if target is None else max(target - n, 0)
        if missing:
            for key, value in list(row.items()):
                row[key] = value + [0 if key == "attention_mask" else pad_values[key]] * missing
        out.append(row)
    return out


def to_batch_encoding(rows, batched, return_tensors):
    """Rows of dicts -> BatchEncoding of lists (``batched``: list of rows, else the single row);
    ``return_tensors="np"`` gives int64 arrays of shape (batch, seq) — (1, seq) for a single text, like HF."""
    keys = list(rows[0]) if rows else ["input_ids", "token_type_ids", "attention_mask"]
    if return_tensors is None:
        return BatchEncoding({k: [r[k] for r in rows] if batched else rows[0][k] for k in keys})
    if return_tensors != "np":
        raise ValueError(f"return_tensors must be None or 'np', got {return_tensors!r}")
    lengths = {len(r["input_ids"]) for r in rows}
    if len(lengths) > 1:
        raise ValueError(f"cannot stack sequences of different lengths {sorted(lengths)} into an array: "
                         "use padding=True or padding='max_length'")
    return BatchEncoding({k: np.array([r[k] for r in rows], dtype=np.int64).reshape(len(rows), -1)
                          for k in keys})
