"""Cross-entropy over a big vocabulary (forward + backward) and one AdamW step, minitx vs torch (and NumPy).

Cross-entropy: logits (N, C) float32 at BERT's (2048 tokens, 30522) and GPT-2's (1024, 50257), every target
kept (the worst case), plus BERT's masked-LM case with 15% of targets kept (the rest ignore_index). Each
contender computes the mean loss and its gradient with respect to the logits, as in a model, where the logits come
from the LM head and their gradient flows on (not into a leaf's ``.grad``: minitx's autograd copies a leaf's first
gradient, torch steals the buffer; that copy of 250 MB is not the loss's cost): minitx runs its autograd Function
``CrossEntropy`` forward and backward, torch ``F.cross_entropy`` and ``torch.autograd.grad(loss, logits)``:
    minitx C++:   the fused kernels (csrc/loss/cross_entropy.cpp): the forward reads the logits once and keeps
                  logsumexp per row; the backward recomputes softmax and writes the gradient
    minitx NumPy: the reference (numpy_ref.py), same maths in NumPy passes
    torch:        torch.nn.functional.cross_entropy (log_softmax writes (N, C) log-probabilities, then NLL)
AdamW: one step over the parameters of BERT 4L/512H (vocabulary 30522; weights decay, biases and LayerNorm do
not), gradients given: minitx with the C++ fused step, minitx with the NumPy reference, torch.optim.AdamW with
foreach=True (torch's multi-tensor path) and with fused=True.

Every contender runs on the same number of threads (minitx's pool, OpenBLAS through threadpoolctl,
torch.set_num_threads). Timing: common.block_times, a 0.5 s pause before each contender's block (the previous
one's thread pool goes to sleep), rounds interleaved; best and median are reported, with the load average.

    python benchmarks/bench_losses.py [--quick]
"""
import argparse
import statistics

import numpy as np
from threadpoolctl import threadpool_limits

import minitx as mx
from common import bar_chart, block_times, load_average, print_table, save, try_torch
from minitx import kernels, optim
from minitx.autograd import Context
from minitx.ops.nn_ops import CrossEntropy

SHAPES = [("bert", 2048, 30522, 1.0), ("gpt2", 1024, 50257, 1.0), ("bert-mlm15%", 2048, 30522, 0.15)]
QUICK_SHAPES = [("small", 256, 8192, 1.0)]


def bert_parameter_shapes(vocab=30522, hidden=512, layers=4, intermediate=2048, max_position=512):
    """(name, shape) of every parameter of BertForPreTraining (no decoder weight: it is tied to the embeddings)."""
    h, i = hidden, intermediate
    shapes = [("word_embeddings.weight", (vocab, h)), ("position_embeddings.weight", (max_position, h)),
              ("token_type_embeddings.weight", (2, h)), ("embeddings.LayerNorm.weight", (h,)),
              ("embeddings.LayerNorm.bias", (h,))]
    for layer in range(layers):
        for name, shape in [("query", (h, h)), ("key", (h, h)), ("value", (h, h)), ("attention.output.dense", (h, h)),
                            ("intermediate.dense", (i, h)), ("output.dense", (h, i))]:
            shapes += [(f"layer.{layer}.{name}.weight", shape), (f"layer.{layer}.{name}.bias", shape[:1])]
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes += [(f"layer.{layer}.{norm}.weight", (h,)), (f"layer.{layer}.{norm}.bias", (h,))]
    shapes += [("pooler.dense.weight", (h, h)), ("pooler.dense.bias", (h,)), ("cls.transform.dense.weight", (h, h)),
               ("cls.transform.dense.bias", (h,)), ("cls.transform.LayerNorm.weight", (h,)),
               ("cls.transform.LayerNorm.bias", (h,)), ("cls.decoder.bias", (vocab,)),
               ("cls.seq_relationship.weight", (2, h)), ("cls.seq_relationship.bias", (2,))]
    return shapes


def summary(times):
    return {"best_ms": min(times) * 1e3, "median_ms": statistics.median(times) * 1e3, "runs": len(times)}


def cross_entropy_cases(torch, shapes, rounds, block):
    rng = np.random.default_rng(0)
    results = {}
    for name, n, c, kept in shapes:
        logits = rng.standard_normal((n, c), dtype=np.float32) * 2
        target = rng.integers(0, c, n)
        target[rng.random(n) >= kept] = -100
        xt = torch.from_numpy(logits).requires_grad_()
        tt = torch.from_numpy(target)

        def minitx_step():
            ctx = Context()
            CrossEntropy.forward(ctx, logits, target)
            return CrossEntropy.backward(ctx, np.float32(1.0))

        def numpy_step():
            with mx.backend("numpy"):
                minitx_step()

        def torch_step():
            return torch.autograd.grad(torch.nn.functional.cross_entropy(xt, tt), xt)

        times = block_times({"minitx": minitx_step, "torch": torch_step, "numpy": numpy_step}, rounds, block,
                            settle=0.5, max_blocks={"numpy": (1, 2)})
        res = {k: summary(v) for k, v in times.items()}
        res["speedup_vs_torch_best"] = res["torch"]["best_ms"] / res["minitx"]["best_ms"]
        res["speedup_vs_torch_median"] = res["torch"]["median_ms"] / res["minitx"]["median_ms"]
        res["speedup_vs_numpy_median"] = res["numpy"]["median_ms"] / res["minitx"]["median_ms"]
        results[f"cross_entropy {name} {n}x{c}"] = {"shape": [n, c], "kept_fraction": kept, **res,
                                                    "load_average_1min": load_average()}
        del xt
    return results


def adamw_case(torch, rounds, block):
    rng = np.random.default_rng(1)
    shapes = bert_parameter_shapes()
    init = [rng.standard_normal(s, dtype=np.float32) * 0.02 for _, s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) * 1e-3 for _, s in shapes]
    n_params = sum(p.size for p in init)
    hyper = dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-8)

    def minitx_optimizer():
        params = [mx.tensor(p.copy(), requires_grad=True) for p in init]
        for p, g in zip(params, grads):
            p.grad = mx.tensor(g)
        return optim.AdamW(optim.param_groups_no_decay(zip((n for n, _ in shapes), params), 0.01), **hyper)

    def torch_optimizer(**kind):
        params = [torch.tensor(p, requires_grad=True) for p in init]
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        groups = optim.param_groups_no_decay(zip((n for n, _ in shapes), params), 0.01)  # splits by name only
        return torch.optim.AdamW(groups, **hyper, **kind)

    opt_cpp, opt_np = minitx_optimizer(), minitx_optimizer()

    def numpy_step():
        with mx.backend("numpy"):
            opt_np.step()

    contenders = {"minitx": opt_cpp.step, "numpy": numpy_step,
                  "torch_foreach": torch_optimizer(foreach=True).step, "torch_fused": torch_optimizer(fused=True).step}
    times = block_times(contenders, rounds, block, settle=0.5, max_blocks={"numpy": (rounds, 2)})
    res = {k: summary(v) for k, v in times.items()}
    return {"adamw_step bert-4L-512H": {"parameters": n_params, **res, "load_average_1min": load_average(),
                                        "speedup_vs_torch_foreach_median": res["torch_foreach"]["median_ms"]
                                        / res["minitx"]["median_ms"],
                                        "speedup_vs_numpy_median": res["numpy"]["median_ms"]
                                        / res["minitx"]["median_ms"]}}


def main(quick=False):
    threads = kernels.get_num_threads()
    torch = try_torch(threads)
    if torch is None:
        raise SystemExit("bench_losses compares with torch: pip install torch")
    rounds, block = (1, 2) if quick else (3, 3)
    load_before = load_average()
    with threadpool_limits(threads), mx.backend("cpp"):
        results = cross_entropy_cases(torch, QUICK_SHAPES if quick else SHAPES, rounds, block)
        results.update(adamw_case(torch, rounds, block))
    rows, over_torch, numpy_over_torch = [], [], []
    for name, r in results.items():
        t = r["torch" if "torch" in r else "torch_foreach"]
        over_torch.append(t["median_ms"] / r["minitx"]["median_ms"])
        numpy_over_torch.append(t["median_ms"] / r["numpy"]["median_ms"])
        rows.append([name, r["minitx"]["best_ms"], r["minitx"]["median_ms"], t["best_ms"], t["median_ms"],
                     over_torch[-1], r["numpy"]["median_ms"], r.get("torch_fused", {}).get("median_ms"),
                     r["load_average_1min"]])
    print_table(f"cross-entropy fwd+bwd and AdamW step, {threads} threads (torch: F.cross_entropy / AdamW foreach)",
                ["case", "minitx best ms", "minitx median", "torch best", "torch median", "x torch (median)",
                 "numpy median", "torch fused", "load"], rows)
    save("losses", {"threads": threads, "torch_version": torch.__version__, "load_average_before": load_before,
                    "load_average_after": load_average(), "results": results})
    labels = list(results)
    bar_chart("losses", f"cross-entropy fwd+bwd, AdamW step: speed-up over torch ({threads} threads, median)",
              "× torch", labels, {"minitx C++": over_torch, "minitx NumPy": numpy_over_torch}, target=1.5)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small cross-entropy shape, fewer runs")
    main(parser.parse_args().quick)
