"""The roofline chart (Williams, Waterman & Patterson, 2009): how fast a kernel can be on this machine.

Attainable GF/s = min(peak GF/s,  arithmetic intensity × memory bandwidth), where the arithmetic intensity
is FLOPs per byte moved to or from memory. Left of the ridge point (peak / bandwidth) a kernel is
memory-bound (layer norm, softmax, GELU: ~1 FLOP/byte); right of it compute-bound (a large matmul:
2MNK / 4(MK + KN + MN) FLOP/byte in fp32). Each measured kernel is a point; its gap to the roof is what is
left to win. The peaks are measured here, briefly: a large float32 ``np.matmul`` (OpenBLAS) for FLOP/s and
a large array copy for bytes/s, so they are what NumPy reaches, not the datasheet numbers.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minitx.viz.figure import new_figure, save_figure


@dataclass(frozen=True)
class MachinePeak:
    gflops: float              # GFLOP/s, best float32 matmul
    bandwidth_gbs: float       # GB/s, best array copy (read + write bytes)

    @property
    def ridge(self) -> float:
        """The intensity (FLOP/byte) where the memory roof meets the compute roof."""
        return self.gflops / self.bandwidth_gbs


@dataclass(frozen=True)
class KernelPoint:
    name: str
    intensity: float           # FLOP/byte
    gflops: float              # measured GFLOP/s
    group: str = ""            # points of one group (a kernel at several sizes) share a color and a legend entry


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: page faults, thread start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_peak(matmul_size: int = 1024, copy_megabytes: int = 64, repeats: int = 3) -> MachinePeak:
    """Measure the compute roof (2n³ FLOPs of an n×n float32 matmul) and the memory roof (a copy of
    ``copy_megabytes``, counting the bytes read plus the bytes written), best of ``repeats``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((matmul_size, matmul_size), dtype=np.float32)
    b = rng.standard_normal((matmul_size, matmul_size), dtype=np.float32)
    c = np.empty_like(a)
    matmul_seconds = _best_seconds(lambda: np.matmul(a, b, out=c), repeats)
    source = np.ones(copy_megabytes * 2 ** 20 // 4, dtype=np.float32)
    target = np.empty_like(source)
    copy_seconds = _best_seconds(lambda: np.copyto(target, source), repeats)
    return MachinePeak(gflops=2 * matmul_size ** 3 / matmul_seconds / 1e9,
                       bandwidth_gbs=2 * source.nbytes / copy_seconds / 1e9)


def matmul_intensity(m: int, n: int, k: int, itemsize: int = 4) -> float:
    """FLOP/byte of C (m×n) = A (m×k) B (k×n) when each matrix crosses memory once: 2mnk / (size·(mk+kn+mn))."""
    return 2.0 * m * n * k / (itemsize * (m * k + k * n + m * n))


def attainable(intensity, peak: MachinePeak) -> np.ndarray:
    """The roof: min(peak GF/s, intensity × bandwidth) at each intensity."""
    return np.minimum(peak.gflops, np.asarray(intensity, dtype=np.float64) * peak.bandwidth_gbs)


# ---------------------------------------------------------------- reading benchmarks/results/*.json
# FLOPs per element of the fused row kernels (exp, erf and tanh counted as one FLOP each) and the bytes they
# move per element (fp32: read x, write y; backward also reads dy). These kernels are memory-bound, so a
# point's height under the memory roof is its fraction of the bandwidth whatever the exact FLOP count.
ROW_KERNEL_COST = {  # name: (FLOPs per element, bytes per element)
    "softmax_fwd": (5, 8), "softmax_bwd": (4, 12),
    "layer_norm_fwd": (8, 8), "layer_norm_bwd": (12, 12),
    "gelu_fwd": (8, 8), "gelu_tanh_fwd": (10, 8), "gelu_bwd": (12, 12),
}


def _size_triple(key: str):
    """'512' -> (512, 512, 512); '128x384x1536' -> (128, 384, 1536); anything else -> None."""
    parts = key.lower().split("x")
    if not all(p.strip().isdigit() for p in parts) or len(parts) not in (1, 3):
        return None
    numbers = tuple(int(p) for p in parts)
    return numbers * 3 if len(numbers) == 1 else numbers


def _matmul_points(content: dict) -> list:
    """``{"gflops_<set>": {size: {variant: GF/s | null}}}`` (benchmarks/bench_matmul.py)."""
    points = []
    for table_name, table in content.items():
        if not (table_name.startswith("gflops") and isinstance(table, dict)):
            continue
        for size, variants in table.items():
            mnk = _size_triple(size)
            if mnk is None or not isinstance(variants, dict):
                continue
            for variant, gflops in variants.items():
                if isinstance(gflops, (int, float)) and gflops > 0:
                    points.append(KernelPoint(f"matmul {variant} {size}", matmul_intensity(*mnk), float(gflops),
                                              group=f"matmul {variant}"))
    return points


def _row_kernel_points(content: dict) -> list:
    """``{"results": {"<kernel> <R>x<N>": {"GB_per_s": ...}}}`` (benchmarks/bench_fused.py)."""
    results = content.get("results")
    points = []
    for case, numbers in (results.items() if isinstance(results, dict) else ()):
        kernel = case.split()[0]
        if kernel in ROW_KERNEL_COST and isinstance(numbers, dict) and numbers.get("GB_per_s"):
            flops, nbytes = ROW_KERNEL_COST[kernel]
            points.append(KernelPoint(case, flops / nbytes, numbers["GB_per_s"] * flops / nbytes, group=kernel))
    return points


def _attention_points(content: dict) -> list:
    """``{"shape": "(B, H, L, D)", "ms": {L: {"<impl>_fwd": ms}}}`` (benchmarks/bench_attention.py), forward
    only: 4·B·H·L²·D FLOPs (QKᵀ and PV, not causal), at best Q, K, V read and O written once (16·B·H·L·D bytes)."""
    shape = [p.strip() for p in str(content.get("shape", "")).strip("()").split(",")]
    if len(shape) != 4 or not isinstance(content.get("ms"), dict):
        return []
    points = []
    for length, timings in content["ms"].items():
        try:
            b, h, seq, d = (int(length) if p == "L" else int(p) for p in shape)
        except ValueError:
            continue
        flops, nbytes = 4.0 * b * h * seq * seq * d, 16.0 * b * h * seq * d
        for impl, ms in (timings or {}).items():
            if impl.endswith("_fwd") and isinstance(ms, (int, float)) and ms > 0:
                name = f"attention {impl[:-4]}"
                points.append(KernelPoint(f"{name} L={seq}", flops / nbytes, flops / (ms * 1e-3) / 1e9, group=name))
    return points


def _record_points(content) -> list:
    """Plain records: a list of objects with ``gflops`` and ``intensity`` (or ``flops`` and ``bytes``, or
    matmul sizes ``m``, ``n``, ``k``), named by ``name``/``kernel`` (+ ``size``)."""
    records = content if isinstance(content, list) else \
        [r for value in content.values() if isinstance(value, list) for r in value]
    points = []
    for record in records:
        if not isinstance(record, dict) or "gflops" not in record:
            continue
        intensity = record.get("intensity")
        if intensity is None and record.get("bytes"):
            intensity = record.get("flops", 0) / record["bytes"]
        if intensity is None and all(key in record for key in "mnk"):
            intensity = matmul_intensity(record["m"], record["n"], record["k"])
        if intensity:
            name = str(record.get("name", record.get("kernel", "kernel")))
            size = record.get("size")
            points.append(KernelPoint(f"{name} {size}" if size is not None else name, float(intensity),
                                      float(record["gflops"]), group=name))
    return points


def default_results_dir() -> Path:
    """benchmarks/results of the checkout minitx is imported from (an editable install), else of the cwd."""
    checkout = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    return checkout if checkout.is_dir() else Path("benchmarks") / "results"


def read_benchmark_points(results_dir=None) -> list:
    """Kernel points from the ``*.json`` files in ``results_dir`` (default: ``default_results_dir()``): the
    layouts benchmarks/ writes (matmul GF/s tables, fused row kernels' GB/s, attention forward timings) and
    plain records (see ``_record_points``).
    Files and entries without usable numbers are skipped."""
    points = []
    for path in sorted(Path(results_dir or default_results_dir()).glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(content, dict):
            points += _matmul_points(content) + _row_kernel_points(content) + _attention_points(content)
        points += _record_points(content) if isinstance(content, (list, dict)) else []
    return points


def plot_roofline(points=None, peak: MachinePeak = None, results_dir=None, path=None):
    """Log-log roofline with the kernels as points. ``points``: KernelPoints (default: read from
    ``results_dir``); ``peak``: the roofs (default: ``measure_peak()``, about a second)."""
    points = read_benchmark_points(results_dir) if points is None else list(points)
    peak = measure_peak() if peak is None else peak
    low = min([0.05] + [p.intensity / 2 for p in points])
    high = max([peak.ridge * 8] + [p.intensity * 2 for p in points])
    intensity = np.geomspace(low, high, 200)

    figure = new_figure(9.0, 4.8)
    ax = figure.add_subplot()
    ax.loglog(intensity, attainable(intensity, peak), color="k", lw=2, label="roof")
    ax.axvline(peak.ridge, color="grey", ls=":", lw=1)
    ax.annotate(f"ridge {peak.ridge:.2g} FLOP/B", (peak.ridge, peak.gflops), xytext=(6, -14),
                textcoords="offset points", fontsize=8, color="grey")
    groups = list(dict.fromkeys(point.group or point.name for point in points))
    for index, group in enumerate(groups):
        members = [p for p in points if (p.group or p.name) == group]
        ax.scatter([p.intensity for p in members], [p.gflops for p in members], color=f"C{index % 10}",
                   marker="os^Dv<>"[index // 10 % 7], zorder=3, label=group)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"roofline: peak {peak.gflops:.0f} GF/s (np.matmul fp32), "
                 f"{peak.bandwidth_gbs:.1f} GB/s (copy)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if path is not None:
        save_figure(figure, path)
    return figure
