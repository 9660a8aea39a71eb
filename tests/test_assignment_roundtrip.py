"""The homework round trip on minitx's own source (not a toy repository).

Make the student copy for two tasks (hw1_autograd: the op backwards and unbroadcast; hw5_mlm_masking: the
80/10/10 decision), run a few of their reference tests there — each must fail with the stub's
NotImplementedError while an unrelated test still passes — then put the solution files back and run the same
tests again: all pass. One pytest run per state keeps it cheap; ``pytest -m hw1_autograd`` runs them all.
"""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import minitx
from minitx.assignments import find_blocks, make_student_copy
from minitx.assignments.cli import default_repo_root
from minitx.assignments.tasks import select_tasks

pytestmark = pytest.mark.assignments

TASK_IDS = ["hw1_autograd", "hw5_mlm_masking"]
HOMEWORK_TESTS = ["tests/test_gradcheck.py::test_gradcheck[matmul-batched-broadcast]",  # MatMul.backward, unbroadcast
                  "tests/test_gradcheck.py::test_gradcheck[linear]",
                  "tests/test_data_pretraining.py::test_masking_is_80_mask_10_random_10_unchanged",
                  "tests/test_data_pretraining.py::test_never_masks_specials_even_in_the_middle"]
UNRELATED_TEST = "tests/test_data_pretraining.py::test_truncate_seq_pair_trims_longer_segment_from_both_ends"


def _has_solutions(root: Path) -> bool:
    return all(find_blocks((root / f).read_text(encoding="utf-8"), "python", f)
               for task in select_tasks(TASK_IDS) for f in task.files)


@pytest.fixture(scope="module")
def instructor_repo():
    root = default_repo_root()
    if not _has_solutions(root):
        pytest.skip("this checkout is a student copy: its homework files hold stubs, not solutions")
    return root


def _copy_extension(copy: Path) -> None:
    """The student copy ships no compiled files; give it the built extension so it runs like an installed copy."""
    built = getattr(getattr(minitx, "_C", None), "__file__", None)
    if built:
        shutil.copy2(built, copy / "minitx" / Path(built).name)


def _outcomes(copy: Path, tests: list) -> dict:
    """Run ``tests`` in the copy (its own minitx first on the path); {test name: failure text, "" if it passed}."""
    report = copy / "report.xml"
    env = dict(os.environ, PYTHONPATH=str(copy))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *tests],
                   cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problems = case.findall("failure") + case.findall("error") + case.findall("skipped")
        outcomes[case.get("name")] = " ".join((p.get("message") or "") + (p.text or "") for p in problems)
    assert len(outcomes) == len(tests), f"expected {len(tests)} results, got {sorted(outcomes)}"
    return outcomes


def test_student_copy_fails_with_stubs_then_passes_with_the_solutions(instructor_repo, tmp_path):
    copy_dir = tmp_path / "student"
    copy = make_student_copy(instructor_repo, copy_dir, task_ids=TASK_IDS)
    task_files = {f for task in select_tasks(TASK_IDS) for f in task.files}
    assert set(copy.stubs) == task_files  # every file of both tasks holds blocks, and nothing else is stubbed
    assert "raise NotImplementedError(" in (copy_dir / "minitx/ops/broadcast.py").read_text()
    _copy_extension(copy_dir)

    stubbed = _outcomes(copy_dir, HOMEWORK_TESTS + [UNRELATED_TEST])
    unrelated = UNRELATED_TEST.split("::")[1]
    assert stubbed.pop(unrelated) == "", "an unrelated test fails in the student copy"
    for name, failure in stubbed.items():
        assert "NotImplementedError" in failure, f"{name} did not hit a stub: {failure[:500]!r}"

    for relative in task_files:  # the instructor's solutions back in place
        shutil.copy2(instructor_repo / relative, copy_dir / relative)
    solved = _outcomes(copy_dir, HOMEWORK_TESTS + [UNRELATED_TEST])
    assert all(failure == "" for failure in solved.values()), solved
