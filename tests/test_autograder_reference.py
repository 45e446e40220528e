"""No credit for the reference (course.grading + course.grading_rules), checked in-process.

Every lesson's answers that lean on the reference (``tests/fixtures/reference/<lesson>/<exercise>.py``,
the whole answer cell: an import, an alias, an inherited method, a ``super()`` call, a forbidden
numpy function) fail every test of their exercise with the guard's message; stubs fail in one line;
a patched numpy changes nothing. The real-kernel versions are in tests/test_autograder_hostile.py.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.authoring import cell_kind
from autograder.inproc import exercise_of, run_notebook
from autograder.layout import Layout
from autograder.notebooks import merge, released_stub
from course.grading_rules import RULES

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = Layout(ROOT)
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
GUARD_MESSAGE = ("calls the reference", "write it yourself", "your answer uses", "does not define",
                 "of whole")


def _source(lesson):
    return nbformat.read(str(LAYOUT.source_notebook(lesson)), as_version=4)


def _exercises(nb):
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if cell_kind(c) == "solution"]


@pytest.mark.parametrize("lesson", LAYOUT.lessons())
def test_every_exercise_has_a_rule_and_every_test_cell_starts_its_guard(lesson):
    nb = _source(lesson)
    exercises = _exercises(nb)
    assert list(RULES[lesson]) == exercises, "course/grading_rules.py must list the exercises in lesson order"
    for cell in nb.cells:
        if cell_kind(cell) != "test":
            continue
        tid = cell.metadata["nbgrader"]["grade_id"]
        points = cell.metadata["nbgrader"]["points"]
        lines = cell.source.splitlines()
        assert lines[0].startswith(f"# {tid} ({points:g} point"), f"{tid}: first line must say what it checks and its points"
        assert f'_begin("{lesson}", "{exercise_of(tid, exercises)}")' in lines[2], f"{tid}: the guard must start the cell"
        assert lines[-1] == "_guard.end()", f"{tid}: the guard must end the cell"


def _cheats():
    return sorted(REFERENCE.glob("*/*.py"))


@pytest.mark.parametrize("fixture", _cheats(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_an_answer_leaning_on_the_reference_fails_every_test_of_its_exercise(fixture):
    lesson, exercise = fixture.parent.name, fixture.stem
    res = run_notebook(LAYOUT.source_notebook(lesson), replace={exercise: fixture.read_text()},
                       stop_after_tests_of=exercise)
    mine = {t: e for t, e in res.tests.items() if exercise_of(t, list(RULES[lesson])) == exercise}
    assert mine, f"no tests of {exercise} ran"
    for test, error in mine.items():
        assert error is not None and error.startswith("ReferenceUsed") and any(m in error for m in GUARD_MESSAGE), \
            f"{test}: {error}"
        assert f"exercise {list(RULES[lesson]).index(exercise) + 1} ({exercise})" in error or "of whole" in error


HOSTILE_TOP = """
import numpy, course.testing
numpy.array_equal = numpy.allclose = lambda *a, **k: True
numpy.isclose = lambda a, b, **k: numpy.ones(numpy.broadcast(a, b).shape, bool)
course.testing.assert_close = lambda *a, **k: None
"""


@pytest.mark.parametrize("lesson", LAYOUT.lessons())
def test_released_notebook_runs_clean_and_each_stub_test_says_so_in_one_line(lesson):
    """Only stubs and their tests fail; demo cells print one line; a patched numpy earns nothing."""
    nb = _source(lesson)
    replace = {c.metadata["nbgrader"]["grade_id"]: released_stub(c) for c in nb.cells if cell_kind(c) == "solution"}
    first = next(iter(replace))
    replace[first] = HOSTILE_TOP + replace[first]
    res = run_notebook(LAYOUT.source_notebook(lesson), replace=replace)
    assert not res.errors, f"demo cells failed on the released notebook: {res.errors}"
    for test, error in res.tests.items():
        ex = exercise_of(test, list(replace))
        n = list(RULES[lesson]).index(ex) + 1
        assert error is not None and error.startswith(f"NotImplementedError: exercise {n} ({ex}) is not implemented yet"), \
            f"{test}: {error}"


def test_patching_numpy_while_the_tests_run_fails_the_test_and_is_undone():
    import linecache

    import numpy

    answer = "def row_major_strides(shape):\n    return (1,) * len(shape)\n"
    linecache.cache["<answer cell>"] = (len(answer), None, answer.splitlines(True), "<answer cell>")
    ns: dict = {}
    exec(compile(answer, "<answer cell>", "exec"), ns)
    test_cell = ('from course.grading import begin\n'
                 'guard = begin("02_tensors", "row_major_strides")\n'
                 'import numpy\n'
                 'numpy.array_equal = lambda *a, **k: True  # as learner code called by a test could\n'
                 'guard.end()\n')
    original = numpy.array_equal
    with pytest.raises(AssertionError, match="replaced numpy.array_equal"):
        exec(compile(test_cell, "<test cell>", "exec"), ns)
    assert numpy.array_equal is original


def test_the_solutions_still_pass_under_the_guard_with_a_patched_numpy():
    nb = _source("01_containers")
    first = _exercises(nb)[0]
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == first)
    res = run_notebook(LAYOUT.source_notebook("01_containers"), replace={first: HOSTILE_TOP + cell.source})
    assert res.failed() == [] and not res.errors, (res.errors, {t: res.tests[t] for t in res.failed()})


def test_an_answer_cell_importing_the_reference_is_flagged_in_the_notes():
    source = _source("01_containers")
    learner = nbformat.read(str(LAYOUT.source_notebook("01_containers")), as_version=4)
    for cell in learner.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "remove_if":
            cell.source = "from course.containers import remove_if as my_remove_if"
    _, notes = merge(source, learner)
    assert any("answer cell remove_if imports course.containers.remove_if" in n for n in notes), notes
    _, clean = merge(source, nbformat.read(str(LAYOUT.source_notebook("01_containers")), as_version=4))
    assert not any("imports" in n for n in clean), clean


def test_a_blocked_gemm_may_multiply_whole_matrices_only_when_they_fit_a_tile():
    import numpy as np

    from course.grading import ReferenceUsed, watch

    a, b = np.ones((5, 9), np.float32), np.ones((9, 3), np.float32)
    assert (watch(a, 16) @ watch(b, 16)).shape == (5, 3)  # both fit one 16 x 16 tile
    assert type(watch(a, 4)[:4, :4] @ watch(b, 4)[:4, :3]) is np.ndarray  # tiles are fine
    for product in (lambda x, y: x @ y, np.dot, np.matmul, lambda x, y: x.dot(y)):
        with pytest.raises(ReferenceUsed, match="whole"):
            product(watch(a, 4), watch(b, 4))
