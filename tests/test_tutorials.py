"""Every tutorial runs as a script in quick mode, exits 0 and writes its figures.

Each tutorial is a percent-cell script with its own assertions, so running it is the test. Run time is printed
(``pytest -m tutorials -s``), never asserted.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.tutorials

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
BENCHMARK_CHARTS = sorted((TUTORIALS.parent / "benchmarks" / "results").glob("*.png"))

EXPECTED_FIGURES = {
    "01_tensors_and_autograd.py": ["01_graph.png", "01_softplus.png"],
    "02_broadcasting_gradients.py": ["02_unbroadcast.png"],
    "03_attention.py": ["03_scaling.png", "03_attention_heads.png"],
    "04_positional_encodings.py": ["04_sinusoidal.png", "04_learned.png"],
    "05_layernorm_and_residuals.py": ["05_pre_vs_post_ln.png"],
    "06_seq2seq_transformer.py": ["06_loss.png", "06_cross_attention.png"],
    "07_tokenizers.py": ["07_vocab_size.png"],
    "08_bert_pretraining.py": ["08_loss_curves.png", "08_eval_losses.png"],
    "09_finetuning.py": ["09_finetune_curves.png", "09_similarity.png"],
    "10_gpt2_generation.py": ["10_next_token.png", "10_sequence_logprob.png"],
    "11_kernels.py": ["11_matmul_ladder.png", "11_roofline.png"] + (["11_benchmarks.png"] if BENCHMARK_CHARTS else []),
    "12_losses.py": ["12_ce_vs_mse.png"],
    "13_data_parallelism.py": ["13_ring_cost.png"],
}


# The homework a tutorial runs through (docs/assignments.md): in a student copy it fails until those are done.
# Found by running each tutorial in a full student copy; the lists are generous (a tutorial that trains needs hw1).
HOMEWORK = {
    "01_tensors_and_autograd.py": ["hw1_autograd", "hw2_softmax_layernorm"],
    "02_broadcasting_gradients.py": ["hw1_autograd", "hw2_softmax_layernorm"],
    "03_attention.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention"],
    "04_positional_encodings.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention"],
    "05_layernorm_and_residuals.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention"],
    "06_seq2seq_transformer.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention"],
    "08_bert_pretraining.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention", "hw5_mlm_masking"],
    "09_finetuning.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention", "hw5_mlm_masking"],
    "10_gpt2_generation.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention", "hw6_beam_search"],
    "11_kernels.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw4_matmul_blocking"],
    "12_losses.py": ["hw1_autograd", "hw2_softmax_layernorm"],
    "13_data_parallelism.py": ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention"],
}


def test_every_tutorial_is_listed_here_and_in_the_readme():
    on_disk = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))
    assert on_disk == sorted(EXPECTED_FIGURES)
    readme = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    table = readme[readme.find("| 01 |"):]
    positions = [table.find(f"[{name}]") for name in on_disk]
    assert all(p >= 0 for p in positions), "the table in tutorials/README.md must link every tutorial"
    assert positions == sorted(positions), "tutorials/README.md must list the tutorials in order"


@pytest.mark.parametrize("name", [pytest.param(name, marks=[getattr(pytest.mark, hw) for hw in HOMEWORK.get(name, [])])
                                  for name in sorted(EXPECTED_FIGURES)])
def test_tutorial_runs_in_quick_mode(name, tmp_path):
    env = {**os.environ, "MINITX_TUTORIAL_QUICK": "1", "MINITX_TUTORIAL_OUT": str(tmp_path), "MPLBACKEND": "Agg",
           "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(TUTORIALS / name)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    seconds = time.perf_counter() - start
    print(f"\n{name}: {seconds:.1f} s (quick mode)")
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    for figure in EXPECTED_FIGURES[name]:
        path = tmp_path / figure
        assert path.is_file(), f"{name} did not write {figure}; wrote {sorted(p.name for p in tmp_path.iterdir())}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("name", ["02_broadcasting_gradients.py", "03_attention.py", "05_layernorm_and_residuals.py",
                                  "12_losses.py"])
def test_tutorial_runs_without_torch(name, tmp_path):
    """`pip install -e .` installs no PyTorch: the tutorials that compare with it skip those comparisons."""
    hidden = tmp_path / "hide"
    (hidden / "torch").mkdir(parents=True)
    (hidden / "torch" / "__init__.py").write_text("raise ImportError('torch is hidden for this test')\n")
    env = {**os.environ, "MINITX_TUTORIAL_QUICK": "1", "MINITX_TUTORIAL_OUT": str(tmp_path), "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(TUTORIALS / name)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{name} failed without torch:\n{result.stderr[-3000:]}"
    assert "PyTorch is not installed" in result.stdout
