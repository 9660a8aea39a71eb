"""Fused row kernels (softmax, layer norm, GELU; forward and backward) vs the NumPy reference:
time, speed-up and effective memory bandwidth (bytes read + written / time). Writes results/fused.json/png.

The bandwidth yardstick is ``x.copy()`` measured in the same run: one read and one write into a freshly
allocated array, exactly the memory traffic (and the page faults of a new output) that a fused
forward kernel cannot avoid. "% copy" = the kernel's GB/s over the copy's GB/s, the copy being timed in
the same round-robin rounds as the kernel and NumPy (interleaved_medians), so all see the same load.

minitx is timed twice: as it runs by default (large outputs reuse blocks of the kernels' output cache,
csrc/output_cache.h) and with the cache off ("cold": every output is fresh memory the OS zero-fills on first
touch, as NumPy's temporaries are). The copy yardstick always allocates fresh memory.

    python benchmarks/bench_fused.py [--quick]
"""
import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from common import bar_chart, interleaved_medians, median_time, print_table, save
from minitx import kernels, reference


# Cost of propagating NaN/inf like torch (csrc/simd_avx2.h exp256, simd::max), measured once, before and after
# that change, on a shared 2-core AMD EPYC (AVX2) VM: best-of figures (and the medians of the 5 runs). Run-to-run
# noise on that machine is ±15%, larger than the difference. Recorded in the JSON as "nan_handling_cost".
NAN_HANDLING_COST = {
    "softmax_fwd_4096x1024": {
        "before_ms": 1.94,
        "after_ms": 1.83,
        "median_before_ms": 2.19,
        "median_after_ms": 2.08,
        "cpu": "AMD EPYC, AVX2",
        "isa": "avx2",
        "threads": 2,
        "command": ("OPENBLAS_NUM_THREADS=2 python benchmarks/quick_timing.py --isa avx2 --calls 15, run 5 times "
                    "for each of the two builds, alternating (best of 15 calls in the best of 3 rounds per run)"),
    }
}


def cases(rows, n):
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((rows, n), np.float32), rng.standard_normal((rows, n), np.float32)
    w, b = np.ones(n, np.float32), np.zeros(n, np.float32)
    y = kernels.softmax_forward(x)
    _, mean, rstd = kernels.layer_norm_forward(x, w, b)
    nbytes = x.nbytes
    return {  # name: (minitx call, numpy call, bytes moved)
        "softmax_fwd": (lambda: kernels.softmax_forward(x), lambda: reference.softmax_forward(x), 2 * nbytes),
        "softmax_bwd": (lambda: kernels.softmax_backward(dy, y), lambda: reference.softmax_backward(dy, y), 3 * nbytes),
        "layer_norm_fwd": (lambda: kernels.layer_norm_forward(x, w, b), lambda: reference.layer_norm_forward(x, w, b),
                           2 * nbytes),
        "layer_norm_bwd": (lambda: kernels.layer_norm_backward(dy, x, w, mean, rstd),
                           lambda: reference.layer_norm_backward(dy, x, w, mean, rstd), 3 * nbytes),
        "gelu_fwd": (lambda: kernels.gelu_forward(x), lambda: reference.gelu_forward(x), 2 * nbytes),
        "gelu_tanh_fwd": (lambda: kernels.gelu_forward(x, "tanh"), lambda: reference.gelu_forward(x, "tanh"),
                          2 * nbytes),
        "gelu_bwd": (lambda: kernels.gelu_backward(dy, x), lambda: reference.gelu_backward(dy, x), 3 * nbytes),
    }


def timed_without_output_cache(fn, rounds):
    """Median time of fn() with the kernels' output cache off (every output in fresh memory)."""
    limit = kernels.output_cache_info()["limit_bytes"]
    kernels.set_output_cache_limit(0)
    try:
        return median_time(fn, rounds)
    finally:
        kernels.set_output_cache_limit(limit)


def main(quick=False):
    threads = kernels.get_num_threads()
    shapes = [(256, 768)] if quick else [(512, 768), (4096, 1024), (8192, 4096)]
    res, copy_gbs, rows = {}, {}, []
    with threadpool_limits(threads):
        for r, n in shapes:
            x = np.ones((r, n), np.float32)
            copy_gbs[f"{r}x{n}"] = bw = 2 * x.nbytes / median_time(x.copy, 5, min_time=0.05) / 1e9
            rows.append([f"x.copy() {r}x{n}", None, None, None, None, None, bw, 100.0])
            for name, (ours, ref, nbytes) in cases(r, n).items():
                rounds = 21 if r * n < 1 << 20 else 7  # small cases are fast and noisier: more rounds
                t = interleaved_medians({"ours": ours, "ref": ref, "copy": x.copy}, rounds, max_repeats={"ref": 3})
                t_ours, t_ref = t["ours"], t["ref"]
                t_cold = timed_without_output_cache(ours, rounds)
                bw = 2 * x.nbytes / t["copy"] / 1e9  # the copy timed in the same rounds, as the yardstick
                gbs = nbytes / t_ours / 1e9
                res[f"{name} {r}x{n}"] = {"minitx_ms": t_ours * 1e3, "minitx_cold_ms": t_cold * 1e3,
                                          "numpy_ms": t_ref * 1e3, "speedup": t_ref / t_ours,
                                          "speedup_cold": t_ref / t_cold, "GB_per_s": gbs, "copy_GB_per_s": bw,
                                          "pct_of_copy": 100 * gbs / bw}
                rows.append([f"{name} {r}x{n}", t_ours * 1e3, t_cold * 1e3, t_ref * 1e3, t_ref / t_ours,
                             t_ref / t_cold, gbs, 100 * gbs / bw])
    print_table(f"fused kernels, {threads} threads",
                ["kernel", "minitx ms", "cold ms", "numpy ms", "speed-up", "cold speed-up", "GB/s", "% copy"], rows)
    save("fused", {"threads": threads, "copy_GB_per_s": copy_gbs, "results": res,
                   "nan_handling_cost": NAN_HANDLING_COST})
    labels = list(res)
    bar_chart("fused", f"fused kernels: speed-up over the NumPy reference ({threads} threads)", "× NumPy", labels,
              {"minitx": [res[k]["speedup"] for k in labels],
               "minitx, output cache off": [res[k]["speedup_cold"] for k in labels]}, target=10)
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    main(parser.parse_args().quick)
