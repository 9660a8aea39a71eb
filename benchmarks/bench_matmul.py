"""SGEMM fp32: GF/s of every rung of the minitx ladder vs np.matmul (OpenBLAS) and torch, square N×N
and transformer shapes; and the skinny products of a decoder step (M <= 16 rows through a weight matrix,
csrc/matmul/skinny.cpp; 17-64 rows, a beam search's step, csrc/matmul/few_rows.cpp) in µs and GB/s of weights
read, beside the machine's measured read bandwidth.
Writes results/matmul.json and results/matmul.png.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \
        python benchmarks/bench_matmul.py [--quick] [--skinny-only]

(OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, if set, would hold OpenBLAS to another core's kernels: unset them for
a fair comparison; the core type OpenBLAS runs is printed and saved.)
"""
import argparse
import json
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from common import RESULTS, block_medians, block_times, chart, print_table, save, try_torch
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


UNCACHED_BYTES = 64 * 2**20  # weights larger than any cache here: their reading is bound by the memory bandwidth
# (M, K, N) of GPT-2 small's decoder steps: qkv and MLP projections (K = 384 for a 384-wide model), the
# tied LM head (N = 50257), and 8 or 16 sequences (batch × beams) at once.
SKINNY_SHAPES = [(1, 384, 1152), (1, 384, 8000), (1, 768, 3072), (1, 768, 50257), (8, 768, 3072), (16, 768, 3072),
                 (32, 768, 3072), (32, 768, 50257)]


def openblas_core():
    """The core type OpenBLAS picked (threadpoolctl), e.g. 'Zen' or 'Haswell'."""
    return [f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')}" for p in threadpool_info()
            if p.get("internal_api") == "openblas"]


def read_bandwidth(torch, mb=200, repeats=5):
    """GB/s of reading a 200 MB float32 array x (more than any cache), the best of `repeats`, by several readers:
    np.dot(x, x) (OpenBLAS sdot, threaded), x.sum() (one core), torch.sum (all threads). The highest is the
    machine's measured read bandwidth."""
    x = np.random.default_rng(0).standard_normal(mb * 2**20 // 4, np.float32)
    readers = {"np.dot(x, x)": lambda: np.dot(x, x), "x.sum()": lambda: x.sum()}
    if torch is not None:
        tx = torch.from_numpy(x)
        readers["torch.sum"] = lambda: tx.sum()
    times = block_times(readers, rounds=repeats, block=1, settle=0.5)
    return {name: x.nbytes / min(t) / 1e9 for name, t in times.items()}


def measure_skinny(m, k, n, rounds, torch=None):
    """µs (best and median) of minitx vs np.matmul on one decoder-step product, both forms:
    nn: B stored (K, N); nt: the weight stored (N, K), as Linear's (x @ Wᵀ), against np.matmul(a, W.T) on the
    same storage and np.matmul with a (K, N) copy. With torch, also ``torch.sum`` of the same weights ("read"),
    timed in the same blocks: the bandwidth the weights can be read at, measured side by side with the products
    (a shared host's bandwidth moves by half between runs minutes apart)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    w = np.ascontiguousarray(b.T)
    fns = {"nn minitx": lambda: kernels.matmul(a, b), "nn numpy": lambda: np.matmul(a, b),
           "nt minitx": lambda: kernels.matmul_nt(a, w), "nt numpy": lambda: np.matmul(a, w.T)}
    if torch is not None:
        tw = torch.from_numpy(w)
        fns["read"] = lambda: tw.sum()
    block = int(min(50, max(3, 2e-3 / (k * n * 4 / 20e9))))  # ~2 ms of back-to-back calls per block
    times = block_times(fns, rounds=rounds, block=block, settle=0.5)
    result = {name: {"best_us": min(t) * 1e6, "median_us": statistics.median(t) * 1e6} for name, t in times.items()}
    if "read" in fns and w.nbytes > UNCACHED_BYTES:
        result["paired_read_share"] = {name: paired_share(fns[name], fns["read"])
                                       for name in ("nt minitx", "nn minitx", "nt numpy")}
    return result


def paired_share(fn, reader, pairs=40):
    """Median over `pairs` back-to-back pairs (one call of fn, then one of reader) of reader's time / fn's: fn's
    speed as a share of the reader's over the same bytes, each pair close enough in time to see the same
    bandwidth."""
    def seconds(f):
        start = time.perf_counter()
        f()
        return time.perf_counter() - start
    return statistics.median(seconds(reader) / seconds(fn) for _ in range(pairs))


def skinny(quick, threads):
    torch = try_torch(threads)
    rounds = 3 if quick else 7
    with threadpool_limits(threads):
        core = openblas_core()
        bandwidth = read_bandwidth(torch)
        results = {f"{m}x{k}x{n}": measure_skinny(m, k, n, rounds, torch) for m, k, n in SKINNY_SHAPES}
    peak = max(bandwidth.values())
    print(f"\nOpenBLAS: {core}; read bandwidth (200 MB): "
          + ", ".join(f"{name} {gbs:.1f} GB/s" for name, gbs in bandwidth.items()))
    rows = []
    for (m, k, n), (shape, r) in zip(SKINNY_SHAPES, results.items()):
        for form in ("nn", "nt"):
            mine, blas = r[f"{form} minitx"], r[f"{form} numpy"]
            gbs = k * n * 4 / mine["best_us"] / 1e3
            read = r["read"]["median_us"] / mine["median_us"] if "read" in r else float("nan")
            rows.append([shape, form, mine["best_us"], mine["median_us"], blas["best_us"], blas["median_us"],
                         blas["best_us"] / mine["best_us"], gbs, gbs / peak, read])
    for shape, r in results.items():
        if "paired_read_share" in r:
            print(f"{shape}: speed as a share of torch.sum's over the same weights, median of 40 back-to-back pairs: "
                  + ", ".join(f"{name} {share:.2f}" for name, share in r["paired_read_share"].items()))
    print_table(f"Skinny products M×K×N, µs (best / median of {rounds} blocks), {threads} threads; GB/s of weights "
                f"read by minitx (best); /bandwidth: of the 200 MB reading above; /read: speed as a share of "
                f"torch.sum's over the same weights in the same rounds (medians: the host's bandwidth comes in "
                f"bursts); nt numpy = np.matmul(a, W.T) on the same (N, K) storage",
                ["shape", "form", "minitx", "med", "numpy", "med", "numpy/minitx", "GB/s", "/bandwidth", "/read"],
                rows)
    return {"openblas": core, "read_bandwidth_gbs": bandwidth, "us": results}


def main(quick=False, skinny_only=False):
    threads = kernels.get_num_threads()
    if skinny_only:  # keep the rest of the saved results
        path = RESULTS / "matmul.json"
        payload = json.loads(path.read_text()) if path.exists() else {"threads": threads}
        payload.pop("machine", None)
        payload["skinny"] = skinny(quick, threads)
        save("matmul", payload)
        return payload
    skinny_results = skinny(quick, threads)
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
    save("matmul", {"threads": threads, "gflops_square": square, "gflops_transformer": transformer,
                    "skinny": skinny_results})
    chart("matmul", f"SGEMM fp32, {threads} threads", "N (N×N @ N×N)", "GF/s", sizes,
          {c: [square[n][c] for n in sizes] for c in names})
    return square


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    parser.add_argument("--skinny-only", action="store_true", help="only the skinny (decoder-step) products")
    args = parser.parse_args()
    main(args.quick, args.skinny_only)
