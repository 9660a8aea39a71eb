"""The ``minitx`` command line. ``minitx --help`` lists the commands; each has its own ``--help``.

    minitx demo                                        the whole pipeline on the built-in corpus
    minitx pretrain --corpus FILE [--model-type bert|gpt2]
    minitx finetune --task sst2 --data DIR --model DIR
    minitx generate --model DIR --prompt TEXT [decoding options]
    minitx chat --model DIR                            an interactive loop over a causal LM
    minitx bench                                       the benchmarks (kernels, generation, training)
    minitx assignment make|grade|list                  course tooling

Bad input (a missing file, a wrong format, a vocabulary that does not fit the model) prints one line
``minitx: error: ...`` and exits with code 2, without a traceback (set MINITX_DEBUG=1 to see it).
"""
import argparse
import json
import os
import shutil
import sys
from dataclasses import fields, replace

USER_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError, KeyError,
               TypeError, json.JSONDecodeError, UnicodeDecodeError)


class CommandError(Exception):
    """A problem with the user's input, reported as one line."""


# ---------------------------------------------------------------------------- commands
def demo_command(args) -> int:
    from minitx.recipes.demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed, disable_tqdm=args.no_progress, minutes=args.minutes)
    return 0


def pretrain_command(args) -> int:
    from minitx.data.corpus import builtin_corpus, read_corpus

    documents = builtin_corpus() if args.corpus == "builtin" else read_corpus(_existing_file(args.corpus))
    if not documents:
        raise CommandError(f"corpus {args.corpus!r} has no documents (one sentence per line, blank line between documents)")
    if args.vocab_size is not None and args.vocab_size < MIN_VOCAB[args.model_type]:
        raise CommandError(f"--vocab-size must be an integer >= {MIN_VOCAB[args.model_type]} for "
                           f"--model-type {args.model_type}, got {args.vocab_size}")
    if args.model_type != "bert" and args.position_embedding_type is not None:
        raise CommandError("--position-embedding is for --model-type bert; GPT-2 has learned position vectors")
    if args.alibi_slopes is not None and args.position_embedding_type != "alibi":
        raise CommandError("--alibi-slopes needs --position-embedding alibi")
    _prepare_output(args)
    if args.model_type == "bert":
        from minitx.recipes.pretrain_bert import BertPretrainingSettings, pretrain_bert

        settings = _settings(BertPretrainingSettings(), args)
        if args.alibi_slopes is not None and len(args.alibi_slopes) != settings.num_attention_heads:
            raise CommandError(f"--alibi-slopes needs one slope per attention head ({settings.num_attention_heads}), "
                               f"got {len(args.alibi_slopes)}")
        if args.vocab:
            from minitx.tokenizers import WordPieceTokenizer

            tokenizer = WordPieceTokenizer.from_pretrained(_existing_dir(args.vocab))
        else:
            tokenizer = None
        result = pretrain_bert(documents, args.out, settings, tokenizer=tokenizer, disable_tqdm=args.no_progress,
                               resume_from_checkpoint=args.resume)
    else:
        from minitx.recipes.pretrain_gpt2 import GPT2PretrainingSettings, pretrain_gpt2

        result = pretrain_gpt2(documents, args.out, _settings(GPT2PretrainingSettings(), args),
                               disable_tqdm=args.no_progress, resume_from_checkpoint=args.resume)
    _print_result(result)
    return 0


def finetune_command(args) -> int:
    from minitx.data.glue import load_glue_examples
    from minitx.recipes.finetune import FinetuneSettings, finetune

    model_dir = _existing_dir(args.model)
    for name in ("config.json", "vocab.txt"):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise CommandError(f"--model {model_dir!r} has no {name}: expected a BERT checkpoint directory")
    data_dir = _existing_dir(args.data)
    train = load_glue_examples(args.task, data_dir, "train")
    dev = load_glue_examples(args.task, data_dir, "dev")
    settings = _settings(FinetuneSettings(), args)
    _prepare_output(args)
    _print_result(finetune(model_dir, train, dev, args.out, task=args.task, settings=settings,
                           disable_tqdm=args.no_progress, resume_from_checkpoint=args.resume))
    return 0


def generate_command(args) -> int:
    model, tokenizer = _load_causal_lm(args.model)
    ids = tokenizer.encode(args.prompt)
    if not ids:
        raise CommandError("--prompt is empty after tokenization; give at least one character")
    output = model.generate([ids], **_generate_options(args))
    for row in output:
        print(tokenizer.decode(row, skip_special_tokens=True))
    return 0


def chat_command(args) -> int:
    """Read a line, append it to the history, let the model continue, print the reply; empty line or EOF ends."""
    import numpy as np

    model, tokenizer = _load_causal_lm(args.model)
    limit = model.config.n_positions - args.max_new_tokens
    history = []
    print("minitx chat: type a message (empty line or Ctrl-D to quit)")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            break
        history.extend(tokenizer.encode(f"\nUser: {line}\nModel:"))
        history = history[-limit:]  # keep the most recent tokens the model can see
        output = model.generate(np.asarray([history]), **_generate_options(args))[0]
        reply = output[len(history):]
        print("Model:" + tokenizer.decode(reply, skip_special_tokens=True).split("\nUser:")[0], flush=True)
        history.extend(int(t) for t in reply)
    return 0


def bench_command(args) -> int:
    import runpy

    script = os.path.join(_repo_root(), "benchmarks", "run_all.py")
    if not os.path.isfile(script):
        raise CommandError(f"benchmarks not found at {script}: `minitx bench` runs from a source checkout "
                           "(pip install -e .)")
    sys.argv = [script] + args.bench_args
    runpy.run_path(script, run_name="__main__")
    return 0


# ---------------------------------------------------------------------------- helpers
def _repo_root() -> str:
    import minitx

    return os.path.dirname(os.path.dirname(os.path.abspath(minitx.__file__)))


def _existing_file(path: str) -> str:
    if os.path.isdir(path):
        raise CommandError(f"{path!r} is a directory, expected a file")
    if not os.path.isfile(path):
        raise CommandError(f"file not found: {path}")
    return path


def _existing_dir(path: str) -> str:
    if os.path.isfile(path):
        raise CommandError(f"{path!r} is a file, expected a directory")
    if not os.path.isdir(path):
        raise CommandError(f"directory not found: {path}")
    return path


# The smallest vocabulary worth asking for: GPT-2's byte-level BPE starts from 256 byte tokens + <|endoftext|>;
# WordPiece starts from the corpus's characters and 5 specials.
MIN_VOCAB = {"bert": 100, "gpt2": 257}
RUN_FILES = ("log.jsonl", "curves.png", "model")  # what a training run writes into --out (plus checkpoint-*)


def _prepare_output(args) -> None:
    """A fresh run never mixes with an old one in --out: with --resume it continues the latest checkpoint there;
    otherwise an --out that already holds a run is refused, or emptied of it with --overwrite."""
    out = args.out
    if os.path.isfile(out):
        raise CommandError(f"--out {out!r} is a file, expected a directory")
    if args.resume:
        return
    previous = [name for name in sorted(os.listdir(out)) if name in RUN_FILES or name.startswith("checkpoint-")] \
        if os.path.isdir(out) else []
    if previous and not args.overwrite:
        raise CommandError(f"--out {out!r} already holds a run ({', '.join(previous)}); pass --resume to continue "
                           "it or --overwrite to start again")
    for name in previous:
        path = os.path.join(out, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def _settings(defaults, args):
    """Override the fields of a settings dataclass with the command-line options that were given."""
    given = {f.name: getattr(args, f.name) for f in fields(defaults) if getattr(args, f.name, None) is not None}
    return replace(defaults, **given)


def _print_result(result: dict) -> None:
    from minitx import distributed

    if not distributed.is_main():  # under mpiexec every rank has the same result; rank 0 reports it
        return
    for key, value in result.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


def _load_causal_lm(model_dir: str):
    from minitx.models.gpt2 import GPT2LMHeadModel
    from minitx.tokenizers.bpe import ByteLevelBPETokenizer

    _existing_dir(model_dir)
    for name in ("config.json", "vocab.json", "merges.txt"):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise CommandError(f"--model {model_dir!r} has no {name}: expected a GPT-2 checkpoint with its "
                               "byte-level BPE files (e.g. the output of `minitx pretrain --model-type gpt2`)")
    model = GPT2LMHeadModel.from_pretrained(model_dir)
    tokenizer = ByteLevelBPETokenizer.from_pretrained(model_dir)
    if tokenizer.vocab_size != model.config.vocab_size:
        raise CommandError(f"vocabulary mismatch in {model_dir!r}: the tokenizer has {tokenizer.vocab_size} tokens, "
                           f"the model's config.json says vocab_size={model.config.vocab_size}")
    return model, tokenizer


def _generate_options(args) -> dict:
    import numpy as np

    options = {"max_new_tokens": args.max_new_tokens, "do_sample": args.do_sample, "temperature": args.temperature,
               "top_k": args.top_k, "top_p": args.top_p, "repetition_penalty": args.repetition_penalty,
               "no_repeat_ngram_size": args.no_repeat_ngram_size, "num_beams": args.num_beams,
               "length_penalty": args.length_penalty, "num_return_sequences": args.num_return_sequences,
               "early_stopping": {"true": True, "false": False, "never": "never"}[args.early_stopping]}
    if args.seed is not None:
        options["generator"] = np.random.default_rng(args.seed)
    return options


# ---------------------------------------------------------------------------- parser
def _number(kind, low=None, high=None, low_open=False, high_open=False):
    """An argparse type: a ``kind`` (int or float) in the range; otherwise argparse's one-line error names the
    option and the accepted range (exit code 2)."""
    noun = "an integer" if kind is int else "a number"
    if low is not None and high is not None:
        wanted = f"{noun} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        wanted = f"{noun} {'>' if low_open else '>='} {low}"
    else:
        wanted = noun

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high or value != value:  # (value != value: NaN)
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    return parse


def _slopes(text: str) -> tuple:
    """An argparse type: comma-separated numbers >= 0 (ALiBi slopes)."""
    try:
        slopes = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0, got {text!r}") from None
    if not all(0 <= m < float("inf") for m in slopes):
        raise argparse.ArgumentTypeError(f"slopes must be finite numbers >= 0, got {text}")
    return slopes


def _add_training_options(p) -> None:
    p.add_argument("--max-steps", dest="max_steps", type=_number(int, 1), help="optimizer steps")
    p.add_argument("--batch-size", dest="batch_size", type=_number(int, 1),
                   help="examples per optimizer step over all processes (under mpiexec -n N each rank takes 1/N)")
    p.add_argument("--dropout", type=_number(float, 0, 1, high_open=True),
                   help="hidden and attention dropout probability (0 turns it off)")
    p.add_argument("--lr", dest="learning_rate", type=_number(float, 0, low_open=True),
                   help="peak learning rate (AdamW)")
    p.add_argument("--seed", type=_number(int, 0), help="random seed")
    p.add_argument("--save-steps", dest="save_steps", type=_number(int, 1),
                   help="write a checkpoint every N steps into --out (Ctrl-C also writes one)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --out (bit-identical to an uninterrupted run)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_generate_options(p) -> None:
    p.add_argument("--model", required=True, help="GPT-2 checkpoint dir with config.json, model.safetensors, "
                                                  "vocab.json, merges.txt")
    p.add_argument("--max-new-tokens", type=_number(int, 1), default=40, help="tokens to generate (default 40)")
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy/beam search")
    p.add_argument("--temperature", type=_number(float, 0, low_open=True), default=1.0, help="softmax temperature when sampling (default 1)")
    p.add_argument("--top-k", type=_number(int, 0), default=50, help="sample among the k most likely tokens (default 50)")
    p.add_argument("--top-p", type=_number(float, 0, 1, low_open=True), default=1.0, help="nucleus sampling mass (default 1.0 = off)")
    p.add_argument("--repetition-penalty", type=_number(float, 0, low_open=True), default=1.0, help="CTRL repetition penalty (default 1.0)")
    p.add_argument("--no-repeat-ngram-size", type=_number(int, 0), default=0, help="forbid repeating n-grams of this size")
    p.add_argument("--num-beams", type=_number(int, 1), default=1, help="beam search width (default 1 = off)")
    p.add_argument("--length-penalty", type=_number(float), default=1.0, help="beam score / length**penalty (default 1)")
    p.add_argument("--early-stopping", choices=["true", "false", "never"], default="false",
                   help="beam search stopping rule (HF semantics)")
    p.add_argument("--num-return-sequences", type=_number(int, 1), default=1, help="outputs per prompt")
    p.add_argument("--seed", type=_number(int, 0), help="seed for sampling")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``minitx pretrain: error: argument --max-steps: must be ...``), exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="minitx", description="minitx: an educational transformer framework "
                                     "(NumPy autograd + C++ kernels).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="pretrain BERT, fine-tune, fill masks and generate on the built-in corpus",
                       description="End to end on Python's own documentation text: WordPiece + BERT (MLM+NSP), "
                                   "fine-tuning on real-vs-shuffled sentences, [MASK] filling, GPT-2 generation.")
    p.add_argument("--out", default="minitx-demo", help="output directory (default ./minitx-demo)")
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke test in seconds")
    p.add_argument("--minutes", type=_number(float, 0, low_open=True), default=5.0,
                   help="training budget on two cores; the step counts scale with it (default 5; "
                        "the README gives what 5 and 20 minutes reach)")
    p.add_argument("--seed", type=_number(int, 0), default=0, help="random seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=demo_command)

    p = sub.add_parser("pretrain", help="pretrain BERT (MLM+NSP) or GPT-2 on a text corpus",
                       description="Corpus format: one sentence per line, a blank line between documents "
                                   "(google-research/bert). Use --corpus builtin for Python's documentation.")
    p.add_argument("--corpus", required=True, help="corpus file, or 'builtin'")
    p.add_argument("--model-type", choices=["bert", "gpt2"], default="bert", help="which model (default bert)")
    p.add_argument("--out", default="minitx-pretrain", help="output directory (default ./minitx-pretrain)")
    p.add_argument("--vocab", help="BERT only: a directory with vocab.txt to use instead of training one")
    p.add_argument("--vocab-size", dest="vocab_size", type=_number(int, 1),
                   help=f"size of the trained vocabulary (at least {MIN_VOCAB['bert']} for BERT, "
                        f"{MIN_VOCAB['gpt2']} for GPT-2: its 256 byte tokens + <|endoftext|>)")
    p.add_argument("--position-embedding", dest="position_embedding_type", choices=["absolute", "alibi"],
                   help="BERT only: learned position vectors (absolute, BERT's; the default) or ALiBi's distance "
                        "penalty in the attention (alibi: learns faster when small; not loadable by transformers)")
    p.add_argument("--alibi-slopes", dest="alibi_slopes", type=_slopes,
                   help="with --position-embedding alibi: one slope per head, comma-separated, e.g. 2,1,0,0 "
                        "(the demo's; default: the ALiBi paper's 2^(-8h/heads), flat for short sequences)")
    _add_training_options(p)
    p.set_defaults(func=pretrain_command)

    p = sub.add_parser("finetune", help="fine-tune a BERT checkpoint on a GLUE task (TSV files)",
                       description="Fine-tune on GLUE-format train.tsv/dev.tsv (sst2, cola, mrpc, stsb). --model may "
                                   "be a minitx pretraining output (<out>/model) or an HF BERT directory such as "
                                   "all-MiniLM-L6-v2.")
    p.add_argument("--task", required=True, choices=["sst2", "cola", "mrpc", "stsb"], help="GLUE task")
    p.add_argument("--data", required=True, help="directory with train.tsv and dev.tsv")
    p.add_argument("--model", required=True, help="BERT checkpoint directory (config.json, model.safetensors, vocab.txt)")
    p.add_argument("--out", default="minitx-finetune", help="output directory (default ./minitx-finetune)")
    p.add_argument("--epochs", dest="num_train_epochs", type=_number(float, 0, low_open=True),
                   help="training epochs (default 3)")
    p.add_argument("--max-length", dest="max_length", type=_number(int, 4), help="tokens per example (default 64)")
    _add_training_options(p)
    p.set_defaults(func=finetune_command)

    p = sub.add_parser("generate", help="continue a prompt with a GPT-2 checkpoint",
                       description="Greedy, sampling or beam-search decoding with HF generate semantics.")
    p.add_argument("--prompt", required=True, help="text to continue")
    _add_generate_options(p)
    p.set_defaults(func=generate_command)

    p = sub.add_parser("chat", help="an interactive loop over a GPT-2 checkpoint, keeping the history",
                       description="Each line you type is appended to the conversation; the model continues it.")
    _add_generate_options(p)
    p.set_defaults(func=chat_command)

    p = sub.add_parser("bench", help="run the benchmarks: kernels, generate and a training step vs HF "
                                     "(benchmarks/run_all.py)", add_help=False,
                       description="Runs benchmarks/run_all.py; options after `bench` go to it (try `minitx bench --help`).")
    p.set_defaults(func=bench_command)

    try:
        from minitx.assignments.cli import add_subparser
    except ImportError:  # the course tooling is optional
        pass
    else:
        add_subparser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":
        args.bench_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except KeyboardInterrupt as interrupt:  # Ctrl-C: one line, exit 130 (128 + SIGINT), as shells expect
        saved = getattr(interrupt, "checkpoint", None)
        where = f"; checkpoint saved to {saved} (continue with --resume)" if saved else ""
        print(f"minitx: interrupted{where}", file=sys.stderr)
        return 130
    except CommandError as error:
        return _user_error(error)
    except USER_ERRORS as error:
        if os.environ.get("MINITX_DEBUG"):  # show the traceback when debugging minitx itself
            raise
        return _user_error(error.args[0] if isinstance(error, KeyError) and error.args else error)


def _user_error(message) -> int:
    """Print ``minitx: error: ...`` and return exit code 2; under mpiexec, stop every rank (a rank that fails
    alone would leave the others waiting in a collective)."""
    from minitx import distributed

    print(f"minitx: error: {message}", file=sys.stderr, flush=True)
    if distributed.launched_by_mpi():
        distributed.abort(2)
    return 2


if __name__ == "__main__":
    sys.exit(main())
