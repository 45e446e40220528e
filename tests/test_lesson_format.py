"""Every solutions notebook has the standard first cells, unique grade ids, hidden tests for every
exercise and well-behaved test cells (docs/lessons.md); graded lessons have enough exercises and
points and run quietly and fast; the linter itself rejects lessons that break those rules."""
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import cell_kind, from_py
from autograder.inproc import run_notebook
from autograder.layout import Layout
from autograder.lint import structure_problems

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = Layout(ROOT)
MINI = ROOT / "tests" / "fixtures" / "minilesson" / "01_mini.py"


@pytest.mark.parametrize("lesson", LAYOUT.lessons())
def test_solution_notebook_format(lesson):
    nb = nbformat.read(str(LAYOUT.source_notebook(lesson)), as_version=4)
    nbformat.validate(nb)
    assert structure_problems(nb) == []


GRADED = [l for l in LAYOUT.lessons() if not l.startswith("00")]
MIN_EXERCISES = {"01_containers": 8}  # the bar for lesson 01; 6 for every later lesson


@pytest.mark.parametrize("lesson", GRADED)
def test_graded_lesson_has_enough_exercises_and_points(lesson):
    nb = nbformat.read(str(LAYOUT.source_notebook(lesson)), as_version=4)
    exercises = [c for c in nb.cells if cell_kind(c) == "solution"]
    points = sum(c.metadata["nbgrader"]["points"] for c in nb.cells if cell_kind(c) == "test")
    assert len(exercises) >= MIN_EXERCISES.get(lesson, 6), f"{lesson}: {len(exercises)} exercises"
    assert points >= 40, f"{lesson}: {points} points"


@pytest.mark.parametrize("lesson", LAYOUT.lessons())
def test_solution_passes_its_tests_quietly_and_fast(lesson):
    """Every solution notebook, lesson 00 included, runs top to bottom with no error."""
    res = run_notebook(LAYOUT.source_notebook(lesson))
    assert not res.errors, f"cells failed: {res.errors}"
    assert res.failed() == [], f"tests failed on the solution: { {t: res.tests[t] for t in res.failed()} }"
    assert not res.stderr, f"test cells wrote to stderr (nbgrader scores that 0): {res.stderr}"
    assert res.cpu_seconds < 60, f"{lesson} took {res.cpu_seconds:.1f} s of CPU"


def test_the_linter_catches_bad_test_cells():
    text = MINI.read_text()
    shown = text.rstrip("\n") + "\nscale(0) == 0\n"  # the last cell now ends by showing a value
    assert any("test_scale_noisy ends with a bare expression" in p for p in structure_problems(from_py(shown)))
    flaky = text.replace("[test id=test_scale_noisy points=2]",
                         "[test id=test_scale_noisy points=2]\n@settings(max_examples=5)\ndef _t(): pass")
    assert any("without derandomize=True" in p for p in structure_problems(from_py(flaky)))


def test_lesson_00_is_present():
    assert "00_welcome" in LAYOUT.lessons()


def test_the_linter_catches_broken_lessons():
    text = MINI.read_text()
    assert structure_problems(from_py(text)) == []
    no_hidden = text.replace("### BEGIN HIDDEN TESTS\nassert add(-5, 5) == 0", "assert add(-5, 5) == 0") \
                    .replace("### END HIDDEN TESTS\n\n# %% [solution id=scale]", "\n# %% [solution id=scale]")
    assert "exercise add has no hidden tests" in structure_problems(from_py(no_hidden))
    dup = from_py(text)
    next(c for c in dup.cells if c.id == "test_scale_hidden").metadata["nbgrader"]["grade_id"] = "test_scale"
    assert "duplicate grade ids: ['test_scale']" in structure_problems(dup)
    stray = text.replace("[test id=test_scale_noisy points=2]", "[test id=test_noisy points=2]")
    assert any("does not name an exercise" in p for p in structure_problems(from_py(stray)))
    no_setup = text.replace("[setup id=setup]", "[code]")
    assert any("setup" in p for p in structure_problems(from_py(no_setup)))
