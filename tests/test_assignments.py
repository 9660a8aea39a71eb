"""Assignment tooling: solution markers -> student copy -> autograder, proved on a tiny synthetic repository.

The round trip: make the student copy, its marked tests fail with NotImplementedError while the unmarked
ones pass; put the solution file back and they pass; grade() scores both states (table and JSON).
"""
import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from minitx.assignments import Task, find_blocks, grade, make_student_copy, score_table, strip_solutions
from minitx.assignments.cli import add_subparser
from minitx.assignments.grade import scores_to_json
from minitx.assignments.tasks import TASKS

pytestmark = pytest.mark.assignments

TOY_OPS = '''\
"""A toy package with two homework functions."""
import math


def square_grad(x, grad):
    """d(x^2)/dx * grad = 2 x grad."""
    factor = 2.0
    # BEGIN SOLUTION hint="chain rule: multiply by the local derivative"
    return factor * x * grad
    # END SOLUTION


def softmax(xs):
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x)."""
    if not xs:
        raise ValueError("softmax of an empty list")
    # BEGIN SOLUTION
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    total = sum(exps)
    return [e / total for e in exps]
    # END SOLUTION


def plain(x):
    """Not homework: stays as it is."""
    return x + 1
'''

TOY_TESTS = '''\
import pytest

from toy.ops import plain, softmax, square_grad


@pytest.mark.hw_grad
def test_square_grad():
    assert square_grad(3.0, 0.5) == 3.0


@pytest.mark.hw_softmax
def test_softmax_sums_to_one():
    assert abs(sum(softmax([1.0, 2.0, 3.0])) - 1.0) < 1e-12


@pytest.mark.hw_softmax
def test_softmax_is_stable():
    assert softmax([1000.0, 1000.0]) == [0.5, 0.5]


def test_plain():
    assert plain(1) == 2


def test_softmax_rejects_empty():
    with pytest.raises(ValueError):
        softmax([])
'''

TOY_KERNEL = '''\
#include <cstddef>

// C = A B for row-major n x n matrices.
void matmul_blocked(const float* a, const float* b, float* c, std::size_t n) {
    for (std::size_t i = 0; i < n * n; ++i) c[i] = 0.0f;
    // BEGIN SOLUTION hint="tile i, k and j by 64 and accumulate into c"
    const std::size_t tile = 64;
    for (std::size_t i0 = 0; i0 < n; i0 += tile)
        for (std::size_t i = i0; i < n && i < i0 + tile; ++i)
            for (std::size_t k = 0; k < n; ++k)
                for (std::size_t j = 0; j < n; ++j) c[i * n + j] += a[i * n + k] * b[k * n + j];
    // END SOLUTION
}

float first(const float* c) {
    // BEGIN SOLUTION
    return c[0];
    // END SOLUTION
}
'''

TOY_TASKS = (
    Task("hw_grad", "square_grad backward", ("toy/ops.py",), points=4),
    Task("hw_softmax", "stable softmax", ("toy/ops.py",), points=6),
)


@pytest.fixture
def toy_repo(tmp_path, monkeypatch):
    """A git checkout with a package, marked tests, a C++ file, a hidden test and files that must not ship."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the toy tests need no plugin; saves ~3 s a run
    repo = tmp_path / "repo"
    files = {
        "toy/__init__.py": "",
        "toy/ops.py": TOY_OPS,
        "tests/test_toy.py": TOY_TESTS,
        "tests/hidden/test_hidden_softmax.py": "import pytest\nfrom toy.ops import softmax\n\n\n"
                                               "@pytest.mark.hw_softmax\ndef test_two():\n"
                                               "    assert softmax([0.0, 0.0]) == [0.5, 0.5]\n",
        "csrc/kernel.cpp": TOY_KERNEL,
        "pytest.ini": "[pytest]\ntestpaths = tests\nmarkers =\n    hw_grad: homework 1\n    hw_softmax: homework 2\n",
        ".gitignore": "build/\n*.so\nscratch.txt\n",
        "build/lib/stale.py": "x = 1\n",
        "toy/_ext.so": "not really a library",
        "scratch.txt": "ignored by git",
    }
    for relative, text in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "toy", "tests", "pytest.ini", ".gitignore"], cwd=repo, check=True)
    return repo  # csrc/kernel.cpp stays untracked but not ignored: it must ship too


def run_pytest(folder, *args):
    env = dict(os.environ, PYTHONPATH=str(folder))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=folder, env=env, capture_output=True, text=True)


def test_round_trip_student_copy_fails_then_solution_passes(toy_repo, tmp_path):
    student = tmp_path / "student"
    copy = make_student_copy(toy_repo, student, tasks=TOY_TASKS)

    assert sorted(copy.files) == [".gitignore", "csrc/kernel.cpp", "pytest.ini", "tests/test_toy.py",
                                  "toy/__init__.py", "toy/ops.py"]
    assert copy.hidden == ["tests/hidden/test_hidden_softmax.py"]
    assert copy.stubs == {"toy/ops.py": 2, "csrc/kernel.cpp": 2}
    for absent in ("build", "toy/_ext.so", "scratch.txt", ".git", "tests/hidden"):
        assert not (student / absent).exists(), absent

    stub = (student / "toy/ops.py").read_text()
    assert 'raise NotImplementedError("chain rule: multiply by the local derivative")' in stub
    assert "return factor * x * grad" not in stub and "exps" not in stub
    assert '"""d(x^2)/dx * grad = 2 x grad."""' in stub and "factor = 2.0" in stub  # kept around the block
    functions = {f.name: f for f in ast.parse(stub).body if isinstance(f, ast.FunctionDef)}
    assert [a.arg for a in functions["square_grad"].args.args] == ["x", "grad"]
    assert isinstance(functions["softmax"].body[-1], ast.Raise)
    assert ast.unparse(functions["plain"]) == ast.unparse(
        next(f for f in ast.parse(TOY_OPS).body if isinstance(f, ast.FunctionDef) and f.name == "plain"))

    marked = run_pytest(student, "-m", "hw_grad or hw_softmax")
    assert marked.returncode == 1, marked.stdout
    assert "3 failed" in marked.stdout and marked.stdout.count("NotImplementedError") >= 3
    unmarked = run_pytest(student, "-m", "not hw_grad and not hw_softmax")
    assert unmarked.returncode == 0 and "2 passed" in unmarked.stdout, unmarked.stdout

    shutil.copy(toy_repo / "toy/ops.py", student / "toy/ops.py")  # the student's finished work
    solved = run_pytest(student)
    assert solved.returncode == 0 and "5 passed" in solved.stdout, solved.stdout


def test_grade_scores_the_student_copy_and_the_solution(toy_repo, tmp_path):
    student = tmp_path / "student"
    make_student_copy(toy_repo, student, tasks=TOY_TASKS)

    before = grade(student, tasks=TOY_TASKS)
    assert [(s.task, s.passed, s.failed, s.not_implemented, s.score, s.status) for s in before] == [
        ("hw_grad", 0, 1, 1, 0.0, "failing"), ("hw_softmax", 0, 2, 2, 0.0, "failing")]

    # Half done: softmax written but not stable (overflows at 1000) -> 1 of 2 softmax tests pass.
    ops = (student / "toy/ops.py").read_text().replace(
        '    raise NotImplementedError("homework: implement this block (see the docstring)")',
        "    exps = [math.exp(x) for x in xs]\n    return [e / sum(exps) for e in exps]")
    (student / "toy/ops.py").write_text(ops)
    half = grade(student, tasks=TOY_TASKS)
    assert [(s.passed, s.failed, s.not_implemented, s.score) for s in half] == [(0, 1, 1, 0.0), (1, 1, 0, 3.0)]

    shutil.copy(toy_repo / "toy/ops.py", student / "toy/ops.py")
    after = grade(student, tasks=TOY_TASKS, reference=toy_repo)  # the hidden softmax test runs too
    assert [(s.task, s.passed, s.failed, s.score, s.status) for s in after] == [
        ("hw_grad", 1, 0, 4.0, "ok"), ("hw_softmax", 3, 0, 6.0, "ok")]
    table = score_table(after)
    assert "hw_softmax" in table and table.splitlines()[-1].split()[:4] == ["total", "10.00", "/", "10"]
    assert "    toy/ops.py: square_grad, softmax" in table  # the functions of the task's files (from the markers)
    report = scores_to_json(after)
    assert report["total"] == {"score": 10.0, "points": 10}
    assert report["tasks"][1].pop("seconds") >= 0
    assert report["tasks"][1] == {"task": "hw_softmax", "marker": "hw_softmax", "passed": 3, "failed": 0,
                                  "skipped": 0, "not_implemented": 0, "points": 6, "score": 6.0, "status": "ok",
                                  "functions": {"toy/ops.py": ["square_grad", "softmax"]}}


def test_cli_make_and_grade_write_json(toy_repo, tmp_path, monkeypatch, capsys):
    import minitx.assignments.cli as cli

    monkeypatch.setattr(cli, "TASKS", TOY_TASKS)
    real_grade = cli.grade
    monkeypatch.setattr(cli, "grade", lambda *a, **k: real_grade(*a, tasks=TOY_TASKS, **k))
    parser = argparse.ArgumentParser(prog="minitx")
    add_subparser(parser.add_subparsers(dest="command"))

    student = tmp_path / "student"
    args = parser.parse_args(["assignment", "make", "--out", str(student), "--repo", str(toy_repo)])
    assert args.func(args) == 0
    assert "4 solution blocks stubbed in 2 files" in capsys.readouterr().out
    with pytest.raises(FileExistsError):
        args.func(args)

    scores = tmp_path / "scores.json"
    args = parser.parse_args(["assignment", "grade", str(student), "--json", str(scores), "--tasks", "hw_grad"])
    assert args.func(args) == 0
    assert "hw_grad" in capsys.readouterr().out
    assert json.loads(scores.read_text())["tasks"][0]["not_implemented"] == 1


def test_make_stubs_only_the_selected_tasks_files(toy_repo, tmp_path):
    tasks = (Task("hw_kernel", "blocked matmul", ("csrc/kernel.cpp",)),) + TOY_TASKS
    copy = make_student_copy(toy_repo, tmp_path / "student", task_ids=["hw_kernel"], tasks=tasks)
    assert copy.stubs == {"csrc/kernel.cpp": 2}
    assert (tmp_path / "student/toy/ops.py").read_text() == TOY_OPS
    with pytest.raises(ValueError, match="unknown task"):
        make_student_copy(toy_repo, tmp_path / "other", task_ids=["hw_nope"], tasks=tasks)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_cpp_stub_compiles(tmp_path):
    stubbed, blocks = strip_solutions(TOY_KERNEL, "cpp", "kernel.cpp")
    assert len(blocks) == 2
    assert '    throw std::runtime_error("not implemented: tile i, k and j by 64 and accumulate into c");' in stubbed
    assert "#include <stdexcept>" in stubbed and "tile = 64" not in stubbed
    assert "c[i] = 0.0f;" in stubbed  # code before the block is kept
    source = tmp_path / "kernel.cpp"
    for text in (TOY_KERNEL, stubbed):
        source.write_text(text)
        result = subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-Wno-unused-parameter",
                                 "-fsyntax-only", str(source)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_hint_indentation_and_escapes():
    source = textwrap.dedent('''\
        class Op:
            def backward(ctx, grad):
                if grad is None:
                    # BEGIN SOLUTION hint="say \\"hi\\" and use a \\\\ path"
                    return None
                    # END SOLUTION
                return grad
    ''')
    stubbed, blocks = strip_solutions(source, "python")
    assert blocks[0].begin == 4 and blocks[0].end == 6 and blocks[0].hint == 'say "hi" and use a \\ path'
    namespace = {}
    exec(stubbed, namespace)
    with pytest.raises(NotImplementedError, match=r'say "hi" and use a \\ path'):
        namespace["Op"].backward(None, None)
    assert namespace["Op"].backward(None, 3) == 3


def test_marker_text_inside_strings_is_not_a_marker():
    source = 'TEMPLATE = """\n    # BEGIN SOLUTION\n"""\n\n\ndef f():\n    return 1\n'
    assert find_blocks(source, "python") == []
    assert strip_solutions(source, "python")[0] == source


@pytest.mark.parametrize("source, message", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "without a BEGIN"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    # END SOLUTION\n", "inside the block"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "inside a function body"),
    ("def f():\n    x = (1 +\n    # BEGIN SOLUTION\n         2)\n    # END SOLUTION\n    return x\n", "does not parse"),
])
def test_bad_markers_name_the_file_and_line(source, message):
    with pytest.raises(ValueError, match=message) as info:
        strip_solutions(source, "python", "pkg/mod.py")
    assert str(info.value).startswith("pkg/mod.py")


def test_task_table_markers_are_unique_and_files_exist():
    from minitx.assignments.cli import default_repo_root

    markers = [task.pytest_marker for task in TASKS]
    assert len(set(markers)) == len(markers) == 6 and all(m.startswith("hw") for m in markers)
    root = default_repo_root()
    for task in TASKS:
        for relative in task.files:
            assert (root / relative).is_file(), f"{task.id}: {relative} does not exist"


def test_minitx_cli_has_the_assignment_command(capsys):
    from minitx.cli import main

    assert main(["assignment", "list"]) == 0
    out = capsys.readouterr().out
    assert all(f"-m {task.pytest_marker}" in out for task in TASKS)


def test_real_repository_student_copy_is_valid(tmp_path):
    """The markers in minitx's own source are balanced, parse once stubbed, and all belong to a task."""
    from minitx.assignments.cli import default_repo_root

    root = default_repo_root()
    copy = make_student_copy(root, tmp_path / "student")
    assert "minitx/tensor.py" in copy.files and "setup.py" in copy.files
    assert not any(f.endswith(".so") or f.startswith(".git/") for f in copy.files)
    task_files = {f for task in TASKS for f in task.files}
    assert set(copy.stubs) <= task_files, f"solution blocks outside every task's files: {set(copy.stubs) - task_files}"
    for relative in copy.stubs:
        text = (tmp_path / "student" / relative).read_text()
        assert find_blocks(text, "python" if relative.endswith(".py") else "cpp", relative) == []
        if relative.endswith(".py"):
            ast.parse(text)
