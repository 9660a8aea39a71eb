"""Grading gives 0 for nothing and grades the student's own code and build.

- The scoring rule on JUnit counts (skips do not count; a task with no case scores 0).
- Refusal: a copy whose ``minitx._C`` would load from elsewhere (the editable install of this checkout supplies
  one when the copy has none) is refused before any test runs.
- A C++ task on a toy repository with a real (tiny) pybind11 extension: built from the student's source, 0 with
  the stub, full marks with the solution, 0 with status "build failed" when it does not compile while the other
  task is still graded.
- minitx itself, end to end: an untouched student copy scores 0 and the solutions score full marks, on a
  representative subset of the tasks (the copy gets this checkout's extension, so nothing is compiled; grading
  every task takes minutes, see docs/assignments.md).
"""
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import minitx
from minitx.assignments import Task, grade, make_student_copy, score_table
from minitx.assignments.grade import GradingError, _junit_counts, check_imports, score_from_counts
from minitx.assignments.cli import default_repo_root
from minitx.assignments.markers import find_blocks, language_of
from minitx.assignments.tasks import select_tasks

pytestmark = pytest.mark.assignments


# ------------------------------------------------------------------------------------------- the scoring rule
def test_score_is_points_times_passed_over_passed_plus_failed(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(textwrap.dedent("""\
        <testsuites><testsuite>
          <testcase name="a"/>
          <testcase name="b"><failure message="NotImplementedError: write me">trace</failure></testcase>
          <testcase name="c"><error message="RuntimeError: not implemented: the loop">trace</error></testcase>
          <testcase name="d"><failure message="AssertionError: 1 != 2">trace</failure></testcase>
          <testcase name="e"><skipped message="needs g++"/></testcase>
        </testsuite></testsuites>"""))
    counts = _junit_counts(report)
    assert counts == {"passed": 1, "failed": 3, "skipped": 1, "not_implemented": 2}
    assert score_from_counts(counts, 10) == (2.5, "failing")
    assert score_from_counts({"passed": 4, "failed": 0}, 6) == (6.0, "ok")
    assert score_from_counts({"passed": 0, "failed": 0}, 10) == (0.0, "no tests")  # nothing ran: nothing earned


# ------------------------------------------------------------------------------------------------ refusal
def test_refuses_a_copy_whose_extension_loads_from_elsewhere(tmp_path):
    """A package that finds its extension outside the graded folder is refused, naming the module and the file."""
    outside = tmp_path / "instructor" / "pkg"
    outside.mkdir(parents=True)
    (outside / "_C.py").write_text("VALUE = 1\n")
    copy = tmp_path / "copy"
    (copy / "pkg").mkdir(parents=True)
    (copy / "pkg" / "__init__.py").write_text(f"__path__.append({str(outside)!r})\n")  # like an editable finder
    with pytest.raises(GradingError, match=r"refusing to grade: `import pkg\._C`.*instructor"):
        check_imports(copy, "pkg", "_C")
    (copy / "pkg" / "_C.py").write_text("VALUE = 2\n")  # the copy's own build comes first
    found = check_imports(copy, "pkg", "_C")
    assert found["pkg._C"] == str(copy / "pkg" / "_C.py")


@pytest.mark.skipif(not minitx.cpp_available(), reason="needs this checkout's built extension")
def test_minitx_copy_without_its_own_build_would_load_this_checkouts_extension(tmp_path):
    """The case the check exists for: this environment's editable install supplies minitx._C to a copy without one."""
    copy = tmp_path / "copy"
    shutil.copytree(default_repo_root() / "minitx", copy / "minitx",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    with pytest.raises(GradingError, match=r"minitx\._C"):
        check_imports(copy)


# --------------------------------------------------------------------------- a C++ task on a toy extension
KERNEL = """\
#include <pybind11/pybind11.h>

int triple(int x) {
    // BEGIN SOLUTION hint="three times x"
    return 3 * x;
    // END SOLUTION
}

PYBIND11_MODULE(_C, m) { m.def("triple", &triple); }
"""

TOY_FILES = {
    "toy/__init__.py": "",
    "toy/ops.py": 'def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n',
    "csrc/kernel.cpp": KERNEL,
    "setup.py": textwrap.dedent("""\
        from pybind11.setup_helpers import Pybind11Extension, build_ext
        from setuptools import setup

        setup(name="toy", packages=["toy"], ext_modules=[Pybind11Extension("toy._C", ["csrc/kernel.cpp"])],
              cmdclass={"build_ext": build_ext})
        """),
    "tests/test_toy.py": textwrap.dedent("""\
        import pytest


        @pytest.mark.hw_kernel
        def test_triple():
            from toy._C import triple
            assert triple(2) == 6


        @pytest.mark.hw_double
        def test_double():
            from toy.ops import double
            assert double(2) == 4
        """),
    "pytest.ini": "[pytest]\nmarkers =\n    hw_kernel: C++\n    hw_double: Python\n",
}
TOY_TASKS = (Task("hw_kernel", "triple in C++", ("csrc/kernel.cpp",)), Task("hw_double", "double", ("toy/ops.py",)))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="needs a C++ compiler")
def test_cpp_task_is_built_from_the_students_source(tmp_path, monkeypatch):
    pytest.importorskip("pybind11")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    repo = tmp_path / "repo"
    for relative, text in TOY_FILES.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    student = tmp_path / "student"
    make_student_copy(repo, student, tasks=TOY_TASKS)
    lines = []

    def rows(scores):
        return [(s.task, s.passed, s.failed, s.not_implemented, s.score, s.status) for s in scores]

    untouched = grade(student, tasks=TOY_TASKS, package="toy", solutions=repo, log=lines.append)
    assert rows(untouched) == [("hw_kernel", 0, 1, 1, 0.0, "failing"), ("hw_double", 0, 1, 1, 0.0, "failing")]
    assert any(line.startswith("building toy._C") for line in lines), lines
    assert any("toy._C from the copy: toy/_C" in line for line in lines), lines
    assert [line.split(":")[0] for line in lines if line.startswith("[")] == [
        "[1/2] hw_kernel", "[1/2] hw_kernel", "[2/2] hw_double", "[2/2] hw_double"]  # a line at start and end
    table = score_table(untouched)
    assert "    csrc/kernel.cpp: triple" in table and "    toy/ops.py: double" in table
    assert not list(student.rglob("*.so")) and not (student / "build").exists()  # built in a scratch copy

    for relative in ("csrc/kernel.cpp", "toy/ops.py"):
        shutil.copy2(repo / relative, student / relative)
    assert rows(grade(student, tasks=TOY_TASKS, package="toy")) == [
        ("hw_kernel", 1, 0, 0, 10.0, "ok"), ("hw_double", 1, 0, 0, 10.0, "ok")]

    (student / "csrc/kernel.cpp").write_text(KERNEL.replace("return 3 * x;", "return 3 * x"))  # does not compile
    lines.clear()
    broken = grade(student, tasks=TOY_TASKS, package="toy", log=lines.append)
    assert rows(broken) == [("hw_kernel", 0, 0, 0, 0.0, "build failed"), ("hw_double", 1, 0, 0, 10.0, "ok")]
    assert any("the build failed" in line and "error" in line for line in lines), lines


# ------------------------------------------------------------------------------- minitx itself, end to end
# Every Python task, end to end through grade(), on one representative test file each (the -m filter picks each
# task's cases in them): the op table on the NumPy path for hw1-hw3, the data pipeline for hw5, the KV-cache
# generation test on a tiny model for hw6. All of each task's tests take minutes (docs/assignments.md §4: grade an untouched copy by hand
# after moving markers); hw4 needs a full C++ build, covered by the toy extension above.
END_TO_END = ["hw1_autograd", "hw2_softmax_layernorm", "hw3_attention", "hw5_mlm_masking", "hw6_beam_search"]
REPRESENTATIVE = ["tests/test_conformance.py", "tests/test_data_pretraining.py", "tests/test_generation.py",
                  "-k", "numpy or test_data_pretraining or test_kv_cache_gives_the_same_tokens"]


def _has_solutions(root: Path) -> bool:
    return all(find_blocks((root / f).read_text(encoding="utf-8"), language_of(f), f)
               for task in select_tasks(END_TO_END) for f in task.files)


@pytest.mark.slow
@pytest.mark.skipif(not minitx.cpp_available(), reason="needs this checkout's built extension")
def test_untouched_copy_scores_zero_and_the_solutions_full_marks(tmp_path):
    root = default_repo_root()
    if not _has_solutions(root):
        pytest.skip("this checkout is a student copy: its homework files hold stubs, not solutions")
    student = tmp_path / "student"
    make_student_copy(root, student)
    built = Path(minitx._C.__file__)
    shutil.copy2(built, student / "minitx" / built.name)  # the copy's own build of the (untouched) C++ sources

    start = time.perf_counter()
    untouched = grade(student, task_ids=END_TO_END, reference=root, pytest_args=REPRESENTATIVE, log=print)
    middle = time.perf_counter()
    for task in select_tasks(END_TO_END):
        for relative in task.files:
            shutil.copy2(root / relative, student / relative)
    solved = grade(student, task_ids=END_TO_END, reference=root, pytest_args=REPRESENTATIVE)
    print(f"\ngrading {END_TO_END}: untouched {middle - start:.0f} s, solved {time.perf_counter() - middle:.0f} s")

    for score in untouched:
        assert score.passed == 0 and score.failed > 0 and score.score == 0, score
        assert score.not_implemented == score.failed, f"{score.task}: a marked case failed on something else"
    for score in solved:
        assert score.failed == 0 and score.passed > 0 and score.score == score.points, score
    assert [s.passed for s in solved] == [s.failed for s in untouched]  # the same cases in both states
