"""Lesson 01's solution notebook: passes its own tests quietly, fast, and has the required shape."""
import ast
import contextlib
import io
import re
import time
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import cell_kind

NB = Path(__file__).resolve().parent.parent / "solutions" / "01_containers" / "01_containers.ipynb"
_MAGIC = re.compile(r"^\s*[%!]")


def _cells():
    nb = nbformat.read(str(NB), as_version=4)
    return [(cell_kind(c), c.metadata.get("nbgrader", {}), c.source) for c in nb.cells]


def _code(src: str) -> str:
    # IPython magics are not Python; "pass" keeps an `if` whose only body line is a magic valid
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", l) for l in src.splitlines())


@pytest.fixture(scope="module")
def run():
    """Execute every code cell once, in order, recording per-cell errors and stderr."""
    import matplotlib
    matplotlib.use("Agg")
    ns, out = {"__name__": "__main__"}, {}
    t0 = time.process_time()
    for kind, meta, src in _cells():
        if kind == "markdown":
            continue
        err, so, se = None, io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
                exec(compile(_code(src), f"<{meta.get('grade_id', kind)}>", "exec"), ns)
        except Exception as e:  # noqa: BLE001
            err = f"{type(e).__name__}: {e}"
        out[meta.get("grade_id", f"cell{len(out)}")] = (kind, err, se.getvalue())
    return out, time.process_time() - t0


def test_solution_passes_every_test_quietly(run):
    cells, _ = run
    errors = {k: e for k, (_, e, _) in cells.items() if e}
    assert not errors, f"cells failed: {errors}"
    noisy = {k: s[:200] for k, (kind, _, s) in cells.items() if kind == "test" and s}
    assert not noisy, f"test cells wrote to stderr (nbgrader scores that 0): {noisy}"


def test_solution_runs_in_under_60_cpu_seconds(run):
    _, cpu = run
    assert cpu < 60, f"solution notebook took {cpu:.1f} s of CPU"


def test_lesson_shape():
    cells = _cells()
    exercises = [m["grade_id"] for k, m, _ in cells if k == "solution"]
    tests = [(m["grade_id"], m["points"], s) for k, m, s in cells if k == "test"]
    assert len(exercises) >= 8, exercises
    assert sum(p for _, p, _ in tests) >= 40
    for ex in exercises:
        mine = [(t, s) for t, _, s in tests if t == f"test_{ex}" or t.startswith(f"test_{ex}_")]
        assert mine, f"exercise {ex} has no test cell"
        assert any("### BEGIN HIDDEN TESTS" in s for _, s in mine), f"exercise {ex} has no hidden tests"
    for tid, _, src in tests:
        body = ast.parse(_code(src)).body
        assert body and not isinstance(body[-1], ast.Expr), f"{tid} ends with a bare expression"
        if "@_settings(" in src:
            assert all("derandomize=True" in line for line in src.splitlines() if "@_settings(" in line), tid
    sources = "\n".join(s for _, _, s in cells)
    assert "MyPriorityQueue(Greater())" in sources, "the plug-it-in cell must use the learner's heap"
