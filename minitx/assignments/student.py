"""``make_student_copy``: the repository as students receive it, with every solution block stubbed out.

What is copied: the files git knows (tracked, plus untracked ones that .gitignore does not exclude), or,
outside a git checkout, every file; never ``.git``, build outputs or compiled extensions. Reference tests
an instructor keeps from students live under a ``hidden`` folder (``tests/hidden/...``) and are left out;
``grade(..., reference=repo)`` puts them back when scoring. Instructor-only documentation (INSTRUCTOR_ONLY:
the marker and grading guide) is left out too, and README.md is replaced by one written for the student
(minitx/assignments/readme.py: start here, the tasks with their files and functions).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from minitx.assignments.markers import language_of, strip_solutions
from minitx.assignments.readme import student_readme
from minitx.assignments.tasks import TASKS, select_tasks

SKIP_DIRS = {".git", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis", ".eggs", ".venv", "venv"}
SKIP_SUFFIXES = (".so", ".pyd", ".dll", ".dylib", ".o", ".pyc")
HIDDEN_DIR = "hidden"
INSTRUCTOR_ONLY = ("docs/assignments.md",)  # how markers, student copies and grading work
README = "README.md"


@dataclass
class StudentCopy:
    """What ``make_student_copy`` did: the output folder, files copied, stubs per file, hidden files left out."""

    out_dir: Path
    files: list = field(default_factory=list)
    stubs: dict = field(default_factory=dict)       # relative path -> number of blocks replaced
    hidden: list = field(default_factory=list)
    instructor_only: list = field(default_factory=list)  # docs left out of the copy

    @property
    def num_stubs(self) -> int:
        return sum(self.stubs.values())


def repository_files(repo_root) -> list:
    """Relative paths of the files to ship, sorted: git's view of the tree when it is a checkout."""
    root = Path(repo_root)
    try:
        listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                 cwd=root, capture_output=True, check=True).stdout.decode()
        paths = [p for p in listing.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    return sorted(p for p in paths if _shippable(Path(p)) and (root / p).is_file())


def _shippable(path: Path) -> bool:
    if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in path.parts[:-1]):
        return False
    return not path.name.endswith(SKIP_SUFFIXES)


def is_hidden_test(path) -> bool:
    """A reference test kept from students: any file inside a folder named ``hidden`` under ``tests``."""
    parts = Path(path).parts
    return "tests" in parts and HIDDEN_DIR in parts[parts.index("tests"):-1]


def make_student_copy(repo_root, out_dir, task_ids=None, tasks=TASKS, overwrite=False) -> StudentCopy:
    """Write the student copy of ``repo_root`` into ``out_dir``.

    ``task_ids``: stub only the blocks in those tasks' files (all blocks in every file when None).
    ``overwrite``: allow a non-empty ``out_dir`` (its old contents are deleted first).
    Raises ValueError naming file:line for an unbalanced or misplaced marker, before anything is written.
    """
    root, out = Path(repo_root).resolve(), Path(out_dir).resolve()
    if out == root or root in out.parents:
        raise ValueError(f"the student copy {out} must be outside the repository {root}")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite=True (--force) to replace it")
        shutil.rmtree(out)
    selected = select_tasks(task_ids, tasks)
    only = None if task_ids is None else {f for task in selected for f in task.files}

    result, contents = StudentCopy(out), {}
    for relative in repository_files(root):
        if is_hidden_test(relative):
            result.hidden.append(relative)
            continue
        if relative in INSTRUCTOR_ONLY:
            result.instructor_only.append(relative)
            continue
        language = language_of(relative)
        if language is not None and (only is None or relative in only):
            text = (root / relative).read_text(encoding="utf-8")
            text, blocks = strip_solutions(text, language, relative)
            if blocks:
                result.stubs[relative] = len(blocks)
            contents[relative] = text
        else:
            contents[relative] = None  # copied byte for byte
        result.files.append(relative)
    if README in contents:  # the student's README; the task functions come from the solution markers here
        contents[README] = student_readme(selected, root, (root / README).read_text(encoding="utf-8"))

    for relative, text in contents.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            shutil.copy2(root / relative, target)
        else:
            target.write_text(text, encoding="utf-8")
            shutil.copymode(root / relative, target)
    return result
