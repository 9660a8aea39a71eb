"""The README a student copy ships with: start here, the tasks in order with their files and functions, how to
run a task's tests, build the C++ part and step into the maths with a debugger; then the project's own README
without its set-up and course-tooling sections (the instructor's workflow is not the student's)."""
from __future__ import annotations

import re

from minitx.assignments.tasks import task_functions

# Sections of the instructor's README a student copy leaves out: set-up is rewritten here, and the course
# tooling (markers, student copies, grading) is the instructor's business.
INSTRUCTOR_SECTIONS = ("Set-up", "Teaching with minitx")
INSTRUCTOR_LINES = re.compile(r"minitx assignment|docs/assignments\.md|minitx/assignments/|SOLUTION")

START = """\
# minitx — your homework copy

minitx is a from-scratch transformer framework: a Tensor with its own reverse-mode autograd in NumPy,
hand-written layers, BERT and GPT-2, and C++ kernels beside NumPy references of the same maths. In this copy
some function bodies are missing: each raises `NotImplementedError` (C++: a `RuntimeError` starting with
"not implemented:") with a hint. Your job is to write them, task by task, until that task's tests pass.

## Start here

```
python3 -m venv .venv && source .venv/bin/activate
pip install -e ".[test]"        # builds the C++ extension minitx._C, installs NumPy, pytest, PyTorch (CPU)
pytest -m {first_marker} -x       # the first task's tests: they fail until you write its code
```

`pip install -e .` needs a C++17 compiler (g++ or clang); its build requirements (setuptools, pybind11) are
fetched for the build. PyTorch and Hugging Face transformers are installed only as references the tests compare
against. The code outside the tasks is complete: `pytest -m "not {all_markers_or}"` runs its tests.

## The tasks, in order

Each task names the files to open and the functions to complete. Read the function's docstring first: it
gives the formula. Run a task's tests with `pytest -m <marker>`; add `-x` to stop at the first failure and
`-k name` to run one test.

{tasks}

The tests of a later task may call code from an earlier one (a BERT gradient needs your op backwards and your
layer norm), so work in order; `pytest -m <marker> -x` tells you which stub a test reached.

## The C++ task

`pip install -e .` compiled the C++ sources once. After editing a file under `csrc/`, rebuild in place:

```
python setup.py build_ext --inplace      # recompiles minitx._C into minitx/ (about a minute)
pytest -m {cpp_marker}
```

Until the C++ task is done, `minitx.kernels.matmul(a, b, version=2)` raises `RuntimeError: not implemented: ...`;
the other rungs and the rest of the library work.

## Stepping from `loss.backward()` into NumPy with a debugger

Float32 tensors run their hot kernels (matmul, softmax, layer norm, attention) in the C++ extension, so a
debugger cannot step into them. Use the NumPy backend, or float64 inputs (the C++ kernels are float32 only),
and every step is Python:

```python
import minitx as mx
import minitx.nn.functional as F

mx.set_backend("numpy")                       # or run with MINITX_BACKEND=numpy
x = mx.randn(4, 3, requires_grad=True)
w = mx.randn(3, 2, requires_grad=True)
loss = F.cross_entropy(x @ w, [0, 1, 1, 0])
breakpoint()                                  # then `s` to step into backward(), each op's backward, NumPy
loss.backward()
```

`python -m pdb script.py`, or `MINITX_BACKEND=numpy pytest -m {first_marker} -x --pdb` (stops in the
failing test), work the same way. `minitx.testing.gradcheck(fn, [x.double()])` compares your backward with
finite differences in float64.

## Tutorials

`tutorials/` holds runnable lessons (percent-cell scripts: open them as notebooks or run
`python tutorials/01_tensors_and_autograd.py`). Run them from this folder with this copy installed, so they
use your code; the ones that train need the tasks they list done first.
"""


def _task_section(number: int, task, functions) -> str:
    lines = [f"{number}. **{task.id}** — {task.description}.  Tests: `pytest -m {task.pytest_marker}`"]
    for relative, names in functions:
        lines.append(f"   - `{relative}`: " + (", ".join(f"`{name}`" for name in names) or "(see the stubs)"))
    return "\n".join(lines)


def _project_sections(readme: str) -> str:
    """The instructor's README from its first ``##`` section, without INSTRUCTOR_SECTIONS, headings one level down."""
    parts = re.split(r"(?m)^(?=## )", readme)
    kept = [part for part in parts[1:] if part.split("\n", 1)[0][3:].strip() not in INSTRUCTOR_SECTIONS]
    lines = "".join("#" + part for part in kept).split("\n")
    return "\n".join(line for line in lines if not INSTRUCTOR_LINES.search(line))


def student_readme(tasks, repo_root, instructor_readme: str = "") -> str:
    """The README.md of a student copy of ``repo_root`` (the checkout with the solution markers) for ``tasks``."""
    markers = [task.pytest_marker for task in tasks]
    cpp = [task for task in tasks if any(f.endswith((".cpp", ".cc", ".cxx", ".h", ".hpp", ".cu")) for f in task.files)]
    text = START.format(
        first_marker=markers[0] if markers else "hw1_autograd",
        all_markers_or=" and not ".join(markers) if markers else "",
        tasks="\n".join(_task_section(i, task, task_functions(repo_root, task)) for i, task in enumerate(tasks, 1)),
        cpp_marker=cpp[0].pytest_marker if cpp else "kernels",
    )
    if not cpp:
        text = text[:text.index("## The C++ task")] + text[text.index("## Stepping"):]
    project = _project_sections(instructor_readme)
    if project:
        text += "\n## About minitx\n\nThe project's own documentation, as the rest of the course uses it.\n\n" + project
    return text
