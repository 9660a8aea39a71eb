"""Best-of-N wall time of two hot kernels, for a quick before/after comparison of a kernel change (build,
run, change, rebuild, run again; alternate the two builds a few times on a shared machine):

    OPENBLAS_NUM_THREADS=2 python benchmarks/quick_timing.py [--isa avx2]

softmax_forward on (4096, 1024) and attention_forward on (1, 8, 1024, 64), random normal inputs; each figure is
the fastest of `--calls` calls, in the fastest of `--rounds` rounds (ms). Prints one JSON line.
"""
import argparse
import json
import time

import numpy as np

from minitx import kernels


def best_ms(fn, calls):
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main(isa, rounds, calls):
    kernels.set_isa(isa)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 1024), np.float32)
    q, k, v = (rng.standard_normal((1, 8, 1024, 64), np.float32) for _ in range(3))
    cases = {"softmax_fwd_4096x1024": lambda: kernels.softmax_forward(x),
             "attention_fwd_L1024": lambda: kernels.attention_forward(q, k, v)}
    res = {name: min(best_ms(fn, calls) for _ in range(rounds)) for name, fn in cases.items()}
    print(json.dumps({"isa": isa, "threads": kernels.get_num_threads(), "ms": res}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--isa", default=kernels.info()["isa"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    main(args.isa, args.rounds, args.calls)
