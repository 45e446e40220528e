"""Every solutions notebook has the standard first cells, unique grade ids and hidden tests for
every exercise (docs/lessons.md); the linter itself rejects lessons that break those rules."""
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import from_py
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
