"""``grade``: run each task's reference tests in a student copy and score them.

For every task, ``python -m pytest -m <marker>`` runs in the student folder (a subprocess, with that folder
first on ``sys.path`` and ``PYTHONPATH``, so ``import minitx`` is the student's code, not the installed one).
Counts come from pytest's JUnit XML report. The score of a task is ``points * passed / (passed + failed)``;
a task whose tests were not found scores 0 and says so.

``reference=<instructor repo>``: grade a scratch copy of the student folder whose ``tests/`` is replaced by
the instructor's (hidden tests included), so edits students made to the tests do not count.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from minitx.assignments.markers import CPP_STUB_PREFIX
from minitx.assignments.tasks import TASKS, select_tasks

NO_TESTS_COLLECTED = 5  # pytest's exit code when the marker selects nothing


@dataclass
class TaskScore:
    """One row of the score table."""

    task: str
    marker: str
    passed: int
    failed: int            # failures + errors
    skipped: int
    not_implemented: int   # failed on a stub: NotImplementedError, or a C++ "not implemented: ..." error
    points: float
    score: float
    status: str            # "ok", "failing", "no tests" or "timeout"


def _run_pytest(student_dir: Path, marker: str, timeout: float, extra_args) -> tuple:
    """Run the marked tests; return (exit code, parsed JUnit counts)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.xml"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(student_dir)] + [p for p in [env.get("PYTHONPATH")] if p])
        command = [sys.executable, "-m", "pytest", "-q", "-m", marker, "-p", "no:cacheprovider",
                   f"--junitxml={report}", *extra_args]
        completed = subprocess.run(command, cwd=student_dir, env=env, capture_output=True, text=True,
                                   timeout=timeout)
        counts = _junit_counts(report) if report.exists() else {"passed": 0, "failed": 0, "skipped": 0,
                                                                 "not_implemented": 0}
    return completed.returncode, counts


def _junit_counts(report: Path) -> dict:
    passed = failed = skipped = not_implemented = 0
    for case in ET.parse(report).getroot().iter("testcase"):
        problems = case.findall("failure") + case.findall("error")
        if problems:
            failed += 1
            text = " ".join((p.get("message") or "") + (p.text or "") for p in problems)
            not_implemented += "NotImplementedError" in text or CPP_STUB_PREFIX in text
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return {"passed": passed, "failed": failed, "skipped": skipped, "not_implemented": not_implemented}


def _with_reference_tests(student_dir: Path, reference: Path, scratch: Path) -> Path:
    """A scratch copy of the student folder with the instructor's tests/ in place of the student's."""
    copy = scratch / "graded"
    shutil.copytree(student_dir, copy, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    shutil.rmtree(copy / "tests", ignore_errors=True)
    shutil.copytree(reference / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def grade(student_dir, task_ids=None, tasks=TASKS, reference=None, timeout=600.0, pytest_args=()) -> list:
    """Score each task (all of ``tasks`` unless ``task_ids`` names some); returns a list of TaskScore."""
    student = Path(student_dir).resolve()
    if not student.is_dir():
        raise FileNotFoundError(f"grade: no student folder {student}")
    with tempfile.TemporaryDirectory() as scratch:
        where = student if reference is None else _with_reference_tests(student, Path(reference).resolve(),
                                                                         Path(scratch))
        return [_grade_task(where, task, timeout, pytest_args) for task in select_tasks(task_ids, tasks)]


def _grade_task(where: Path, task, timeout: float, pytest_args) -> TaskScore:
    try:
        code, counts = _run_pytest(where, task.pytest_marker, timeout, pytest_args)
    except subprocess.TimeoutExpired:
        return TaskScore(task.id, task.pytest_marker, 0, 0, 0, 0, task.points, 0.0, "timeout")
    ran = counts["passed"] + counts["failed"]
    if code == NO_TESTS_COLLECTED or ran == 0:
        status, score = "no tests", 0.0
    else:
        status = "ok" if counts["failed"] == 0 else "failing"
        score = task.points * counts["passed"] / ran
    return TaskScore(task.id, task.pytest_marker, counts["passed"], counts["failed"], counts["skipped"],
                     counts["not_implemented"], task.points, round(score, 2), status)


def score_table(scores) -> str:
    """The scores as a fixed-width text table with a total row."""
    header = f"{'task':<24} {'passed':>6} {'failed':>6} {'stubbed':>7} {'score':>13}  status"
    lines = [header, "-" * len(header)]
    for s in scores:
        lines.append(f"{s.task:<24} {s.passed:>6} {s.failed:>6} {s.not_implemented:>7} "
                     f"{s.score:>6.2f} / {s.points:<5g}  {s.status}")
    total, points = sum(s.score for s in scores), sum(s.points for s in scores)
    lines += ["-" * len(header), f"{'total':<24} {'':>6} {'':>6} {'':>7} {total:>6.2f} / {points:<5g}"]
    return "\n".join(lines)


def scores_to_json(scores) -> dict:
    """``{"tasks": [row, ...], "total": {"score": ..., "points": ...}}``, ready for ``json.dump``."""
    return {"tasks": [asdict(s) for s in scores],
            "total": {"score": round(sum(s.score for s in scores), 2), "points": sum(s.points for s in scores)}}


def write_json(scores, path) -> None:
    Path(path).write_text(json.dumps(scores_to_json(scores), indent=2) + "\n", encoding="utf-8")
