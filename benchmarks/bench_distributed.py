"""Data-parallel throughput on this machine: one process with 2 threads against 2 MPI ranks with 1 thread each,
training the same BERT (MLM + NSP, AdamW) on the same global batch, and the time each step spends in the
gradient all-reduce (one flat Allreduce, minitx/distributed.py). Writes results/distributed.json and .png.

    python benchmarks/bench_distributed.py [--quick]

Each configuration runs as its own command (``python bench_distributed.py --worker ...``, under ``mpiexec -n 2``
for the ranks), so the two never share the cores; rank 0 reports the per-step times (best and median).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import bar_chart, print_table, save

HERE = Path(__file__).resolve()

SIZES = {  # (layers, hidden, heads, intermediate, vocab, global batch, sequence length, timed steps)
    "quick": (2, 128, 2, 512, 2000, 8, 64, 3),
    "full": (4, 256, 4, 1024, 8000, 16, 128, 6),
}


def worker(size: str, out: str) -> None:
    """Train ``steps`` BERT steps on random MLM + NSP data; rank 0 writes its step and Allreduce times to ``out``."""
    import numpy as np

    import minitx
    from minitx import distributed
    from minitx.models.bert import BertConfig, BertForPreTraining
    from minitx.optim import AdamW

    layers, hidden, heads, inter, vocab, batch, length, steps = SIZES[size]
    minitx.manual_seed(0)
    config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=inter, max_position_embeddings=length)
    model = BertForPreTraining(config)
    distributed.broadcast_parameters(model)
    optimizer = AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab, (batch, length))
    labels = np.where(rng.random((batch, length)) < 0.15, ids, -100)
    mine = distributed.rank_slice(np.arange(distributed.per_rank_batch_size(batch) * distributed.world_size()))
    step_times, reduce_times = [], []
    for _ in range(steps + 1):  # the first step warms up (allocations, thread pool)
        start = time.perf_counter()
        with distributed.global_mean():
            loss = model(ids[mine], labels=labels[mine], next_sentence_label=rng.integers(0, 2, len(mine))).loss
        loss.backward()
        reduce_start = time.perf_counter()
        distributed.all_reduce_gradients(model.parameters())
        reduce_times.append(time.perf_counter() - reduce_start)
        optimizer.step()
        optimizer.zero_grad()
        step_times.append(time.perf_counter() - start)
    if distributed.is_main():
        gradient_bytes = sum(p.data.nbytes for p in model.parameters())
        Path(out).write_text(json.dumps({"step_s": step_times[1:], "allreduce_s": reduce_times[1:],
                                         "world_size": distributed.world_size(), "batch": batch,
                                         "gradient_bytes": gradient_bytes}))


def _launch(size: str, ranks: int, threads: int):
    """Run the worker (under mpiexec when ranks > 1) with ``threads`` threads per process; its report, or None."""
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if ranks > 1 and mpiexec is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE")}
        env.update(OPENBLAS_NUM_THREADS=str(threads), MINITX_NUM_THREADS=str(threads))
        command = [sys.executable, str(HERE), "--worker", out, "--size", size]
        if ranks > 1:
            command = [mpiexec, "-n", str(ranks)] + command
        time.sleep(0.5)  # let the previous run's thread pools go to sleep
        subprocess.run(command, check=True, env=env)
        return json.loads(Path(out).read_text())


def main(quick=False):
    size = "quick" if quick else "full"
    layers, hidden, heads, inter, vocab, batch, length, steps = SIZES[size]
    runs = {"1 process x 2 threads": _launch(size, 1, 2), "2 ranks x 1 thread": _launch(size, 2, 1)}
    rows, results = [], {}
    for name, report in runs.items():
        if report is None:
            rows.append([name, None, None, None, None])
            continue
        best, median = min(report["step_s"]), statistics.median(report["step_s"])
        reduce_ms = statistics.median(report["allreduce_s"]) * 1e3
        results[name] = {"step_s_best": best, "step_s_median": median, "examples_per_s": batch / best,
                         "allreduce_ms_median": reduce_ms, "gradient_mb": report["gradient_bytes"] / 2**20}
        rows.append([name, best * 1e3, median * 1e3, batch / best, reduce_ms])
    print_table(f"BERT {layers}L/{hidden}H vocab {vocab}, global batch {batch} x {length} tokens, MLM+NSP + AdamW",
                ["configuration", "step ms (best)", "step ms (median)", "examples/s", "Allreduce ms/step"], rows)
    save("distributed", {"model": f"BERT {layers}L/{hidden}H/{heads} heads, vocab {vocab}", "batch": batch,
                         "seq_len": length, "steps": steps, "results": results})
    if results:
        bar_chart("distributed", "data parallel on this machine: examples per second (higher is better)",
                  "examples/s", list(results), {"examples/s": [r["examples_per_s"] for r in results.values()]},
                  logx=False)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small model, few steps (seconds)")
    parser.add_argument("--worker", metavar="REPORT", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="full", choices=sorted(SIZES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.size, args.worker)
    else:
        main(args.quick)
