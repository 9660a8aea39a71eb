"""The homework table: each task names its pytest marker, what the student writes, and the files it marks.

A task's reference tests carry ``@pytest.mark.<marker>`` (registered in pyproject.toml), so a course runs
``pytest -m hw3_attention`` and ``minitx assignment grade`` scores each task by its tests. The files listed
are the ones whose solution blocks belong to the task (``make --tasks`` stubs only those).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minitx.assignments.markers import block_owners, language_of


@dataclass(frozen=True)
class Task:
    """One homework: ``id`` (also its pytest marker unless ``marker`` differs), a one-line description,
    the repository files holding its solution blocks, and the points it is worth."""

    id: str
    description: str
    files: tuple
    points: float = 10.0
    marker: str = ""

    @property
    def pytest_marker(self) -> str:
        return self.marker or self.id


TASKS = (
    Task("hw1_autograd", "backward of the elementwise, reduction, matmul and linear ops (chain rule, unbroadcast)",
         ("minitx/ops/elementwise.py", "minitx/ops/reduce.py", "minitx/ops/matmul.py", "minitx/ops/linear.py",
          "minitx/ops/broadcast.py")),
    Task("hw2_softmax_layernorm", "softmax and layer norm: stable forward and backward (the NumPy reference kernels)",
         ("minitx/backends/numpy_ref.py",)),
    Task("hw3_attention", "scaled dot-product attention from the formula, with padding/causal/additive masks",
         ("minitx/ops/attention.py",)),
    Task("hw4_matmul_blocking", "the cache-blocked matmul rung of the C++ ladder",
         ("csrc/matmul/v2_blocked.cpp",)),
    Task("hw5_mlm_masking", "BERT MLM masking: 15% of tokens, 80% [MASK] / 10% random / 10% unchanged",
         ("minitx/data/pretraining.py",)),
    Task("hw6_beam_search", "beam search decoding with length penalty",
         ("minitx/generation.py",)),
)


def select_tasks(ids=None, tasks=TASKS) -> tuple:
    """The tasks named in ``ids`` (all when None), in table order; an unknown id raises ValueError."""
    if ids is None:
        return tuple(tasks)
    known = {task.id: task for task in tasks}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the tasks are {sorted(known)}")
    return tuple(task for task in tasks if task.id in set(ids))


def task_functions(repo_root, task) -> list:
    """``[(file, [function, ...]), ...]``: where ``task``'s solution blocks are in ``repo_root`` (a checkout with
    the markers), named by their enclosing def (``Mul.backward``); a file without blocks lists no functions."""
    listing = []
    for relative in task.files:
        path = Path(repo_root) / relative
        language = language_of(relative)
        owners = block_owners(path.read_text(encoding="utf-8"), language, relative) \
            if path.is_file() and language else []
        listing.append((relative, list(dict.fromkeys(owners))))
    return listing
