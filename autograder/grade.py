"""``python -m autograder grade NOTEBOOK``: self-grade one notebook, anywhere, without nbgrader.

The learner's answers are put into the source notebook (``notebooks.merge``), the result runs in a
separate kernel under the hardened limits (``isolate``), and each test cell is scored from its
execute status with the source's points (``scoring``).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.isolate import execute_isolated
from autograder.layout import Layout
from autograder.notebooks import UnreadableNotebook, merge, read_learner_notebook, source_info
from autograder.sandbox import known_refusal
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
    sandbox: str = ""             # what the sandbox could apply on this machine (sandbox.Report)

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
            result = (f"passed  {t.message}".rstrip() if t.passed else f"FAILED  {t.message}")
            lines.append(f"{t.id.ljust(width)}  {_num(t.score):>2}/{_num(t.points):<3}  {result}")
        lines.append(f"{'total'.ljust(width)}  {_num(self.score)}/{_num(self.max_score)}")
        if self.sandbox:
            lines.append(f"sandbox: {self.sandbox}")
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
    if known_refusal():  # the sandbox refused an earlier notebook of this run: this one too
        return _not_started(lesson, info, notes, known_refusal(), "", start)
    # The kernel runs in a sandbox whose working folder holds the lesson's assets as the
    # instructor shipped them (as nbgrader's autograde does): a learner's edited or missing data
    # file changes nothing; the course root (solutions, hidden tests) is out of its sight.
    executed, outcome, box = execute_isolated(merged, source_path.parent, limits, hide=[layout.root])
    with box:
        applied, refused = box.report(), box.refused()
    if refused:
        return _not_started(lesson, info, notes, refused, applied.summary(), start)
    if outcome.timed_out:
        notes.append(f"the notebook ran longer than {limits.submission_timeout} s and was stopped; "
                     "tests that had not finished count as failed")
    elif outcome.returncode != 0:
        notes.append("the grading kernel stopped unexpectedly: " + _last_line(outcome.log))
    tests = score_tests(executed, info)
    if layout.mode == "class":
        tests = class_mode_tests(tests, layout.release_info().get("lessons", {}).get(lesson, {}))
        notes.append("class mode: only the visible tests ran here; the hidden tests run when your "
                     "instructor grades your submission")
    return Report(lesson, tests, notes, seconds=time.monotonic() - start,
                  executed=executed, sandbox=applied.summary() if applied else "not started")


def _not_started(lesson: str, info, notes: list[str], why: str, sandbox: str, start: float) -> Report:
    """The sandbox did not start the kernel (the grader's environment, not the notebook): every
    test scores 0 and the report's error says why and what to do."""
    tests = [TestResult(t, p, 0.0, "not graded: the grading kernel was not started") for t, p in info.tests.items()]
    return Report(lesson, tests, notes, error=why, seconds=time.monotonic() - start, sandbox=sandbox)


def class_mode_tests(tests: list[TestResult], info: dict) -> list[TestResult]:
    """In a class distribution a test whose checks are all hidden cannot be judged here (its
    released cell holds no check): it scores 0 with a note; a partly hidden one says so."""
    hidden = info.get("hidden", {})
    out = []
    for t in tests:
        part = hidden.get(t.id)
        if part == "all":
            t = TestResult(t.id, t.points, 0.0, "hidden test: runs at submission")
        elif part == "some":
            what = "visible part passed" if t.passed else t.message
            t = TestResult(t.id, t.points, t.score, f"{what}; hidden part runs at submission")
        out.append(t)
    return out


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
