"""Attention forward and backward: the fused minitx kernels vs torch scaled_dot_product_attention (CPU)
and the unfused NumPy reference, shape (1, 8, L, 64), causal=False. Writes results/attention.json/png.
The contenders are timed in rounds of short blocks after a settle pause (common.block_medians), so they see
the same load on a shared machine and no contender runs while another's thread pool still spins.

    python benchmarks/bench_attention.py [--quick]
"""
import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from common import block_medians, chart, print_table, save, try_torch
from minitx import kernels, reference


# Cost of propagating NaN/inf like torch (csrc/simd_avx2.h exp256, simd::max), measured once, before and after
# that change, on a shared 2-core AMD EPYC (AVX2) VM: best-of figures (and the medians of the 5 runs). Run-to-run
# noise on that machine is ±15%, larger than the difference. Recorded in the JSON as "nan_handling_cost".
NAN_HANDLING_COST = {
    "attention_fwd_L1024": {
        "before_ms": 16.71,
        "after_ms": 16.69,
        "median_before_ms": 24.74,
        "median_after_ms": 19.82,
        "cpu": "AMD EPYC, AVX2",
        "isa": "avx2",
        "threads": 2,
        "command": ("OPENBLAS_NUM_THREADS=2 python benchmarks/quick_timing.py --isa avx2 --calls 15, run 5 times "
                    "for each of the two builds, alternating (best of 15 calls in the best of 3 rounds per run)"),
    }
}


def measure(L, torch, repeats, with_numpy):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 8, L, 64), np.float32) for _ in range(3))
    dout = rng.standard_normal(q.shape, np.float32)
    out, lse = kernels.attention_forward(q, k, v)
    fns = {"minitx_fwd": lambda: kernels.attention_forward(q, k, v),
           "minitx_bwd": lambda: kernels.attention_backward(dout, q, k, v, out, lse)}
    if with_numpy:
        o, l_ = reference.attention_forward(q, k, v)
        fns["numpy_fwd"] = lambda: reference.attention_forward(q, k, v)
        fns["numpy_bwd"] = lambda: reference.attention_backward(dout, q, k, v, o, l_)
    if torch is not None:
        tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
        sdpa = torch.nn.functional.scaled_dot_product_attention
        tdout = torch.tensor(dout)

        def torch_fwd():
            with torch.no_grad():
                sdpa(tq, tk, tv)

        def torch_fwd_bwd():
            tq.grad = tk.grad = tv.grad = None
            sdpa(tq, tk, tv).backward(tdout)

        fns["torch_fwd"], fns["torch_fwd_bwd"] = torch_fwd, torch_fwd_bwd
    slow = {"numpy_fwd": (max(1, repeats // 2), 1), "numpy_bwd": (max(1, repeats // 2), 1)}
    row = block_medians(fns, rounds=repeats, block=3, max_blocks=slow)
    if torch is not None:  # backward alone, approx.
        row["torch_bwd"] = max(row.pop("torch_fwd_bwd") - row["torch_fwd"], 0.0)
    return {k_: v_ * 1e3 for k_, v_ in row.items()}  # ms


def main(quick=False):
    threads = kernels.get_num_threads()
    lengths = [256, 512] if quick else [512, 1024, 2048, 4096]
    torch = try_torch(threads)
    with threadpool_limits(threads):
        res = {L: measure(L, torch, 3 if quick else 5, with_numpy=L <= 2048) for L in lengths}
    cols = ["minitx_fwd", "torch_fwd", "numpy_fwd", "minitx_bwd", "torch_bwd", "numpy_bwd"]
    rows = []
    for L in lengths:
        r = res[L]
        rows.append([L] + [r.get(c) for c in cols] + [
            r["torch_fwd"] / r["minitx_fwd"] if "torch_fwd" in r else None,
            r["numpy_fwd"] / r["minitx_fwd"] if "numpy_fwd" in r else None,
            r["minitx_bwd"] / r["minitx_fwd"]])
    print_table(f"attention (1, 8, L, 64), ms, {threads} threads",
                ["L"] + cols + ["torch/minitx fwd", "numpy/minitx fwd", "bwd/fwd"], rows)
    save("attention", {"threads": threads, "shape": "(1, 8, L, 64)", "ms": res, "nan_handling_cost": NAN_HANDLING_COST})
    chart("attention", f"attention (1,8,L,64), {threads} threads", "L", "ms", lengths,
          {c: [res[L].get(c) for L in lengths] for c in cols}, logy=True)
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    main(parser.parse_args().quick)
