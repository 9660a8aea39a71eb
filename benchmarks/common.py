"""Shared helpers for the benchmark scripts: timing (warm-up + median of repeats), tables, JSON, charts.

Every script measures its contenders side by side in one run, with OpenBLAS (NumPy) and torch held
to the same thread count as minitx (threadpoolctl / torch.set_num_threads), so no two pools fight.
"""
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn, repeats=5, warmup=1, min_time=0.0):
    """Median wall time of fn() in seconds over `repeats` runs after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < repeats or sum(times) < min_time:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns, repeats=5, warmup=1, max_repeats=None):
    """Median wall time (seconds) of each fn in the dict `fns`, timed round-robin: every round runs each
    contender once, so on a shared, noisy machine they all see the same load. `max_repeats` (name -> n)
    caps slow contenders (e.g. the unfused NumPy reference) at fewer rounds."""
    max_repeats = max_repeats or {}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for r in range(repeats):
        for name, fn in fns.items():
            if r < max_repeats.get(name, repeats):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def block_times(fns, rounds=3, block=5, warmup=1, settle=0.15, max_blocks=None):
    """Wall times (seconds, a list per name) of each fn in the dict `fns`, timed in blocks: every round runs,
    for each contender in turn, a pause of `settle` seconds, `warmup` untimed calls and `block` timed
    back-to-back calls. The pause lets the previous contender's thread pool go to sleep (OpenBLAS's and
    OpenMP's workers spin for ~50-100 ms after a call and would steal a core from the next contender); the
    rounds spread every contender over the same slow and fast phases of a shared machine. `max_blocks`
    (name -> (rounds, block)) caps slow contenders."""
    max_blocks = max_blocks or {}
    times = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            n_rounds, n_block = max_blocks.get(name, (rounds, block))
            if r >= n_rounds:
                continue
            time.sleep(settle)
            for _ in range(warmup):
                fn()
            for _ in range(n_block):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def block_medians(fns, rounds=3, block=5, warmup=1, settle=0.15, max_blocks=None):
    """Median wall time (seconds) of each fn in the dict `fns`, timed as in block_times."""
    times = block_times(fns, rounds, block, warmup, settle, max_blocks)
    return {name: statistics.median(t) for name, t in times.items()}


def load_average():
    """The 1-minute load average (os.getloadavg), recorded with every result: other work on the machine."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def machine_info():
    from minitx import kernels

    info = kernels.info()
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "isa": info["isa"],
            "threads": info["threads"], "compiler": info["compiler"], "load_average_1min": load_average()}


def try_torch(threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def print_table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(_fmt(v).rjust(w) for v, w in zip(r, widths)))


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return "-" if v is None else str(v)


def save(name, payload):
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine_info(), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    return path


def chart(name, title, xlabel, ylabel, xs, series, logx=True, logy=False):
    """A line chart (one line per entry of `series`: label -> list of y, None = not measured) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, ys in series.items():
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save_figure(fig, name)


def bar_chart(name, title, xlabel, labels, series, target=None, logx=True):
    """Horizontal grouped bars, one group per label (`series`: legend -> list of values, aligned with
    `labels`), with an optional dashed line at `target`. Written as results/<name>.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    height = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(8, 0.2 * len(labels) * len(series) + 1.5))
    for i, (legend, values) in enumerate(series.items()):
        ax.barh([y + i * height for y in range(len(labels))], values, height, label=legend)
    ax.set_yticks([y + height * (len(series) - 1) / 2 for y in range(len(labels))], labels, fontsize=8)
    ax.invert_yaxis()
    if target is not None:
        ax.axvline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:g}")
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(title=title, xlabel=xlabel)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=len(series) + 1)
    return _save_figure(fig, name)


def _save_figure(fig, name):
    """Writes the figure as results/<name>.png, closes it, returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")
    return path
