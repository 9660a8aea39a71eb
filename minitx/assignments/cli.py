"""``minitx assignment make | grade | list``: the argparse wiring, hooked into minitx/cli.py by ``add_subparser``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minitx.assignments.grade import GradingError, grade, score_table, write_json
from minitx.assignments.markers import find_blocks, language_of
from minitx.assignments.student import make_student_copy
from minitx.assignments.tasks import TASKS


def default_repo_root() -> Path:
    """The checkout minitx is imported from (an editable install), else the current folder."""
    import minitx

    candidate = Path(minitx.__file__).resolve().parents[1]
    return candidate if (candidate / "setup.py").exists() else Path.cwd()


def _task_list(text):
    return [t for t in text.split(",") if t] if text else None


def make_command(args) -> int:
    copy = make_student_copy(args.repo or default_repo_root(), args.out, task_ids=_task_list(args.tasks),
                             overwrite=args.force)
    print(f"wrote {len(copy.files)} files to {copy.out_dir}: {copy.num_stubs} solution blocks stubbed in "
          f"{len(copy.stubs)} files, {len(copy.hidden)} hidden test files and {len(copy.instructor_only)} "
          f"instructor-only docs left out; README.md written for the student")
    for path, count in sorted(copy.stubs.items()):
        print(f"  {path}: {count}")
    return 0


def solutions_repo(*candidates):
    """The first checkout among ``candidates`` (default: the one minitx is imported from) that holds solution
    blocks, to name each task's functions in the score table; None when none does (e.g. in a student copy)."""
    for root in [c for c in candidates if c]:
        root = Path(root)
        for task in TASKS:
            for relative in task.files:
                path = root / relative
                if path.is_file() and language_of(relative) and "SOLUTION" in path.read_text(encoding="utf-8") \
                        and find_blocks(path.read_text(encoding="utf-8"), language_of(relative), relative):
                    return root
    return None


def grade_command(args) -> int:
    def progress(line):
        print(line, file=sys.stderr, flush=True)

    try:
        scores = grade(args.student_dir, task_ids=_task_list(args.tasks), reference=args.reference,
                       timeout=args.timeout, solutions=solutions_repo(args.reference, default_repo_root()),
                       log=progress)
    except GradingError as error:
        print(f"minitx: error: {error}", file=sys.stderr, flush=True)
        return 2
    print(score_table(scores))
    if args.json:
        write_json(scores, args.json)
        print(f"scores written to {args.json}")
    return 0


def list_command(args) -> int:
    root = Path(args.repo or default_repo_root())
    for task in TASKS:
        counts = []
        for relative in task.files:
            path = root / relative
            blocks = find_blocks(path.read_text(encoding="utf-8"), language_of(relative), relative) \
                if path.is_file() else None
            counts.append(f"{relative} ({'missing' if blocks is None else len(blocks)})")
        print(f"{task.id:<24} -m {task.pytest_marker:<24} {task.points:g} pts  {task.description}")
        print(f"{'':<24} blocks: {', '.join(counts)}")
    return 0


def add_subparser(subparsers) -> argparse.ArgumentParser:
    """Add ``assignment`` (with make / grade / list) to the ``minitx`` command's subparsers."""
    parser = subparsers.add_parser("assignment", help="course tooling: student copies and the autograder")
    commands = parser.add_subparsers(dest="assignment_command", metavar="ACTION", required=True)

    make = commands.add_parser("make", help="write a student copy with the solution blocks stubbed out")
    make.add_argument("--out", required=True, help="folder for the student copy (must be empty or absent)")
    make.add_argument("--repo", help="repository to copy (default: the checkout minitx is imported from)")
    make.add_argument("--tasks", help="comma-separated task ids to stub (default: all)")
    make.add_argument("--force", action="store_true", help="replace the contents of a non-empty --out")
    make.set_defaults(func=make_command)

    grade_parser = commands.add_parser("grade", help="run each task's tests in a student copy and score them")
    grade_parser.add_argument("student_dir", help="the student's copy of the repository")
    grade_parser.add_argument("--json", help="also write the scores to this JSON file")
    grade_parser.add_argument("--tasks", help="comma-separated task ids to grade (default: all)")
    grade_parser.add_argument("--reference", help="instructor repository whose tests/ (hidden ones included) "
                                                  "replace the student's for grading")
    grade_parser.add_argument("--timeout", type=float, default=600.0, help="seconds per task (default 600)")
    grade_parser.set_defaults(func=grade_command)

    listing = commands.add_parser("list", help="the tasks, their markers and the solution blocks found")
    listing.add_argument("--repo", help="repository to inspect (default: the checkout minitx is imported from)")
    listing.set_defaults(func=list_command)
    return parser
