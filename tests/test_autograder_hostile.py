"""Hostile and reference-leaning submissions against every lesson, graded for real.

One notebook per lesson (one real kernel each, to keep the suite short) combines everything a
learner might try: answers that lean on the reference (tests/fixtures/reference/<lesson>/), a cell
that patches numpy and ``course.testing`` before the tests, skip tags on every cell, an edited and a
deleted test cell, an output flood, an endless loop, and ``os._exit`` before the last test cell.
The other exercises carry the instructor's solution: they must still earn full marks, while the
reference-leaning answers earn nothing and every failure says why in one line.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import cell_kind
from autograder.grade import grade_notebook
from autograder.inproc import exercise_of
from autograder.layout import Layout
from autograder.settings import Limits
from course.grading_rules import RULES

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = Layout(ROOT)
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
LIMITS = Limits(cell_timeout=15, submission_timeout=400, startup_timeout=120, output_chars=5_000)

PATCH = """import numpy, course.testing
numpy.array_equal = numpy.allclose = lambda *a, **k: True
course.testing.assert_close = lambda *a, **k: None
print("numpy and course.testing patched")"""
FLOOD = "print('x' * 100_000_000)"
LOOP = "while True:\n    pass"
EXIT = "import os\nos._exit(0)"


def _code(source: str, tags=("raises-exception", "skip-execution")):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def _hostile_notebook(lesson: str, path: Path) -> tuple[set, str, str, str]:
    """The learner's notebook; returns (cheated exercises, edited test, deleted test, last test)."""
    source = nbformat.read(str(LAYOUT.source_notebook(lesson)), as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells if cell_kind(c) == "solution"}
    cheats = {p.stem: p.read_text() for p in (REFERENCE / lesson).glob("*.py")}
    nb = nbformat.read(str(ROOT / "lessons" / lesson / f"{lesson}.ipynb"), as_version=4)
    tests = [c for c in nb.cells if cell_kind(c) == "test"]
    edited, deleted, last = tests[0], tests[1], tests[-1]
    for cell in nb.cells:
        kind = cell_kind(cell)
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if kind == "solution":
            cell.source = cheats.get(gid, solutions[gid])
        if cell.cell_type == "code":
            cell.metadata["tags"] = ["raises-exception", "skip-execution"]
    edited.source = "pass  # nothing to check here"
    nb.cells.remove(deleted)
    nb.cells.insert(0, _code(PATCH))
    at = nb.cells.index(last)
    nb.cells[at:at] = [_code(FLOOD), _code(LOOP), _code(EXIT)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    ids = lambda c: c.metadata["nbgrader"]["grade_id"]  # noqa: E731
    return set(cheats), ids(edited), ids(deleted), ids(last)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LAYOUT.lessons())
def test_hostile_and_reference_answers_are_graded_with_readable_messages(lesson, tmp_path):
    path = tmp_path / lesson / f"{lesson}.ipynb"
    cheats, edited, deleted, last = _hostile_notebook(lesson, path)
    report = grade_notebook(path, LAYOUT, limits=LIMITS)
    exercises = [c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(
        str(LAYOUT.source_notebook(lesson)), as_version=4).cells if cell_kind(c) == "solution"]
    table = report.table()
    for t in report.tests:
        ex = exercise_of(t.id, exercises)
        if t.id == last:
            assert t.score == 0 and ("died" in t.message or "DeadKernel" in t.message), table
        elif ex in cheats:
            assert t.score == 0 and t.message.startswith("ReferenceUsed"), table
            assert len(t.message.splitlines()) == 1
        elif not t.passed:  # a test may use an earlier exercise's answer: then that answer is named
            assert any(f"{d.split('.')[-1]}() calls the reference" in t.message
                       for c in cheats for d in RULES[lesson][c].defines), f"the solution of {ex} lost points:\n{table}"
    notes = "\n".join(report.notes)
    assert f"test cell {edited} was edited" in notes and f"test cell {deleted} was deleted" in notes, notes
    from course.grading import flagged_imports

    for ex in cheats:  # an answer cell importing its reference is named in the feedback
        if flagged_imports(lesson, ex, (REFERENCE / lesson / f"{ex}.py").read_text()):
            assert any(n.startswith(f"answer cell {ex} imports") for n in report.notes), notes
    cells = [c for c in report.executed.cells if c.cell_type == "code"]
    flood = next(c for c in cells if c.source == FLOOD)
    assert "output truncated by the grader" in json.dumps(flood.outputs)
    loop = next(c for c in cells if c.source == LOOP)
    assert "CellTimeoutError" in json.dumps(loop.outputs)
