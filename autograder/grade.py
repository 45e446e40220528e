"""``python -m autograder grade NOTEBOOK``: self-grade one notebook, anywhere, without nbgrader.

The learner's answers are put into the source notebook (``notebooks.merge``), the result runs in a
separate kernel under the hardened limits (``isolate``), and each test cell is scored from its
execute status with the source's points (``scoring``).
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.isolate import execute_isolated
from autograder.layout import Layout
from autograder.notebooks import UnreadableNotebook, merge, read_learner_notebook, source_info
from autograder.scoring import TestResult, score_tests
from autograder.settings import Limits


@dataclass
class Report:
    lesson: str
    tests: list[TestResult]
    notes: list[str] = field(default_factory=list)
    error: str | None = None      # the notebook could not be graded at all (score is 0)
    seconds: float = 0.0
    executed: nbformat.NotebookNode | None = None

    @property
    def score(self) -> float:
        return float(sum(t.score for t in self.tests))

    @property
    def max_score(self) -> float:
        return float(sum(t.points for t in self.tests))

    def as_json(self) -> dict:
        return {"lesson": self.lesson, "score": self.score, "max_score": self.max_score,
                "tests": [{"id": t.id, "points": t.points, "score": t.score, "message": t.message}
                          for t in self.tests]}

    def table(self) -> str:
        width = max([len(t.id) for t in self.tests] + [4])
        lines = [f"Lesson {self.lesson}"]
        if self.error:
            lines.append(f"ERROR: {self.error}")
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"{'test'.ljust(width)}  points  result")
        for t in self.tests:
            result = "passed" if t.passed else f"FAILED  {t.message}"
            lines.append(f"{t.id.ljust(width)}  {_num(t.score):>2}/{_num(t.points):<3}  {result}")
        lines.append(f"{'total'.ljust(width)}  {_num(self.score)}/{_num(self.max_score)}")
        return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def grade_notebook(path: Path, layout: Layout, lesson: str | None = None,
                   limits: Limits | None = None) -> Report:
    """Grade ``path``; raises ``LayoutError`` when the lesson is unknown (grading cannot run)."""
    limits = limits or Limits.from_env()
    lesson = lesson or layout.infer_lesson(path)
    source_path = layout.source_notebook(lesson)
    info = source_info(nbformat.read(str(source_path), as_version=4))
    start = time.monotonic()
    try:
        learner = read_learner_notebook(path)
    except UnreadableNotebook as e:
        tests = [TestResult(t, p, 0.0, "not graded: the notebook could not be read") for t, p in info.tests.items()]
        return Report(lesson, tests, error=str(e))
    merged, notes = merge(info.nb, learner)
    # The kernel runs in a scratch folder holding the lesson's assets as the instructor shipped
    # them (as nbgrader's autograde does): a learner's edited or missing data file changes nothing.
    with tempfile.TemporaryDirectory(prefix=f"grade-{lesson}-") as scratch:
        copy_assets(source_path.parent, Path(scratch))
        executed, outcome = execute_isolated(merged, Path(scratch), limits)
    if outcome.timed_out:
        notes.append(f"the notebook ran longer than {limits.submission_timeout} s and was stopped; "
                     "tests that had not finished count as failed")
    elif outcome.returncode != 0:
        notes.append("the grading kernel stopped unexpectedly: " + _last_line(outcome.log))
    return Report(lesson, score_tests(executed, info), notes, seconds=time.monotonic() - start,
                  executed=executed)


def copy_assets(lesson_dir: Path, dest: Path) -> None:
    """Copy a lesson folder's files except notebooks and caches into ``dest``."""
    ignore = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__", "*.pyc")
    shutil.copytree(lesson_dir, dest, ignore=ignore, dirs_exist_ok=True)


def _last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "no message"


def print_report(report: Report, as_json: bool) -> None:
    if as_json:
        if report.error:
            print(f"error: {report.error}", file=sys.stderr)
        print(json.dumps(report.as_json()))
    else:
        print(report.table())
