"""GLUE tasks (Wang et al. 2018) in the TSV layout of the official download (``download_glue_data.py``).

Column layouts (tab-separated, no quoting):

=======  ==============================================================  ==================================
task     train.tsv / dev.tsv                                             test.tsv (no labels)
=======  ==============================================================  ==================================
SST-2    header ``sentence  label``                                      header ``index  sentence``
CoLA     NO header: ``source  label  original-label  sentence``          header ``index  sentence``
MRPC     header ``Quality  #1 ID  #2 ID  #1 String  #2 String``          header ``index  #1 ID  #2 ID  #1 String  #2 String``
STS-B    header ``index genre filename year old_index source1 source2    same header without ``score``
         sentence1 sentence2 score``
=======  ==============================================================  ==================================

Every loader returns a list of :class:`InputExample` ``(text_a, text_b, label)``; ``label`` is None where the
file has no label column (test sets). Columns are found by header name where there is a header.
"""
import csv
import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class InputExample:
    """One example: a sentence (or pair) and its label (int class, float score, or None for test sets)."""
    guid: str
    text_a: str
    text_b: str | None
    label: int | float | None


@dataclass(frozen=True)
class TaskInfo:
    """What a model head and the metrics need to know about a task."""
    name: str
    num_labels: int           # 1 = regression (STS-B)
    is_regression: bool
    is_pair: bool             # sentence pairs (MRPC, STS-B) or single sentences (SST-2, CoLA)
    metrics: tuple            # the keys minitx.train.metrics.glue_compute_metrics returns


GLUE_TASKS = {
    "sst2": TaskInfo("sst2", 2, False, False, ("acc",)),
    "cola": TaskInfo("cola", 2, False, False, ("mcc",)),
    "mrpc": TaskInfo("mrpc", 2, False, True, ("acc", "f1", "acc_and_f1")),
    "stsb": TaskInfo("stsb", 1, True, True, ("pearson", "spearmanr", "corr")),
}
SPLITS = ("train", "dev", "test")


def task_info(task: str) -> TaskInfo:
    key = task.lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {task!r}; known: {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[key]


class GlueFormatError(ValueError):
    """A malformed row; the message names the file and the 1-based line number."""


def read_tsv(path: str) -> list[list[str]]:
    """All rows of a tab-separated file, read as GLUE does: no quote handling (quotes are text)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GLUE file '{path}' does not exist")
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [row for row in csv.reader(f, delimiter="\t", quotechar=None) if row != []]


def _columns(header: list, wanted: dict, path: str) -> dict:
    """Map field -> column index by header name; a missing optional (None-valued) column maps to None."""
    cols = {}
    for field, (name, required) in wanted.items():
        if name in header:
            cols[field] = header.index(name)
        elif required:
            raise GlueFormatError(f"{path}:1: header has no column {name!r} (header: {header})")
        else:
            cols[field] = None
    return cols


def _label(value: str, regression: bool, path: str, line: int):
    try:
        return float(value) if regression else int(value)
    except ValueError:
        kind = "a float score" if regression else "an integer class label"
        raise GlueFormatError(f"{path}:{line}: label {value!r} is not {kind}") from None


def _check_width(row: list, width: int, path: str, line: int) -> None:
    if len(row) < width:
        raise GlueFormatError(f"{path}:{line}: expected at least {width} tab-separated columns, got "
                              f"{len(row)}: {row!r}")


def _examples_by_header(rows, path, split, text_a, text_b, label, regression):
    """Header-based layouts (SST-2, MRPC, STS-B, CoLA test): look the columns up by name."""
    if not rows:
        raise GlueFormatError(f"{path}: file is empty (expected a header line)")
    header = rows[0]
    wanted = {"a": (text_a, True), "b": (text_b, True), "label": (label, split != "test")}
    if text_b is None:
        del wanted["b"]
    cols = _columns(header, wanted, path)
    width = max(c for c in cols.values() if c is not None) + 1
    examples = []
    for line, row in enumerate(rows[1:], start=2):
        _check_width(row, width, path, line)
        examples.append(InputExample(
            guid=f"{split}-{line - 1}",
            text_a=row[cols["a"]],
            text_b=row[cols["b"]] if text_b is not None else None,
            label=_label(row[cols["label"]], regression, path, line) if cols["label"] is not None else None,
        ))
    return examples


def _cola_examples(rows, path, split):
    """CoLA train/dev have no header: source, label, original label (often empty or '*'), sentence."""
    examples = []
    for line, row in enumerate(rows, start=1):
        _check_width(row, 4, path, line)
        examples.append(InputExample(f"{split}-{line}", row[3], None, _label(row[1], False, path, line)))
    return examples


def load_glue_examples(task: str, data_dir: str, split: str = "train") -> list[InputExample]:
    """Examples of ``split`` ('train', 'dev' or 'test') read from ``data_dir/{split}.tsv``."""
    info = task_info(task)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = os.path.join(data_dir, f"{split}.tsv")
    rows = read_tsv(path)
    if info.name == "sst2":
        return _examples_by_header(rows, path, split, "sentence", None, "label", False)
    if info.name == "cola":
        if split == "test":
            return _examples_by_header(rows, path, split, "sentence", None, "label", False)
        return _cola_examples(rows, path, split)
    if info.name == "mrpc":
        return _examples_by_header(rows, path, split, "#1 String", "#2 String", "Quality", False)
    return _examples_by_header(rows, path, split, "sentence1", "sentence2", "score", True)  # stsb


def encode_examples(examples: list[InputExample], tok: Callable, max_length: int = 128,
                    task: str | None = None) -> list[dict]:
    """Tokenize each example with ``tok(text_a, text_b, truncation=True, max_length=max_length)`` (the HF
    tokenizer call; it must return input_ids, token_type_ids, attention_mask) and add ``labels``
    (int class, or float score for a regression task) when the example has one."""
    regression = task_info(task).is_regression if task is not None else None
    features = []
    for ex in examples:
        enc = tok(ex.text_a, ex.text_b, truncation=True, max_length=max_length)
        feature = {key: list(enc[key]) for key in ("input_ids", "token_type_ids", "attention_mask")}
        if ex.label is not None:
            is_float = regression if regression is not None else isinstance(ex.label, float)
            feature["labels"] = float(ex.label) if is_float else int(ex.label)
        features.append(feature)
    return features
