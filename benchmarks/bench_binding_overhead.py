"""Per-call overhead on tiny matmuls: pybind11 (kernels.matmul) vs cffi (kernels.matmul_cffi, the C ABI
entry point of the same library) vs np.matmul. Writes results/binding_overhead.json/png.

    python benchmarks/bench_binding_overhead.py [--quick]
"""
import argparse
import time

import numpy as np

from common import chart, print_table, save
from minitx import kernels


def per_call_us(fn, calls):
    fn()
    best = float("inf")
    for _ in range(5):  # best of 5 batches: overhead is a floor, noise only adds
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def main(quick=False):
    calls = 2000 if quick else 20000
    sizes = [1, 2, 4, 8, 16]
    res, rows = {}, []
    for n in sizes:
        a = np.ones((n, n), np.float32)
        r = {"pybind11": per_call_us(lambda: kernels.matmul(a, a), calls),
             "cffi": per_call_us(lambda: kernels.matmul_cffi(a, a), calls),
             "numpy": per_call_us(lambda: np.matmul(a, a), calls)}
        res[n] = r
        rows.append([n, r["pybind11"], r["cffi"], r["numpy"]])
    print_table("per-call time, µs (tiny N×N matmul, includes the output allocation)",
                ["N", "pybind11", "cffi", "np.matmul"], rows)
    save("binding_overhead", {"calls": calls, "us_per_call": res})
    chart("binding_overhead", "per-call time of tiny matmuls", "N", "µs per call", sizes,
          {k: [res[n][k] for n in sizes] for k in ("pybind11", "cffi", "numpy")})
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls (seconds)")
    main(parser.parse_args().quick)
