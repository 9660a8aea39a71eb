"""Training at real sizes: step time and peak memory growth, minitx vs torch eager (HF transformers, SDPA).

    python benchmarks/bench_training.py [--quick]

One step = forward (dropout on) + backward + AdamW update, on random ids:
* BERT pre-training (MLM on 15% of the positions + NSP): 4L/512H/8 heads/FFN 2048/vocab 30522 at B=16 L=128,
  and 6L/512H at B=32 L=256;
* GPT-2 small (12L/768H/12 heads/vocab 50257) at B=8 L=256, labels = ids;
each without and with gradient checkpointing (``model.gradient_checkpointing_enable()``, both frameworks). The
checkpointed minitx runs are the memory-saving setting as a whole: checkpointing plus MINITX_OUTPUT_CACHE_MB=0 (no
reuse cache of freed kernel outputs, which keeps up to 256 MB resident; torch's CPU allocator keeps none).

Every (model, framework, checkpointing) runs in a fresh subprocess, so one's memory does not hide another's:
the child builds the model, notes its RSS, runs warm-up steps and timed steps, and reports the median step
time and the *peak memory growth* = peak RSS (``resource.getrusage``) - RSS after building the model
(activations, gradients, optimizer state, temporaries). Both frameworks use the same number of threads
(MINITX_NUM_THREADS, default 2). After its timed steps, minitx without checkpointing runs one more step
under ``minitx.profiler`` and reports where that step's time and memory went, op by op (the slowest
PROFILE_ROWS rows are printed and saved). Not a test: nothing here asserts a speed.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import bar_chart, load_average, machine_info, print_table, save

HERE = Path(__file__).resolve().parent
THREADS = int(os.environ.get("MINITX_NUM_THREADS", "2"))

PROFILE_ROWS = 12

# The targets: minitx time / torch time, and minitx memory growth / torch's (no checkpointing, with it).
TIME_TARGET, MEMORY_TARGET, CHECKPOINTED_MEMORY_TARGET = 0.8, 1.0, 0.5

FULL = {
    "bert-4L-512H B16 L128": dict(model="bert", layers=4, hidden=512, heads=8, ffn=2048, vocab=30522,
                                  batch=16, length=128),
    "bert-6L-512H B32 L256": dict(model="bert", layers=6, hidden=512, heads=8, ffn=2048, vocab=30522,
                                  batch=32, length=256),
    "gpt2-small B8 L256": dict(model="gpt2", layers=12, hidden=768, heads=12, ffn=3072, vocab=50257,
                               batch=8, length=256),
}
QUICK = {
    "bert-2L-128H B8 L64": dict(model="bert", layers=2, hidden=128, heads=4, ffn=512, vocab=2000, batch=8, length=64),
    "gpt2-2L-128H B4 L64": dict(model="gpt2", layers=2, hidden=128, heads=4, ffn=512, vocab=2000, batch=4, length=64),
}


# ----------------------------------------------------------------------------- the child: one measurement
def rss_bytes() -> int:
    """The resident set size now (Linux /proc/self/statm: pages)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def random_batch(spec: dict) -> dict:
    """BERT: two segments, 15% of the positions with an MLM label, random NSP labels. GPT-2: labels = ids."""
    rng = np.random.default_rng(0)
    b, length = spec["batch"], spec["length"]
    ids = rng.integers(5, spec["vocab"], (b, length))
    if spec["model"] == "gpt2":
        return dict(input_ids=ids, labels=ids)
    types = (np.arange(length)[None, :] >= length // 2).astype(np.int64).repeat(b, axis=0)
    return dict(input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=types,
                labels=np.where(rng.random((b, length)) < 0.15, ids, -100), next_sentence_label=rng.integers(0, 2, b))


def hf_config(spec: dict):
    import transformers

    if spec["model"] == "bert":
        return transformers.BertConfig(vocab_size=spec["vocab"], hidden_size=spec["hidden"],
                                       num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
                                       intermediate_size=spec["ffn"], max_position_embeddings=512,
                                       attn_implementation="sdpa")
    return transformers.GPT2Config(vocab_size=spec["vocab"], n_embd=spec["hidden"], n_layer=spec["layers"],
                                   n_head=spec["heads"], n_inner=spec["ffn"], n_positions=1024,
                                   attn_implementation="sdpa")


def torch_step_fn(spec: dict, checkpointing: bool):
    import torch
    import transformers

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model_class = transformers.BertForPreTraining if spec["model"] == "bert" else transformers.GPT2LMHeadModel
    model = model_class(hf_config(spec)).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = {k: torch.from_numpy(v) for k, v in random_batch(spec).items()}

    def step():
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return step


def minitx_step_fn(spec: dict, checkpointing: bool):
    import minitx
    from minitx.models.bert import BertConfig, BertForPreTraining
    from minitx.models.gpt2 import GPT2Config, GPT2LMHeadModel
    from minitx.optim import AdamW

    minitx.manual_seed(0)
    config = hf_config(spec).to_dict()
    model_class, config_class = ((BertForPreTraining, BertConfig) if spec["model"] == "bert"
                                 else (GPT2LMHeadModel, GPT2Config))
    model = model_class(config_class.from_dict(config)).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = AdamW(model.parameters(), lr=1e-4)
    batch = random_batch(spec)

    def step():
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return step


def measure(spec: dict, framework: str, checkpointing: bool, steps: int) -> dict:
    """Build, note RSS, one warm-up step, then ``steps`` timed steps: median time and peak RSS growth
    (minitx without checkpointing: then one profiled step, see ``profile_step``)."""
    step = (minitx_step_fn if framework == "minitx" else torch_step_fn)(spec, checkpointing)
    after_load = rss_bytes()
    step()  # warm-up: allocates the gradients and the optimizer state (counted in the growth)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    result = {"step_s": statistics.median(times), "best_step_s": min(times),
              "peak_growth_mb": (peak_rss_bytes() - after_load) / 2**20, "rss_after_load_mb": after_load / 2**20}
    if framework == "minitx" and not checkpointing:
        result["profile"] = profile_step(step)
    return result


def profile_step(step) -> dict:
    """One more step under ``minitx.profiler``: the slowest PROFILE_ROWS (op, phase, backend) rows, the
    table as text, and the op time of forward and backward (the rest of the step is Python and AdamW)."""
    import minitx.profiler

    start = time.perf_counter()
    with minitx.profiler.profile() as prof:
        step()
    return {"step_s": time.perf_counter() - start, "forward_s": prof.total_seconds("forward"),
            "backward_s": prof.total_seconds("backward"), "rows": prof.rows()[:PROFILE_ROWS],
            "table": prof.table(PROFILE_ROWS)}


def run_child(spec: dict, framework: str, checkpointing: bool, steps: int) -> dict:
    """``measure`` in a fresh Python process (its RSS and peak are its own)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(THREADS), "OMP_NUM_THREADS": str(THREADS),
           "MKL_NUM_THREADS": str(THREADS), "MINITX_NUM_THREADS": str(THREADS)}
    if framework == "minitx" and checkpointing:  # the memory-saving setting (module docstring)
        env["MINITX_OUTPUT_CACHE_MB"] = "0"
    args = json.dumps({"spec": spec, "framework": framework, "checkpointing": checkpointing, "steps": steps})
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", args], env=env,
                          capture_output=True, text=True, cwd=HERE)
    if done.returncode != 0:
        raise RuntimeError(f"bench_training child ({framework}, {spec}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the parent: every config
def main(quick: bool = False) -> dict:
    configs, steps = (QUICK, 2) if quick else (FULL, 3)
    print(f"load average (1 min) before: {load_average()}; {THREADS} threads each")
    rows, results = [], []
    for name, spec in configs.items():
        torch_plain_mb = None
        for checkpointing in (False, True):
            got = {fw: run_child(spec, fw, checkpointing, steps) for fw in ("minitx", "torch")}
            torch_plain_mb = torch_plain_mb or got["torch"]["peak_growth_mb"]
            row = {"config": name, "spec": spec, "checkpointing": checkpointing, **got,
                   "time_ratio": got["minitx"]["step_s"] / got["torch"]["step_s"],
                   "memory_ratio": got["minitx"]["peak_growth_mb"] / got["torch"]["peak_growth_mb"],
                   "memory_ratio_vs_torch_plain": got["minitx"]["peak_growth_mb"] / torch_plain_mb,
                   "load_average": load_average()}
            results.append(row)
            rows.append([name, "yes" if checkpointing else "no", 1e3 * got["minitx"]["step_s"],
                         1e3 * got["torch"]["step_s"], row["time_ratio"], got["minitx"]["peak_growth_mb"],
                         got["torch"]["peak_growth_mb"], row["memory_ratio"], row["memory_ratio_vs_torch_plain"],
                         row["load_average"]])
    for row in results:
        if "profile" in row["minitx"]:
            print(f"\nminitx, {row['config']}: one profiled step "
                  f"({row['minitx']['profile']['step_s']:.2f} s with the profiler on)\n{row['minitx']['profile']['table']}")
    print_table(f"training step (median of {steps}), forward + backward + AdamW; memory = peak RSS growth",
                ["config", "ckpt", "minitx ms", "torch ms", "time ratio", "minitx MB", "torch MB", "mem ratio",
                 "mem vs torch plain", "load"], rows)
    print(f"targets: time ratio <= {TIME_TARGET}; memory ratio <= {MEMORY_TARGET} without checkpointing; "
          f"with it, minitx's growth <= {CHECKPOINTED_MEMORY_TARGET} x torch's plain growth")
    payload = {"quick": quick, "threads": THREADS, "steps": steps, "machine_detail": machine_info(),
               "targets": {"time_ratio": TIME_TARGET, "memory_ratio": MEMORY_TARGET,
                           "checkpointed_memory_vs_torch_plain": CHECKPOINTED_MEMORY_TARGET},
               "results": results}
    save("training", payload)
    labels = [f"{r['config']}{' ckpt' if r['checkpointing'] else ''}" for r in results]
    bar_chart("training", "minitx / torch eager, training step (lower is better)", "ratio", labels,
              {"step time": [r["time_ratio"] for r in results],
               "peak memory growth": [r["memory_ratio"] for r in results]}, target=TIME_TARGET)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes (a couple of minutes: 8 fresh processes)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.child:
        job = json.loads(cli.child)
        print(json.dumps(measure(job["spec"], job["framework"], job["checkpointing"], job["steps"])))
    else:
        main(quick=cli.quick)
