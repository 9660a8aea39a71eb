"""Assignment tooling: solution markers -> student copy -> autograder.

    make_student_copy(repo_root, out_dir)   the repository with every solution block stubbed out
    grade(student_dir)                      run each task's marked tests there; a list of TaskScore
    TASKS                                   the homework table (id = pytest marker, files, points)

CLI: ``minitx assignment make --out DIR``, ``minitx assignment grade DIR [--json FILE]``,
``minitx assignment list``. The workflow for instructors: docs/assignments.md.
"""
from minitx.assignments.grade import GradingError, TaskScore, grade, score_table, scores_to_json
from minitx.assignments.markers import find_blocks, strip_solutions
from minitx.assignments.student import StudentCopy, make_student_copy
from minitx.assignments.tasks import TASKS, Task, select_tasks

__all__ = ["TASKS", "GradingError", "StudentCopy", "Task", "TaskScore", "find_blocks", "grade", "make_student_copy",
           "score_table", "scores_to_json", "select_tasks", "strip_solutions"]
