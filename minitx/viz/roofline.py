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


def _point_from_record(record: dict, source: str):
    """A KernelPoint from one benchmark record, or None when the record lacks the numbers.

    Understood keys: a name (``name``/``kernel``/``variant``, plus ``size``/``shape`` when present),
    ``gflops`` (or ``gflop_s``), and ``intensity`` (or ``arithmetic_intensity``), else ``flops`` and
    ``bytes``, else matmul sizes ``m``, ``n``, ``k``.
    """
    gflops = record.get("gflops", record.get("gflop_s"))
    intensity = record.get("intensity", record.get("arithmetic_intensity"))
    if intensity is None and "flops" in record and record.get("bytes"):
        intensity = record["flops"] / record["bytes"]
    if intensity is None and all(key in record for key in "mnk"):
        intensity = matmul_intensity(record["m"], record["n"], record["k"])
    if gflops is None or intensity is None:
        return None
    name = str(record.get("name", record.get("kernel", record.get("variant", source))))
    size = record.get("size", record.get("shape"))
    return KernelPoint(f"{name} {size}" if size is not None else name, float(intensity), float(gflops))


def read_benchmark_points(results_dir="benchmarks/results") -> list:
    """Every usable record of the ``*.json`` files in ``results_dir`` (a list of records, or an object
    whose list values are records); files or records without the numbers are skipped."""
    points = []
    for path in sorted(Path(results_dir).glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(content, list):
            lists = [content]
        elif isinstance(content, dict):
            lists = [value for value in content.values() if isinstance(value, list)]
        else:
            lists = []
        for records in lists:
            for record in records:
                point = _point_from_record(record, path.stem) if isinstance(record, dict) else None
                if point is not None:
                    points.append(point)
    return points


def plot_roofline(points=None, peak: MachinePeak = None, results_dir="benchmarks/results", path=None):
    """Log-log roofline with the kernels as points. ``points``: KernelPoints (default: read from
    ``results_dir``); ``peak``: the roofs (default: ``measure_peak()``, about a second)."""
    points = read_benchmark_points(results_dir) if points is None else list(points)
    peak = measure_peak() if peak is None else peak
    low = min([0.05] + [p.intensity / 2 for p in points])
    high = max([peak.ridge * 8] + [p.intensity * 2 for p in points])
    intensity = np.geomspace(low, high, 200)

    figure = new_figure(7.0, 4.8)
    ax = figure.add_subplot()
    ax.loglog(intensity, attainable(intensity, peak), color="k", lw=2, label="roof (measured here)")
    ax.axvline(peak.ridge, color="grey", ls=":", lw=1)
    ax.annotate(f"ridge {peak.ridge:.2g} FLOP/B", (peak.ridge, peak.gflops), xytext=(6, -14),
                textcoords="offset points", fontsize=8, color="grey")
    for index, point in enumerate(points):
        ax.scatter(point.intensity, point.gflops, color=f"C{index % 10}", zorder=3, label=point.name)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"roofline: peak {peak.gflops:.0f} GF/s (np.matmul fp32), "
                 f"{peak.bandwidth_gbs:.1f} GB/s (copy)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    if path is not None:
        save_figure(figure, path)
    return figure
