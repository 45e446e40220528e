"""Every exercise's tests must reject plausible wrong answers, and accept the reference.

Wrong answers live in ``tests/fixtures/wrong/<lesson>/<exercise>__<what_is_wrong>.py``: the full
text of a replacement answer cell. For each one, the lesson's solution notebook is run in-process
with that cell replaced, and at least one test cell of the exercise must fail.
"""
from pathlib import Path

import pytest

from autograder.authoring import cell_kind
from autograder.inproc import run_notebook

import nbformat

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "wrong"
SOLUTIONS = ROOT / "solutions"


def _lessons():
    return sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").exists()) if SOLUTIONS.exists() else []


def _exercises(lesson):
    nb = nbformat.read(str(SOLUTIONS / lesson / f"{lesson}.ipynb"), as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if cell_kind(c) == "solution"]


def _fixtures():
    return sorted(FIXTURES.glob("*/*__*.py")) if FIXTURES.exists() else []


@pytest.mark.parametrize("lesson", [l for l in _lessons() if not l.startswith("00")])
def test_each_exercise_has_two_wrong_answers(lesson):
    have = {}
    for f in (FIXTURES / lesson).glob("*__*.py"):
        have.setdefault(f.name.split("__")[0], []).append(f.name)
    short = {ex: len(have.get(ex, [])) for ex in _exercises(lesson) if len(have.get(ex, [])) < 2}
    assert not short, f"{lesson}: exercises with fewer than 2 wrong-answer fixtures: {short}"


@pytest.mark.parametrize("fixture", _fixtures(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_wrong_answer_is_rejected(fixture):
    lesson = fixture.parent.name
    exercise = fixture.name.split("__")[0]
    nb = SOLUTIONS / lesson / f"{lesson}.ipynb"
    res = run_notebook(nb, replace={exercise: fixture.read_text()}, stop_after_tests_of=exercise)
    mine = [t for t in res.tests if t == f"test_{exercise}" or t.startswith(f"test_{exercise}_")]
    assert mine, f"no test cells ran for {exercise}"
    failed = [t for t in mine if res.tests[t] is not None]
    assert failed, f"{fixture.name}: every test of {exercise!r} passed a wrong answer"
