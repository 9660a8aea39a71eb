# %% [markdown]
# # 11 · Kernels: from a naive loop to a packed SIMD matmul, and flash attention
#
# Everything a Transformer does is dominated by two kernels: **matrix multiplication** (the projections and
# the FFN) and **attention**. minitx's C++ extension (`minitx._C`, wrapped by `minitx.kernels`) implements
# both as a *ladder* of versions, each one file in `csrc/` saying what it adds over the previous one, and each
# with a NumPy twin in `minitx.reference` that the tests compare it with:
#
# | rung | file | adds |
# |------|------|------|
# | v0 | `csrc/matmul/v0_naive.cpp` | the textbook i-j-k triple loop (walks B down a column: a cache miss per step) |
# | v1 | `v1_loop_order.cpp` | i-k-j order: unit-stride inner loop, the compiler vectorises it |
# | v2 | `v2_blocked.cpp` | cache blocking: tiles of B stay in L2 while all rows of A use them |
# | v3 | `v3_packed.cpp` | packed panels + a register-tiled SIMD micro-kernel (Goto & van de Geijn, 2008) |
# | v4 | `v4_threads.cpp` | v3 on several threads (the default) |
#
# Then attention: the online softmax that lets flash attention (Dao et al., 2022) stream over keys without
# ever forming the L×L score matrix, step by step in NumPy, and the C++ kernel checked against the reference.
# Finally the benchmark charts from `benchmarks/results/` and a roofline of this machine.

# %%
import time

import numpy as np

import minitx as mx
from minitx import reference
from minitx.viz import measure_peak, plot_roofline, read_benchmark_points, save_figure
from minitx.viz.figure import new_figure
from minitx.viz.roofline import KernelPoint, default_results_dir, matmul_intensity
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py

rng = np.random.default_rng(0)
HAVE_CPP = mx.cpp_available()
if HAVE_CPP:
    from minitx import kernels
    print(kernels.info())
else:
    print("the C++ extension is not built (pip install -e .); only the NumPy reference parts will run")

# %% [markdown]
# ## 1. The matmul ladder on one small size
#
# Each rung is called as `kernels.matmul(a, b, version=k)`. We time the best of a few runs and convert to
# GFLOP/s = 2·M·N·K / seconds / 10⁹, and check every rung against the float64 reference (the tolerance grows
# with √K, since rounding errors of K float32 additions random-walk).

# %%
def best_time(fn, repeats):
    fn()                                                     # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


n = 128 if QUICK else 256
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
exact = reference.matmul(a.astype(np.float64), b.astype(np.float64))
gflops = {}
if HAVE_CPP:
    for version in kernels.info()["matmul_versions"]:
        c = kernels.matmul(a, b, version=version)
        assert np.allclose(c, exact, atol=1e-5 * np.sqrt(n) * 10), version
        seconds = best_time(lambda: kernels.matmul(a, b, version=version), 2 if version == 0 else 5)
        gflops[f"v{version}"] = 2 * n ** 3 / seconds / 1e9
gflops["np.matmul"] = 2 * n ** 3 / best_time(lambda: np.matmul(a, b), 5) / 1e9
for name, value in gflops.items():
    print(f"{name:>10}: {value:7.2f} GF/s")
if HAVE_CPP:
    assert gflops["v3"] > gflops["v0"]    # packing + SIMD beats the naive loop, on any machine

figure = new_figure(6, 3.2)
ax = figure.add_subplot()
ax.bar(list(gflops), list(gflops.values()), color=["C0"] * (len(gflops) - 1) + ["C7"])
ax.set_yscale("log")
ax.set_ylabel("GFLOP/s (log)")
ax.set_title(f"{n}×{n}×{n} float32 matmul on this machine", fontsize=10)
ax.grid(alpha=0.3, axis="y")
save_figure(figure, OUT / "11_matmul_ladder.png")

# %% [markdown]
# ## 2. The online softmax, step by step
#
# Attention's row i needs softmax over **all** keys before it can weight the values. Flash attention instead
# walks the keys in tiles and keeps, per query, three running quantities:
#
# * m: the largest score seen so far,
# * l: Σ exp(s − m) over the keys seen so far,
# * acc: Σ exp(s − m) · v over the keys seen so far (unnormalised output).
#
# When a new tile raises the max from m to m', everything accumulated so far was scaled by exp(−m) and must be
# rescaled by exp(m − m'). At the end, out = acc / l, and log-sum-exp = m + log l is all the backward needs.
# (Milakov & Gimelshein, 2018; Dao et al., 2022, Alg. 1.)

# %%
Lq, Lk, D, tile = 4, 24, 8, 8
q = rng.standard_normal((Lq, D))
k = rng.standard_normal((Lk, D))
v = rng.standard_normal((Lk, D))
scale = 1 / np.sqrt(D)

m = np.full((Lq, 1), -np.inf)
l = np.zeros((Lq, 1))
acc = np.zeros((Lq, D))
for start in range(0, Lk, tile):
    s = q @ k[start:start + tile].T * scale                     # (Lq, tile): one tile of scores
    m_new = np.maximum(m, s.max(axis=1, keepdims=True))
    correction = np.exp(m - m_new)                              # rescale the old sums to the new max
    p = np.exp(s - m_new)                                       # (Lq, tile), unnormalised
    l = l * correction + p.sum(axis=1, keepdims=True)
    acc = acc * correction + p @ v[start:start + tile]
    m = m_new
    print(f"keys {start:2d}-{start + tile - 1:2d}: running max {np.round(m[:, 0], 2)}, "
          f"smallest rescale factor exp(m_old - m_new) {correction.min():.3f}")
online = acc / l
lse = (m + np.log(l))[:, 0]

full_out, full_lse = reference.attention_forward(q[None, None], k[None, None], v[None, None])
assert np.allclose(online, full_out[0, 0]) and np.allclose(lse, full_lse[0, 0])
print("online softmax == softmax(QKᵀ/√d) V over all keys at once; memory: O(tile), not O(Lk)")

# %% [markdown]
# ## 3. The flash-attention kernel vs the reference
#
# `kernels.attention_forward(q, k, v, mask, causal)` returns (out, lse) like the reference; the backward
# recomputes the probabilities from lse. Both are compared with `minitx.reference` (with a padding mask and a
# causal mask), then timed against the reference, which materialises the L×L matrix.

# %%
B, H, L, D = 1, 4, (128 if QUICK else 512), 64
q, k, v = (rng.standard_normal((B, H, L, D), dtype=np.float32) for _ in range(3))
padding = np.ones((B, 1, 1, L), dtype=bool)
padding[..., L - 7:] = False
ref_out, ref_lse = reference.attention_forward(q, k, v, mask=padding, causal=True)
times = {"reference (NumPy, L×L)": best_time(lambda: reference.attention_forward(q, k, v, causal=True), 3)}
if HAVE_CPP:
    out, lse = kernels.attention_forward(q, k, v, mask=padding, causal=True)
    assert np.allclose(out, ref_out, atol=1e-5) and np.allclose(lse, ref_lse, atol=1e-4)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    grads = kernels.attention_backward(dout, q, k, v, out, lse, mask=padding, causal=True)
    ref_grads = reference.attention_backward(dout, q, k, v, ref_out, ref_lse, mask=padding, causal=True)
    for name, ours, theirs in zip("qkv", grads, ref_grads):
        assert np.allclose(ours, theirs, atol=1e-4), name
    times["flash (C++)"] = best_time(lambda: kernels.attention_forward(q, k, v, causal=True), 3)
    print("flash attention forward and backward match the reference")
for name, seconds in times.items():
    print(f"{name:>24}: {seconds * 1e3:7.2f} ms for (B, H, L, D) = {(B, H, L, D)}, causal")

# %% [markdown]
# ## 4. The measured benchmarks
#
# `python benchmarks/run_all.py` measures every rung over many sizes and writes JSON + PNG charts to
# `benchmarks/results/` (numbers from a shared 2-core machine: noisy, but the ordering is the lesson).

# %%
results_dir = default_results_dir()
charts = sorted(results_dir.glob("*.png")) if results_dir.is_dir() else []
print("benchmark charts:", [c.name for c in charts] or "none (run benchmarks/run_all.py)")
if charts:
    from matplotlib.image import imread

    figure = new_figure(12, 4 * ((len(charts) + 1) // 2))
    for index, chart in enumerate(charts):
        ax = figure.add_subplot((len(charts) + 1) // 2, 2, index + 1)
        ax.imshow(imread(chart))
        ax.set_title(chart.name, fontsize=9)
        ax.set_axis_off()
    save_figure(figure, OUT / "11_benchmarks.png", dpi=90)

# %% [markdown]
# ## 5. The roofline
#
# A kernel's speed is bounded by min(peak FLOP/s, arithmetic intensity × memory bandwidth) (Williams et al.,
# 2009). Arithmetic intensity = FLOPs per byte moved: a large matmul reuses each loaded number many times
# (intensity grows with n), layer norm or softmax touch each number once (≈ 1 FLOP/byte) and are
# memory-bound whatever we do. `measure_peak` times a large `np.matmul` and an array copy to draw the roofs.

# %%
peak = measure_peak(matmul_size=512 if QUICK else 1024, copy_megabytes=16 if QUICK else 64, repeats=2)
points = read_benchmark_points(results_dir) if results_dir.is_dir() else []
points += [KernelPoint(f"this run {name} {n}", matmul_intensity(n, n, n), value, group="this run (section 1)")
           for name, value in gflops.items()]
plot_roofline(points, peak=peak, path=OUT / "11_roofline.png")
print(f"peak {peak.gflops:.0f} GF/s, {peak.bandwidth_gbs:.1f} GB/s, ridge at {peak.ridge:.1f} FLOP/byte; "
      f"a {n}³ matmul has intensity {matmul_intensity(n, n, n):.1f}")
assert peak.gflops > 0 and peak.bandwidth_gbs > 0
print("figures written to", OUT)
