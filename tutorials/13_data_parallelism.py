# %% [markdown]
# # 13 · Data parallelism: all-reduce, the ring, and the global mean
#
# One model, P processes ("ranks"). Each rank holds a full copy of the weights and computes the gradient on
# its slice of every global batch; then the ranks **all-reduce** their gradients (every rank ends with the
# sum) and all take the same optimizer step. The weights never diverge, and — if the loss is normalised
# right — they are exactly those of one process training on the whole batch (llm.c's multi-GPU training and
# torch DDP both work this way). minitx runs it over MPI (`minitx/distributed.py`):
#
#     mpiexec -n 2 minitx pretrain --corpus builtin --batch-size 16 --out run
#
# We build all-reduce by hand (the ring algorithm and its cost), see why the loss must be a *global* mean,
# and finally run two real ranks and compare their weights with one process.

# %%
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import minitx as mx
from minitx.nn import functional as F
from minitx.viz import save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. What all-reduce computes
#
# Rank r holds a vector g_r (its gradient, flattened into one buffer). After `Allreduce(SUM)` every rank holds
# Σ_r g_r. The naive way sends every buffer to rank 0 and back: rank 0 moves 2(P−1)·N numbers and is the
# bottleneck. The **ring** algorithm (Patarasuk & Yuan, 2009; what MPI and NCCL use for large buffers) cuts each
# buffer into P chunks and passes chunks around a ring in two phases:
#
# * **reduce-scatter**, P−1 steps: at step s rank r sends chunk (r − s) mod P to rank r+1, which adds it to its
#   own copy. Afterwards rank r holds the full sum of chunk (r + 1) mod P.
# * **all-gather**, P−1 steps: the finished chunks travel once more around the ring, overwriting.
#
# Each rank sends 2(P−1) chunks of N/P numbers: **2(P−1)/P · N**, nearly independent of P — that is why the
# ring scales.

# %%
def ring_all_reduce(buffers: list) -> tuple:
    """Simulate a ring all-reduce over P ranks' buffers; return (the buffers after it, numbers sent per rank)."""
    p = len(buffers)
    chunks = [np.array_split(b.astype(np.float64).copy(), p) for b in buffers]  # chunks[rank][c]
    sent = [0] * p
    for step in range(p - 1):  # reduce-scatter
        outgoing = [(r, (r - step) % p, chunks[r][(r - step) % p].copy()) for r in range(p)]
        for r, c, data in outgoing:
            chunks[(r + 1) % p][c] += data
            sent[r] += data.size
    for step in range(p - 1):  # all-gather: rank r now owns chunk (r + 1) mod P
        outgoing = [(r, (r + 1 - step) % p, chunks[r][(r + 1 - step) % p].copy()) for r in range(p)]
        for r, c, data in outgoing:
            chunks[(r + 1) % p][c] = data
            sent[r] += data.size
    return [np.concatenate(c) for c in chunks], sent


P, N = 4, 1000
grads = [rng.standard_normal(N) for _ in range(P)]
reduced, sent = ring_all_reduce(grads)
total = np.sum(grads, axis=0)
for r in range(P):
    assert np.allclose(reduced[r], total)  # every rank holds the sum
assert all(s == 2 * (P - 1) * N // P for s in sent)
print(f"P={P}, N={N}: every rank sent {sent[0]} numbers = 2(P-1)/P · N = {2 * (P - 1) / P * N:.0f}")

# %%
ranks = np.arange(2, 65)
figure = new_figure(6, 3.5)
ax = figure.add_subplot()
ax.plot(ranks, 2 * (ranks - 1) / ranks, label="ring: 2(P−1)/P")
ax.plot(ranks, 2 * (ranks - 1), label="via rank 0: 2(P−1) (at rank 0)")
ax.set_yscale("log")
ax.set_xlabel("processes P")
ax.set_ylabel("numbers sent per rank / buffer size N")
ax.set_title("all-reduce cost per rank")
ax.legend()
save_figure(figure, OUT / "13_ring_cost.png")

# %% [markdown]
# ## 2. The global mean (the classic bug)
#
# A masked-LM loss is the mean over the masked tokens of the **whole** global batch. Give rank A one masked
# token and rank B three. If each rank returns its own mean and we average the ranks (what averaging
# gradients over ranks does), rank A's lone token weighs three times as much as each of B's. The right
# normalisation divides each rank's *sum* by the global count N = 4: the ranks' shares add up to the one-process
# loss, and so do their gradients. `minitx.distributed.global_mean()` makes every "mean" loss do exactly that
# (each `cross_entropy` call all-reduces its own count, so MLM and NSP each get theirs).

# %%
logits = rng.standard_normal((4, 5)).astype(np.float32)
target = np.array([1, 2, 3, 4])
one_process = F.cross_entropy(mx.tensor(logits), target).item()
sums = [F.cross_entropy(mx.tensor(logits[s]), target[s], reduction="sum").item() for s in (slice(0, 1), slice(1, 4))]
mean_of_means = (sums[0] / 1 + sums[1] / 3) / 2
global_mean = (sums[0] + sums[1]) / 4
print(f"one process {one_process:.5f} | global mean {global_mean:.5f} | mean of per-rank means {mean_of_means:.5f}")
assert np.isclose(global_mean, one_process, rtol=1e-6)
assert not np.isclose(mean_of_means, one_process, rtol=1e-3)

# %% [markdown]
# ## 3. Two real ranks equal one process
#
# The same command, once plainly and once under `mpiexec -n 2`, with dropout off (dropout draws differ when the
# batch is split). Each rank takes 4 of the 8 examples of every step; after 4 steps the saved weights agree to
# float32 rounding. (Skipped, with a note, where no MPI is installed: `pip install "minitx[dist]"`.)

# %%
mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
workdir = OUT / "13_runs"
steps = 2 if QUICK else 6
command = [sys.executable, "-m", "minitx.cli", "pretrain", "--corpus", "builtin", "--model-type", "gpt2",
           "--max-steps", str(steps), "--batch-size", "8", "--seed", "0", "--dropout", "0", "--no-progress"]
env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE")}
env.update(OPENBLAS_NUM_THREADS="1", MINITX_NUM_THREADS="1")
if mpiexec is None:
    print("no mpiexec here: pip install 'minitx[dist]' to run this cell")
else:
    from safetensors.numpy import load_file

    shutil.rmtree(workdir, ignore_errors=True)
    subprocess.run(command + ["--out", str(workdir / "one")], check=True, env=env, capture_output=True)
    subprocess.run([mpiexec, "-n", "2"] + command + ["--out", str(workdir / "two")], check=True, env=env,
                   capture_output=True)
    one = load_file(str(workdir / "one/model/model.safetensors"))
    two = load_file(str(workdir / "two/model/model.safetensors"))
    worst = max(float(np.abs(one[k] - two[k]).max()) for k in one)
    print(f"max |Δ| over {len(one)} tensors after {steps} steps: {worst:.2e}")
    assert worst <= 1e-4
    losses = [[json.loads(line)["loss"] for line in (workdir / run / "log.jsonl").read_text().splitlines()
               if '"loss"' in line] for run in ("one", "two")]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)  # the logged loss is the global mean too
