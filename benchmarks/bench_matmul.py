"""SGEMM fp32: GF/s of every rung of the minitx ladder vs np.matmul (OpenBLAS) and torch, square N×N
and transformer shapes. Writes results/matmul.json and results/matmul.png.

    python benchmarks/bench_matmul.py [--quick]
"""
import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from common import block_medians, chart, print_table, save, try_torch
from minitx import kernels

SLOW_RUNG_MAX_N = {0: 256, 1: 512, 2: 1024}  # the early rungs take minutes beyond these sizes


def contenders(threads):
    torch = try_torch(threads)
    fns = {f"v{v}": (lambda a, b, v=v: kernels.matmul(a, b, version=v)) for v in range(5)}
    fns["numpy"] = np.matmul
    if torch is not None:
        fns["torch"] = lambda a, b: torch.from_numpy(a) @ torch.from_numpy(b)
    return fns


def measure(m, k, n, fns, rounds):
    """GF/s of every contender on one (m, k) @ (k, n) product, timed in blocks (common.block_medians)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    flops = 2.0 * m * n * k
    too_slow = {name for name in fns if name[0] == "v" and int(name[1]) in SLOW_RUNG_MAX_N
                and max(m, n, k) > SLOW_RUNG_MAX_N[int(name[1])]}
    timed = {name: (lambda fn=fn: fn(a, b)) for name, fn in fns.items() if name not in too_slow}
    block = int(min(10, max(2, 2e9 / flops)))  # ~10-50 ms of back-to-back calls per block for the fast ones
    slow = {name: (1, 1) for name in ("v0", "v1", "v2")}
    seconds = block_medians(timed, rounds=rounds, block=block, max_blocks=slow)
    return {name: (None if name in too_slow else flops / seconds[name] / 1e9) for name in fns}


def main(quick=False):
    threads = kernels.get_num_threads()
    sizes = [128, 256, 512] if quick else [128, 256, 512, 1024, 2048, 4096]
    shapes = [(512, 384, 1536), (512, 1536, 384)] if not quick else [(128, 384, 1536)]
    rounds = 2 if quick else 5
    with threadpool_limits(threads):
        fns = contenders(threads)
        square = {n: measure(n, n, n, fns, rounds) for n in sizes}
        transformer = {f"{m}x{k}x{n}": measure(m, k, n, fns, rounds) for m, k, n in shapes}
    names = list(fns)
    rows = [[n] + [square[n][c] for c in names] + [square[n]["v4"] / square[n]["numpy"]] for n in sizes]
    rows += [[s] + [transformer[s][c] for c in names] + [transformer[s]["v4"] / transformer[s]["numpy"]]
             for s in transformer]
    print_table(f"SGEMM GF/s ({threads} threads; M×K×N for the transformer shapes)", ["N"] + names + ["v4/numpy"], rows)
    save("matmul", {"threads": threads, "gflops_square": square, "gflops_transformer": transformer})
    chart("matmul", f"SGEMM fp32, {threads} threads", "N (N×N @ N×N)", "GF/s", sizes,
          {c: [square[n][c] for n in sizes] for c in names})
    return square


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    main(parser.parse_args().quick)
