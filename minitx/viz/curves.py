"""Training curves: the losses and the learning rate against the step, from a list of dicts or a JSONL log.

A log is one JSON object per line, e.g. ``{"step": 10, "loss": 2.31, "lr": 1e-4}``; records may carry
different keys (an ``eval_loss`` every 100 steps), and each curve uses only the records that have its key.
Raw values are drawn faint with an exponential moving average on top (TensorBoard's smoothing, with the
bias correction of Adam, Kingma & Ba, 2015, §3, so the first points are not pulled toward 0).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from minitx.viz.figure import new_figure, save_figure

LR_KEYS = ("lr", "learning_rate")


def read_log(path) -> list:
    """The records of a JSONL file (blank lines skipped); a bad line raises ValueError naming file and line."""
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON object ({error.msg})") from error
    return records


def smooth(values, weight: float) -> np.ndarray:
    """Debiased exponential moving average: m_t = w m_(t-1) + (1 - w) v_t,  s_t = m_t / (1 - w^t).

    ``weight`` in [0, 1): 0 returns the values unchanged; 0.9 averages over roughly the last 10 points.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smooth: weight must be in [0, 1), got {weight}")
    values = np.asarray(values, dtype=np.float64)
    out, mean = np.empty_like(values), 0.0
    for t, value in enumerate(values, start=1):
        mean = weight * mean + (1.0 - weight) * value
        out[t - 1] = mean / (1.0 - weight ** t)
    return out


def series(records, key: str, x: str = "step") -> tuple:
    """``(xs, ys)`` arrays for ``key`` over the records that have both ``x`` and ``key``."""
    pairs = [(r[x], r[key]) for r in records if x in r and key in r and r[key] is not None]
    if not pairs:
        return np.empty(0), np.empty(0)
    xs, ys = zip(*pairs)
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


def plot_training_curves(log, metrics=None, x: str = "step", smoothing: float = 0.0, log_scale: bool = False,
                         title: str = None, path=None):
    """Losses (top panel) and the learning rate (bottom panel, when logged) against ``x``.

    ``log``: a list of dicts or the path of a JSONL file. ``metrics``: keys to draw in the top panel
    (default: every key ending in ``loss``, the most frequent first). ``smoothing``: EMA weight for the
    bold line (0 = raw only); it applies to the dense, per-step series, while a sparse one (logged in
    under half as many records, like an evaluation loss) is drawn raw as markers alone, since averaging a
    few far-apart points would only make it lag, and a line between two evaluations would invent the
    values in between. ``title``: drawn above the top panel.
    """
    records = read_log(log) if isinstance(log, (str, Path)) else list(log)
    keys = sorted({k for r in records for k in r})
    count = {k: sum(k in r for r in records) for k in keys}
    if metrics is None:
        metrics = sorted((k for k in keys if k.endswith("loss")), key=lambda k: (-count[k], k))
    missing = [m for m in metrics if m not in keys]
    if not metrics or missing:
        raise ValueError(f"plot_training_curves: no records have {missing or 'a *loss key'}; keys are {keys}")
    densest = max(count[m] for m in metrics)
    lr_key = next((k for k in LR_KEYS if k in keys), None)

    figure = new_figure(7.0, 5.5 if lr_key else 3.5)
    axes = figure.subplots(2 if lr_key else 1, 1, sharex=True, squeeze=False)[:, 0]
    for index, metric in enumerate(metrics):
        xs, ys = series(records, metric, x)
        color = f"C{index}"
        if count[metric] < densest / 2:
            axes[0].plot(xs, ys, "o", color=color, ms=6, label=metric)
        elif smoothing > 0:
            axes[0].plot(xs, ys, color=color, alpha=0.25, lw=1)
            axes[0].plot(xs, smooth(ys, smoothing), color=color, lw=2, label=f"{metric} (EMA {smoothing:g})")
        else:
            axes[0].plot(xs, ys, color=color, lw=1.5, label=metric)
    axes[0].set_ylabel("loss")
    if title:
        axes[0].set_title(title, fontsize=10)
    axes[0].set_yscale("log" if log_scale else "linear")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    if lr_key:
        axes[1].plot(*series(records, lr_key, x), color="k", lw=1.5)
        axes[1].set_ylabel("learning rate")
        axes[1].ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        axes[1].grid(alpha=0.3)
    axes[-1].set_xlabel(x)
    if path is not None:
        save_figure(figure, path)
    return figure
