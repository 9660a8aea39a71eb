"""Data parallelism over MPI (minitx/distributed.py): inert in one process; under ``mpiexec -n 2`` the same
command writes the weights one process writes, and a failure on any rank stops every rank (no hang)."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minitx as mx
import minitx.nn.functional as F
from minitx import distributed

pytestmark = pytest.mark.train


def _mpiexec():
    """mpiexec from the venv (the ``mpich`` package puts it beside python) or the PATH, and mpi4py importable."""
    candidates = [Path(sys.executable).parent / "mpiexec", shutil.which("mpiexec")]
    found = next((str(c) for c in candidates if c and os.path.exists(c)), None)
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return found


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="no MPI here: pip install 'minitx[dist]' (mpi4py + mpich)")


def _run(args, cwd, ranks=None, timeout=240):
    """Run ``args`` (one process, or ``ranks`` under mpiexec) with one thread per process."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MINITX_NUM_THREADS="1")
    for variable in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE"):  # never inherit an outer launcher's world
        env.pop(variable, None)
    command = ([MPIEXEC, "-n", str(ranks)] if ranks else []) + args
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _weights(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


# ---------------------------------------------------------------- one process: inert
def test_one_process_is_world_of_one_and_never_imports_mpi4py():
    code = "import sys, minitx.distributed as d; print(d.world_size(), d.rank(), d.is_main(), 'mpi4py' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split() == ["1", "0", "True", "False"], out.stderr


def test_rank_slice_and_batch_split_in_one_process():
    assert distributed.per_rank_batch_size(8) == 8
    np.testing.assert_array_equal(distributed.rank_slice(np.arange(5)), np.arange(5))
    assert distributed.mean_denominator(7) == 7
    with distributed.global_mean():  # a world of one: the local count is the global one
        assert distributed.mean_denominator(7) == 7


def test_global_mean_is_not_the_mean_of_per_rank_means():
    """The classic bug, in numbers: two 'ranks' with 1 and 3 masked tokens. The mean of the per-rank means weights
    the lone token 3x; summing each rank's sum divided by the global count gives the one-process loss."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 5)).astype(np.float32)
    target = np.array([1, 2, 3, 4])
    whole = F.cross_entropy(mx.tensor(logits), target).item()
    rank_a = F.cross_entropy(mx.tensor(logits[:1]), target[:1], reduction="sum").item()
    rank_b = F.cross_entropy(mx.tensor(logits[1:]), target[1:], reduction="sum").item()
    assert np.isclose((rank_a + rank_b) / 4, whole, rtol=1e-6)
    assert not np.isclose((rank_a / 1 + rank_b / 3) / 2, whole, rtol=1e-3)


# ---------------------------------------------------------------- two ranks
def _pretrain_args(model_type, out, batch_size=8):
    return [sys.executable, "-m", "minitx.cli", "pretrain", "--corpus", "builtin", "--model-type", model_type,
            "--max-steps", "4", "--batch-size", str(batch_size), "--seed", "0", "--dropout", "0", "--out", out,
            "--no-progress"]


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["bert", "gpt2"])
def test_two_ranks_write_the_weights_of_one_process(model_type, tmp_path):
    one = _run(_pretrain_args(model_type, "one"), tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _run(_pretrain_args(model_type, "two"), tmp_path, ranks=2)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = _weights(tmp_path / "one/model/model.safetensors"), _weights(tmp_path / "two/model/model.safetensors")
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst <= 1e-4, f"max |Δ| over the weights is {worst}"
    logged = [json.loads(line)["loss"] for line in (tmp_path / "two/log.jsonl").read_text().splitlines()
              if '"loss"' in line]
    expected = [json.loads(line)["loss"] for line in (tmp_path / "one/log.jsonl").read_text().splitlines()
                if '"loss"' in line]
    np.testing.assert_allclose(logged, expected, rtol=1e-5)  # the logged loss is the global mean
    assert two.stdout.count("model_dir:") == 1  # rank 0 alone reports


@needs_mpi
def test_batch_not_divisible_by_world_size_stops_every_rank(tmp_path):
    result = _run(_pretrain_args("bert", "out", batch_size=7), tmp_path, ranks=2, timeout=120)
    assert result.returncode != 0
    assert "global batch size 7 is not divisible by the number of processes 2" in result.stderr


@needs_mpi
def test_a_rank_that_raises_aborts_the_job_instead_of_hanging(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent("""
        from minitx import distributed
        if distributed.rank() == 1:
            raise RuntimeError("rank 1 fails on purpose")
        distributed.barrier()  # rank 0 would wait here forever without the abort
        print("rank 0 passed the barrier")
    """))
    result = _run([sys.executable, str(script)], tmp_path, ranks=2, timeout=60)
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stderr
    assert "passed the barrier" not in result.stdout


@needs_mpi
@pytest.mark.slow
def test_resume_under_mpi_continues_like_an_uninterrupted_run(tmp_path):
    script = tmp_path / "resume.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import minitx as mx
        from minitx import distributed
        from minitx.models.gpt2 import GPT2Config, GPT2LMHeadModel
        from minitx.train.arguments import TrainingArguments
        from minitx.train.trainer import Trainer

        out, steps = sys.argv[1], int(sys.argv[2])
        resume = sys.argv[3] if len(sys.argv) > 3 else None
        mx.manual_seed(0)
        rng = np.random.default_rng(0)
        data = [{"input_ids": row, "labels": row} for row in rng.integers(0, 50, (24, 8))]
        config = GPT2Config(vocab_size=50, n_positions=8, n_embd=16, n_layer=1, n_head=2,
                            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = GPT2LMHeadModel(config)
        args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=2, save_steps=2,
                                 learning_rate=1e-2, seed=0, disable_tqdm=True, plot=False)
        Trainer(model, args, train_dataset=data).train(resume_from_checkpoint=resume)
        Trainer(model, args).save_model(out + "/final")
    """))
    python = [sys.executable, str(script)]
    full = _run(python + ["full", "4"], tmp_path, ranks=2)  # checkpoints at steps 2 and 4
    assert full.returncode == 0, full.stderr[-2000:]
    resumed = _run(python + ["resumed", "4", "full/checkpoint-2"], tmp_path, ranks=2)  # steps 3-4 again
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = _weights(tmp_path / "full/final/model.safetensors")
    b = _weights(tmp_path / "resumed/final/model.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
