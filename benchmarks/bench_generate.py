"""GPT-2 generation and a BERT-mini training step: minitx vs HF transformers (torch eager), in one run.

* ``generate``, tokens/s, with random-init weights (no download): the HF model is built from a config and its
  weights are loaded into minitx through hf_io (``load_hf_state_dict``), so both must produce the same tokens
  (asserted). Shapes: GPT-2 small (12L/768H/12 heads/vocab 50257) and 6L/384H/6 heads/vocab 8000; greedy and
  beam 4; batch 1 and 8; prompt 16, exactly 32 new tokens (no EOS token, so nothing stops early). Both use
  their KV cache. minitx's time per token is also split into the C++ kernels, the rest of the model call
  (Python: the ops, modules, masks) and the generate loop outside the model (one extra, instrumented call).
* BERT-mini training step (4L/256H/4 heads, FFN 1024, vocab 8000, B=16, L=128, MLM + NSP, AdamW, dropout on):
  ms per step (forward, backward, optimizer step), minitx vs HF ``BertForPreTraining``.

Each contender is timed in rounds: a 0.5 s pause (a thread pool that still spins would steal a core), then one
call; best of the rounds and their median are reported. torch and OpenBLAS are held to minitx's threads.
Writes results/generate.json and results/generate.png.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 python benchmarks/bench_generate.py [--quick]
"""
import argparse
import contextlib
import functools
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from common import bar_chart, print_table, save, try_torch
from minitx import kernels
from minitx.models.bert import BertConfig, BertForPreTraining
from minitx.models.gpt2 import GPT2Config, GPT2LMHeadModel
from minitx.optim import AdamW

PAUSE_S = 0.5
PROMPT_LENGTH = 16


@dataclass
class Shape:
    name: str
    n_layer: int
    n_embd: int
    n_head: int
    vocab_size: int


FULL = dict(shapes=[Shape("gpt2-small", 12, 768, 12, 50257), Shape("6L-384H", 6, 384, 6, 8000)],
            new_tokens=32, rounds=3, bert=dict(layers=4, hidden=256, heads=4, ffn=1024, vocab=8000, batch=16,
                                                length=128, rounds=5))
QUICK = dict(shapes=[Shape("2L-64H", 2, 64, 2, 512)], new_tokens=4, rounds=1,
             bert=dict(layers=2, hidden=64, heads=2, ffn=128, vocab=512, batch=4, length=32, rounds=2))
DECODINGS = {"greedy": 1, "beam4": 4}
BATCHES = (1, 8)
# The targets: speed relative to HF (tokens/s ratio; for training, torch's time / minitx's time).
TARGETS = {("gpt2-small", "greedy", 1): 1.5}
DEFAULT_TARGET = 1.0
BERT_TARGET = 1 / 0.8


# ----------------------------------------------------------------------------- timing
def paused_rounds(fns: dict, rounds: int) -> dict:
    """Seconds per call of each fn: {name: (best, median)} over `rounds` rounds; every round gives each
    contender, in turn, a pause of PAUSE_S and one timed call."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


@contextlib.contextmanager
def time_spent_in(owner, names, totals: dict, key: str):
    """Wrap ``owner.<name>`` for each name so that the seconds spent inside add up in ``totals[key]``."""
    originals = {name: getattr(owner, name) for name in names}

    def timed(fn):
        @functools.wraps(fn)  # keeps the signature: generate inspects the model's forward
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[key] += time.perf_counter() - start
        return wrapper

    for name, fn in originals.items():
        setattr(owner, name, timed(fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(owner, name, fn)


def minitx_breakdown(generate, model, new_tokens: int) -> dict:
    """ms per token of one generate call, split into the C++ kernels, the rest of the model call and the
    generate loop outside the model."""
    kernel_names = [n for n, fn in vars(kernels).items() if getattr(fn, "__module__", None) == "minitx._C"]
    totals = {"kernels": 0.0, "model": 0.0}
    with time_spent_in(model, ["forward"], totals, "model"), time_spent_in(kernels, kernel_names, totals, "kernels"):
        start = time.perf_counter()
        generate()
        total = time.perf_counter() - start
    per_token = 1e3 / new_tokens
    return {"kernels_ms": totals["kernels"] * per_token,
            "model_python_ms": (totals["model"] - totals["kernels"]) * per_token,
            "outside_model_ms": (total - totals["model"]) * per_token, "total_ms": total * per_token}


# ----------------------------------------------------------------------------- generation
def build_gpt2_pair(torch, transformers, shape: Shape):
    """(HF model, minitx model) with the same random weights."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=shape.n_layer, n_embd=shape.n_embd, n_head=shape.n_head,
                                     vocab_size=shape.vocab_size, bos_token_id=None, eos_token_id=None)
    hf = transformers.GPT2LMHeadModel(config).eval()
    ours = GPT2LMHeadModel(GPT2Config.from_dict(config.to_dict()))
    ours.load_hf_state_dict({k: v.detach().numpy() for k, v in hf.state_dict().items()})
    return hf, ours.eval()


def generation_contenders(torch, hf, ours, ids: np.ndarray, num_beams: int, new_tokens: int) -> dict:
    options = dict(max_new_tokens=new_tokens, num_beams=num_beams, do_sample=False)
    ids_t = torch.from_numpy(ids)

    def minitx_generate():
        return ours.generate(ids, **options)

    def hf_generate():
        with torch.no_grad():
            return hf.generate(ids_t, attention_mask=torch.ones_like(ids_t), pad_token_id=0, **options).numpy()

    return {"minitx": minitx_generate, "hf": hf_generate}


def check_same_tokens(fns: dict, ids: np.ndarray, new_tokens: int, label: str) -> None:
    ours, theirs = fns["minitx"](), fns["hf"]()
    if ours.shape != (ids.shape[0], ids.shape[1] + new_tokens) or not np.array_equal(ours, theirs):
        differ = np.argwhere(ours != theirs) if ours.shape == theirs.shape else "shapes differ"
        raise AssertionError(f"{label}: minitx and HF generate different tokens "
                             f"(minitx {ours.shape}, HF {theirs.shape}; first differences at {differ[:3]})")


def bench_generation(torch, transformers, settings: dict) -> list:
    rows, new_tokens = [], settings["new_tokens"]
    for shape in settings["shapes"]:
        hf, ours = build_gpt2_pair(torch, transformers, shape)
        for decoding, num_beams in DECODINGS.items():
            for batch in BATCHES:
                label = f"{shape.name} {decoding} b{batch}"
                ids = np.random.default_rng(batch).integers(0, shape.vocab_size, (batch, PROMPT_LENGTH))
                fns = generation_contenders(torch, hf, ours, ids, num_beams, new_tokens)
                check_same_tokens(fns, ids, new_tokens, label)  # also the warm-up
                seconds = paused_rounds(fns, settings["rounds"])
                time.sleep(PAUSE_S)
                breakdown = minitx_breakdown(fns["minitx"], ours, new_tokens)
                tokens = batch * new_tokens
                row = {"shape": shape.name, "decoding": decoding, "batch": batch, "new_tokens": new_tokens,
                       "minitx_breakdown_ms_per_token": breakdown,
                       "target_speedup": TARGETS.get((shape.name, decoding, batch), DEFAULT_TARGET)}
                for name, (best, median) in seconds.items():
                    row[name] = {"best_tokens_per_s": tokens / best, "median_tokens_per_s": tokens / median}
                row["speedup_best"] = row["minitx"]["best_tokens_per_s"] / row["hf"]["best_tokens_per_s"]
                row["speedup_median"] = row["minitx"]["median_tokens_per_s"] / row["hf"]["median_tokens_per_s"]
                rows.append(row)
                print(f"  {label}: minitx {row['minitx']['best_tokens_per_s']:.1f} tok/s, "
                      f"HF {row['hf']['best_tokens_per_s']:.1f} tok/s ({row['speedup_best']:.2f}x)", flush=True)
        del hf, ours
    return rows


# ----------------------------------------------------------------------------- BERT-mini training step
def pretraining_batch(vocab: int, batch: int, length: int, seed: int = 0):
    """Random ids, all real tokens, two segments, 15% of the positions with an MLM label, random NSP labels."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (batch, length))
    types = (np.arange(length)[None, :] >= length // 2).astype(np.int64).repeat(batch, axis=0)
    labels = np.where(rng.random((batch, length)) < 0.15, ids, -100)
    return ids, np.ones_like(ids), types, labels, rng.integers(0, 2, batch)


def bench_bert_training(torch, transformers, settings: dict) -> dict:
    s = settings["bert"]
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=s["vocab"], hidden_size=s["hidden"], num_hidden_layers=s["layers"],
                                     num_attention_heads=s["heads"], intermediate_size=s["ffn"])
    hf = transformers.BertForPreTraining(config).train()
    ours = BertForPreTraining(BertConfig.from_dict(config.to_dict()))
    ours.load_hf_state_dict({k: v.detach().numpy() for k, v in hf.state_dict().items()})
    ours.train()
    arrays = pretraining_batch(s["vocab"], s["batch"], s["length"])
    tensors = [torch.from_numpy(a) for a in arrays]
    hf_optimizer, our_optimizer = torch.optim.AdamW(hf.parameters(), lr=1e-4), AdamW(ours.parameters(), lr=1e-4)

    def step(model, optimizer, batch):  # the same calls on both libraries (HF's argument names)
        ids, mask, types, labels, nsp = batch
        loss = model(ids, attention_mask=mask, token_type_ids=types, labels=labels, next_sentence_label=nsp).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    fns = {"minitx": lambda: step(ours, our_optimizer, arrays), "torch": lambda: step(hf, hf_optimizer, tensors)}
    for fn in fns.values():  # warm-up
        fn()
    seconds = paused_rounds(fns, s["rounds"])
    result = {"config": {k: v for k, v in s.items() if k != "rounds"}, "rounds": s["rounds"],
              "target_time_ratio": 1 / BERT_TARGET}
    for name, (best, median) in seconds.items():
        result[name] = {"best_ms": best * 1e3, "median_ms": median * 1e3}
    result["time_ratio_best"] = result["minitx"]["best_ms"] / result["torch"]["best_ms"]
    result["time_ratio_median"] = result["minitx"]["median_ms"] / result["torch"]["median_ms"]
    return result


# ----------------------------------------------------------------------------- report
def openblas_info() -> dict:
    """The OpenBLAS core type NumPy runs (threadpoolctl), and the environment variables that can force one."""
    blas = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
    return {"core_type": blas[0].get("architecture") if blas else None,
            "version": blas[0].get("version") if blas else None,
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}}


def report(rows: list, bert: dict, threads: int, settings: dict, blas: dict, quick: bool) -> None:
    print_table(f"generate, tokens/s (best / median of {settings['rounds']}), prompt {PROMPT_LENGTH}, "
                f"{settings['new_tokens']} new tokens, {threads} threads",
                ["shape", "decoding", "batch", "minitx best", "minitx med", "HF best", "HF med", "speedup best",
                 "speedup med", "target"],
                [[r["shape"], r["decoding"], r["batch"], r["minitx"]["best_tokens_per_s"],
                  r["minitx"]["median_tokens_per_s"], r["hf"]["best_tokens_per_s"], r["hf"]["median_tokens_per_s"],
                  r["speedup_best"], r["speedup_median"], r["target_speedup"]] for r in rows])
    print_table("minitx, ms per generated token (one instrumented call): C++ kernels / rest of the model call / "
                "generate loop outside the model",
                ["shape", "decoding", "batch", "kernels", "model python", "outside model", "total"],
                [[r["shape"], r["decoding"], r["batch"]] + [r["minitx_breakdown_ms_per_token"][k] for k in
                 ("kernels_ms", "model_python_ms", "outside_model_ms", "total_ms")] for r in rows])
    print_table(f"BERT-mini training step {bert['config']}, ms (best / median of {bert['rounds']})",
                ["minitx best", "minitx med", "torch best", "torch med", "time ratio best", "time ratio med", "target"],
                [[bert["minitx"]["best_ms"], bert["minitx"]["median_ms"], bert["torch"]["best_ms"],
                  bert["torch"]["median_ms"], bert["time_ratio_best"], bert["time_ratio_median"],
                  bert["target_time_ratio"]]])
    save("generate", {"threads": threads, "quick": quick, "openblas": blas, "prompt_length": PROMPT_LENGTH,
                      "pause_s": PAUSE_S, "generation": rows, "bert_training": bert})
    labels = [f"{r['shape']} {r['decoding']} b{r['batch']} (target {r['target_speedup']:g})" for r in rows]
    labels.append(f"BERT-mini train step (target {BERT_TARGET:g})")
    bar_chart("generate", f"minitx speed relative to HF transformers / torch eager, {threads} threads",
              "speedup (x): tokens/s ratio; for training torch time / minitx time", labels,
              {"best of rounds": [r["speedup_best"] for r in rows] + [1 / bert["time_ratio_best"]],
               "median": [r["speedup_median"] for r in rows] + [1 / bert["time_ratio_median"]]},
              target=DEFAULT_TARGET)


def main(quick=False):
    import transformers

    settings = QUICK if quick else FULL
    threads = kernels.get_num_threads()
    torch = try_torch(threads)
    blas = openblas_info()
    print(f"OpenBLAS core type {blas['core_type']} ({blas['version']}), environment {blas['env']}; "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, transformers {transformers.__version__}")
    with threadpool_limits(threads):
        rows = bench_generation(torch, transformers, settings)
        bert = bench_bert_training(torch, transformers, settings)
    report(rows, bert, threads, settings, blas, quick)
    return {"generation": rows, "bert_training": bert}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a micro model and 4 new tokens (seconds)")
    main(parser.parse_args().quick)
