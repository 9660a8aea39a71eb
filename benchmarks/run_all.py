"""Run the minitx benchmarks (the kernels, then GPT-2 generation and a BERT-mini training step against HF
transformers) and write benchmarks/results/*.json + *.png.

    python benchmarks/run_all.py [--quick] [--only matmul attention fused binding generate]

``minitx bench`` calls this. Numbers are medians of repeats after a warm-up, every contender measured
side by side in one run, with NumPy's OpenBLAS and torch limited to minitx's thread count
(MINITX_NUM_THREADS, default 2). Not tests: nothing here asserts a speed.
"""
import argparse
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {"matmul": "bench_matmul", "attention": "bench_attention", "fused": "bench_fused",
              "binding": "bench_binding_overhead", "generate": "bench_generate", "distributed": "bench_distributed",
              "losses": "bench_losses", "training": "bench_training"}


def build_parser():
    parser = argparse.ArgumentParser(prog="minitx bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (well under a minute)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    for name in args.only or BENCHMARKS:
        start = time.perf_counter()
        importlib.import_module(BENCHMARKS[name]).main(quick=args.quick)
        print(f"[{name}: {time.perf_counter() - start:.1f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
