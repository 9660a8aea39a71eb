"""``grade``: run each task's reference tests against a student copy's own code and build, and score them.

The scoring rule: a task's score is ``points * passed / (passed + failed)`` over the test cases that carry the
task's marker (skipped cases do not count). A case carries a task's marker only if it runs that task's
solution code (docs/assignments.md, §2), so an untouched student copy scores 0 on every task: each of its
marked cases fails on a stub. ``tests/test_grading.py`` grades an untouched copy (0) and the solutions (full
marks) to keep that true.

How a copy is graded:

1. It is copied to a scratch folder (``.git``, build folders and caches left out); with
   ``reference=<instructor repo>`` its ``tests/`` is replaced by the instructor's (hidden tests included), so
   edits students made to the tests do not count.
2. The C++ extension is built there from the student's source (``python setup.py build_ext --inplace``) when a
   C++ task is graded or the copy has no built extension. If the build fails, the C++ tasks score 0 (status
   ``build failed``) and the others run without the extension (the NumPy backend).
3. ``python -c "import minitx, minitx._C"`` runs with the environment the tests get (the copy first on
   ``PYTHONPATH``); grading is refused (GradingError) if either module would load from outside the copy, as
   an editable install of the instructor's checkout would otherwise supply its own ``minitx._C``.
4. Each task runs ``python -m pytest -m <marker>`` there; counts come from pytest's JUnit XML report.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from minitx.assignments.markers import CPP_STUB_PREFIX, language_of
from minitx.assignments.tasks import TASKS, select_tasks, task_functions

NO_TESTS_COLLECTED = 5  # pytest's exit code when the marker selects nothing


COPY_IGNORE = shutil.ignore_patterns(".git", "__pycache__", "build", ".pytest_cache", ".hypothesis", "*.egg-info")
EXTENSION_SUFFIXES = (".so", ".pyd")


class GradingError(RuntimeError):
    """Grading refused: the code that would run is not the student copy's own."""


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
    status: str            # "ok", "failing", "no tests", "timeout" or "build failed"
    seconds: float = 0.0
    functions: list = field(default_factory=list)  # [(file, [function, ...])]: what the task asks for


def is_cpp_task(task) -> bool:
    return any(language_of(f) == "cpp" for f in task.files)


def _environment(folder: Path) -> dict:
    """The environment the tests run in: the graded folder first on PYTHONPATH (subprocesses inherit it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _run_pytest(folder: Path, marker: str, timeout: float, extra_args) -> tuple:
    """Run the marked tests; return (exit code, parsed JUnit counts)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.xml"
        # --tb=line: the report's failure message still names the exception; long tracebacks of hundreds of
        # failing cases in an untouched copy would cost minutes
        command = [sys.executable, "-m", "pytest", "-q", "--tb=line", "-m", marker, "-p", "no:cacheprovider",
                   f"--junitxml={report}", *extra_args]
        completed = subprocess.run(command, cwd=folder, env=_environment(folder), capture_output=True, text=True,
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


def score_from_counts(counts: dict, points: float) -> tuple:
    """The scoring rule: ``(score, status)`` from a task's passed/failed counts (skipped cases do not count)."""
    ran = counts["passed"] + counts["failed"]
    if ran == 0:
        return 0.0, "no tests"
    return round(points * counts["passed"] / ran, 2), "ok" if counts["failed"] == 0 else "failing"


def _graded_copy(student_dir: Path, reference, scratch: Path) -> Path:
    """The scratch copy grading runs in, with the instructor's tests/ in place of the student's when ``reference``."""
    copy = scratch / "graded"
    shutil.copytree(student_dir, copy, ignore=COPY_IGNORE, symlinks=True)
    if reference is not None:
        shutil.rmtree(copy / "tests", ignore_errors=True)
        shutil.copytree(Path(reference) / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _built_extensions(folder: Path, package: str, extension: str) -> list:
    return [p for p in (folder / package).glob(extension + ".*") if p.name.endswith(EXTENSION_SUFFIXES)]


def _has_extension_source(folder: Path) -> bool:
    """A setup.py and C/C++ sources: the copy builds a compiled extension."""
    return (folder / "setup.py").is_file() and any(language_of(p) == "cpp" for p in folder.rglob("*")
                                                   if p.is_file())


def build_extension(folder: Path, package: str = "minitx", extension: str = "_C", timeout: float = 600.0,
                    log=print) -> tuple:
    """Build the C++ extension in ``folder`` from its own source: ``(ok, message)``; old builds are removed first."""
    for old in _built_extensions(folder, package, extension):
        old.unlink()
    shutil.rmtree(folder / "build", ignore_errors=True)
    command = [sys.executable, "setup.py", "build_ext", "--inplace"]
    log(f"building {package}.{extension} from the student's source ({' '.join(command[1:])}) ...")
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=folder, env=_environment(folder), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"the build took longer than {timeout:g} s"
    seconds = time.perf_counter() - start
    if done.returncode != 0 or not _built_extensions(folder, package, extension):
        output = (done.stdout + done.stderr).strip().splitlines()
        errors = [line for line in output if "error" in line.lower()][:12] or output[-12:]
        return False, f"the build failed after {seconds:.0f} s:\n    " + "\n    ".join(errors)
    return True, f"built in {seconds:.0f} s"


_PROBE = """import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.import_module(name).__file__
    except Exception as error:  # not importable (not built, or the student's code does not import): tests will say
        found[name] = "ImportError: " + type(error).__name__ + ": " + str(error)
print(json.dumps(found))
"""


def check_imports(folder: Path, package: str = "minitx", extension: str = "_C") -> dict:
    """Import ``package`` and ``package.extension`` as the tests will (same cwd and environment); raise
    GradingError if either loads from outside ``folder``. Returns {module: file, or "ImportError: ..."}."""
    names = [package, f"{package}.{extension}"]
    done = subprocess.run([sys.executable, "-c", _PROBE, *names], cwd=folder, env=_environment(folder),
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise GradingError(f"cannot check where {package} is imported from:\n{done.stderr[-2000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    root = folder.resolve()
    for name, where in found.items():
        if where is None or where.startswith("ImportError"):
            continue
        if root not in Path(where).resolve().parents:
            raise GradingError(
                f"refusing to grade: `import {name}` in the student copy loads {where}, which is not the copy's "
                f"own code ({folder}). Another checkout is installed in this environment (an editable install "
                f"of the instructor's repository supplies its own {name}); grade in an environment where "
                f"{package} is not installed from elsewhere, or build the copy's extension first.")
    return found


def _block_extension(folder: Path, package: str, extension: str, why: str) -> None:
    """Make ``import package.extension`` fail in the graded copy (it would otherwise find an installed one)."""
    (folder / package / f"{extension}.py").write_text(f"raise ImportError({why!r})\n", encoding="utf-8")


def grade(student_dir, task_ids=None, tasks=TASKS, reference=None, timeout=600.0, pytest_args=(),
          package=None, extension="_C", solutions=None, log=None) -> list:
    """Score each task (all of ``tasks`` unless ``task_ids`` names some); returns a list of TaskScore.

    ``reference``: the instructor repository whose tests/ replace the student's. ``solutions``: a checkout with
    the solution markers, to name the functions of each task in the table (default: ``reference``).
    ``package``/``extension``: the package under test and its compiled extension (``minitx._C``); the package
    defaults to the one holding the tasks' Python files.
    ``log``: called with a line of progress (each task's start and end, the build); silent when None.
    Raises GradingError when the copy's own ``package`` would not be what runs.
    """
    say = log or (lambda line: None)
    student = Path(student_dir).resolve()
    if not student.is_dir():
        raise FileNotFoundError(f"grade: no student folder {student}")
    selected = select_tasks(task_ids, tasks)
    package = package or _package_of(tasks)
    solutions = solutions if solutions is not None else reference
    with tempfile.TemporaryDirectory() as scratch:
        where = _graded_copy(student, Path(reference).resolve() if reference else None, Path(scratch))
        build_failed = None
        if _has_extension_source(where) and (any(is_cpp_task(t) for t in selected)
                                             or not _built_extensions(where, package, extension)):
            ok, message = build_extension(where, package, extension, timeout, say)
            say(f"  {message}")
            if not ok:
                build_failed = message
                _block_extension(where, package, extension, f"{package}.{extension} did not build: {message}")
                say(f"  the C++ tasks score 0; the others run without {package}.{extension} (NumPy backend)")
        found = check_imports(where, package, extension)
        say("imports: " + ", ".join(f"{name} from {_relative(f, where)}" for name, f in found.items()))

        scores, begin = [], time.perf_counter()
        for number, task in enumerate(selected, start=1):
            tag = f"[{number}/{len(selected)}] {task.id}"
            say(f"{tag}: pytest -m {task.pytest_marker} ...")
            start = time.perf_counter()
            if build_failed and is_cpp_task(task):
                score = TaskScore(task.id, task.pytest_marker, 0, 0, 0, 0, task.points, 0.0, "build failed")
            else:
                score = _grade_task(where, task, timeout, pytest_args)
            score.seconds = round(time.perf_counter() - start, 1)
            if solutions is not None:
                score.functions = task_functions(solutions, task)
            say(f"{tag}: {score.passed} passed, {score.failed} failed ({score.not_implemented} on a stub): "
                f"{score.score:.2f} / {score.points:g}, {score.status} ({score.seconds:.0f} s; "
                f"{time.perf_counter() - begin:.0f} s so far)")
            scores.append(score)
        return scores


def _package_of(tasks) -> str:
    """The top-level package of the tasks' Python files (``minitx``)."""
    for task in tasks:
        for relative in task.files:
            parts = Path(relative).parts
            if language_of(relative) == "python" and len(parts) > 1:
                return parts[0]
    return "minitx"


def _relative(path: str, root: Path) -> str:
    if path.startswith("ImportError"):
        return f"nowhere ({path})"
    try:
        return "the copy: " + str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


def _grade_task(where: Path, task, timeout: float, pytest_args) -> TaskScore:
    try:
        code, counts = _run_pytest(where, task.pytest_marker, timeout, pytest_args)
    except subprocess.TimeoutExpired:
        return TaskScore(task.id, task.pytest_marker, 0, 0, 0, 0, task.points, 0.0, "timeout")
    score, status = score_from_counts(counts, task.points)
    if code == NO_TESTS_COLLECTED:
        score, status = 0.0, "no tests"
    return TaskScore(task.id, task.pytest_marker, counts["passed"], counts["failed"], counts["skipped"],
                     counts["not_implemented"], task.points, score, status)


def score_table(scores) -> str:
    """The scores as a fixed-width text table with a total row; under each task, the files and functions to
    implement (when grade() knew where the solutions are)."""
    header = f"{'task':<24} {'passed':>6} {'failed':>6} {'stubbed':>7} {'score':>13}  status"
    lines = [header, "-" * len(header)]
    for s in scores:
        lines.append(f"{s.task:<24} {s.passed:>6} {s.failed:>6} {s.not_implemented:>7} "
                     f"{s.score:>6.2f} / {s.points:<5g}  {s.status}")
        for relative, functions in s.functions:
            lines.append(f"    {relative}: {', '.join(functions) or '(no solution blocks)'}")
    total, points = sum(s.score for s in scores), sum(s.points for s in scores)
    lines += ["-" * len(header), f"{'total':<24} {'':>6} {'':>6} {'':>7} {total:>6.2f} / {points:<5g}"]
    return "\n".join(lines)


def scores_to_json(scores) -> dict:
    """``{"tasks": [row, ...], "total": {"score": ..., "points": ...}}``, ready for ``json.dump``."""
    rows = []
    for s in scores:
        row = asdict(s)
        row["functions"] = {relative: list(functions) for relative, functions in s.functions}
        rows.append(row)
    return {"tasks": rows,
            "total": {"score": round(sum(s.score for s in scores), 2), "points": sum(s.points for s in scores)}}


def write_json(scores, path) -> None:
    Path(path).write_text(json.dumps(scores_to_json(scores), indent=2) + "\n", encoding="utf-8")
