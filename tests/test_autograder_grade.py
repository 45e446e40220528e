"""``python -m autograder grade``: real kernels, real (short) limits, a purpose-built mini lesson."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.grade import grade_notebook
from autograder.layout import Layout
from autograder.settings import Limits
from fixtures.minilesson.mkcourse import LESSON, answer, cell, make_course, variant

ROOT = Path(__file__).resolve().parent.parent
FAST = Limits(cell_timeout=4, submission_timeout=90, startup_timeout=60, output_chars=5_000)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    source = make_course(root)
    return Layout(root), source


def _cli(*args, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOGRADER_CELL_TIMEOUT": "4", "AUTOGRADER_TIMEOUT": "90"}
    return subprocess.run([sys.executable, "-m", "autograder", "--root", str(root), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def _scores(report) -> dict[str, float]:
    return {t.id: t.score for t in report.tests}


def test_solution_gets_full_marks_and_stderr_warnings_do_not_zero_a_pass(course):
    layout, source = course
    report = grade_notebook(source, layout, limits=FAST)
    assert (report.score, report.max_score) == (6, 6), report.table()
    noisy = cell(report.executed, "test_scale_noisy")
    text = json.dumps(noisy.outputs)
    # the UserWarning reached stderr and the cell still scored; Numba's warning never printed
    assert "stray UserWarning" in text and "stray text on stderr" in text
    assert "NumbaPerformanceWarning" not in text and "low occupancy" not in text


def test_released_notebook_scores_zero_and_json_has_the_exact_shape(course, tmp_path):
    layout, source = course
    # a learner's copy of the lesson: every answer cell still the stub nbgrader wrote
    from autograder.notebooks import released_stub

    def stubs(nb):
        for c in nb.cells:
            if c.metadata.get("nbgrader", {}).get("solution"):
                c.source = released_stub(c)
    nb = variant(source, tmp_path / LESSON / f"{LESSON}.ipynb", edit=stubs)
    proc = _cli("grade", str(nb), "--json", root=layout.root)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == ["lesson", "score", "max_score", "tests"]
    assert (data["lesson"], data["score"], data["max_score"]) == (LESSON, 0, 6)
    assert [t["id"] for t in data["tests"]] == ["test_add", "test_scale", "test_scale_hidden", "test_scale_noisy"]
    assert all(set(t) == {"id", "points", "score", "message"} for t in data["tests"])
    assert all("NotImplementedError" in t["message"] for t in data["tests"])
    table = _cli("grade", str(nb), root=layout.root)
    assert "total" in table.stdout and "0/6" in table.stdout and "NotImplementedError" in table.stdout


def test_deleted_cells_and_endless_cuda_kernel_still_count_the_other_tests(course, tmp_path):
    layout, source = course
    nb = variant(source, tmp_path / "sub" / f"{LESSON}-Copy1.ipynb",  # lesson inferred from the name
                 replace={"scale": answer("scale_cuda_loop.py")},
                 delete=("add", "test_scale_hidden"))
    start = time.monotonic()
    report = grade_notebook(nb, layout, limits=FAST)
    assert time.monotonic() - start < 80
    assert report.lesson == LESSON
    got = _scores(report)
    # add was deleted: not answered; scale(4) spins forever on the simulator and is timed out;
    # the deleted hidden test is put back and passes, as does the noisy one.
    assert got == {"test_add": 0, "test_scale": 0, "test_scale_hidden": 1, "test_scale_noisy": 2}, report.table()
    msgs = {t.id: t.message for t in report.tests}
    assert msgs["test_add"].startswith("NotImplementedError")
    assert msgs["test_scale"].startswith("CellTimeoutError")
    assert any("test_scale_hidden was deleted" in n for n in report.notes)


def test_tampered_metadata_and_output_flood_change_nothing(course, tmp_path):
    layout, source = course

    def tamper(nb):
        cell(nb, "test_add").metadata["nbgrader"]["points"] = 1000.0
        t = cell(nb, "test_scale")  # a test re-tagged as an answer and emptied
        t.metadata["nbgrader"].update(solution=True, grade=False, locked=False)
        t.source = "pass"
        bonus = nbformat.v4.new_code_cell("pass")  # a learner-added 'test' worth 1000
        bonus.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                      "grade_id": "bonus", "points": 1000.0, "schema_version": 3}
        nb.cells.insert(3, bonus)
        nb.cells.insert(4, nbformat.v4.new_code_cell(answer("add_flood.py")))
    nb = variant(source, tmp_path / LESSON / f"{LESSON}.ipynb",
                 replace={"scale": answer("scale_wrong.py")}, edit=tamper)
    report = grade_notebook(nb, layout, lesson=LESSON, limits=FAST)
    assert report.max_score == 6 and [t.id for t in report.tests][0] == "test_add"
    # add is right (2 points, not 1000); the restored test_scale rejects scale = 2x
    assert _scores(report) == {"test_add": 2, "test_scale": 0, "test_scale_hidden": 0, "test_scale_noisy": 2}
    assert any("grading metadata" in n for n in report.notes)
    flood = next(c for c in report.executed.cells if "flood" in c.source and c.cell_type == "code")
    stored = sum(len(o.get("text", "")) for o in flood.outputs)
    assert stored <= FAST.output_chars + 200, stored
    assert "output truncated by the grader" in json.dumps(flood.outputs)


def test_code_that_ignores_interrupts_is_killed_by_the_outer_limit(course, tmp_path, monkeypatch):
    layout, source = course
    import psutil
    import uuid

    mark = uuid.uuid4().hex  # inherited by the worker and its kernel: finds them even when orphaned
    monkeypatch.setenv("AUTOGRADER_TEST_MARK", mark)
    nb = variant(source, tmp_path / LESSON / f"{LESSON}.ipynb",
                 replace={"add": answer("add_ignores_interrupts.py")})
    limits = Limits(cell_timeout=2, submission_timeout=15, startup_timeout=60)
    start = time.monotonic()
    report = grade_notebook(nb, layout, limits=limits)
    assert time.monotonic() - start < 60
    assert report.score == 0 and report.max_score == 6
    assert any("was stopped" in n for n in report.notes), report.notes
    assert all("time limit" in t.message for t in report.tests), report.table()
    time.sleep(0.5)

    def marked(p):
        try:
            return p.environ().get("AUTOGRADER_TEST_MARK") == mark and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    leftovers = [p for p in psutil.process_iter() if p.pid != os.getpid() and marked(p)]
    assert not leftovers, f"processes survived the kill: {leftovers}"


def test_invalid_json_gets_a_clear_message(course, tmp_path):
    layout, _ = course
    bad = tmp_path / f"{LESSON}.ipynb"
    bad.write_text('{"cells": [ {"cell_type": "code", ')
    proc = _cli("grade", str(bad), "--json", root=layout.root)
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert (data["score"], data["max_score"]) == (0, 6)
    assert "not a valid notebook: invalid JSON at line 1" in proc.stderr
    table = _cli("grade", str(bad), root=layout.root)
    assert "is not a valid notebook" in table.stdout and "0/6" in table.stdout


def test_unknown_lesson_is_an_error_not_a_grade(course, tmp_path):
    layout, source = course
    nb = tmp_path / "homework.ipynb"
    nb.write_text(source.read_text())
    proc = _cli("grade", str(nb), root=layout.root)
    assert proc.returncode == 2 and "pass --lesson" in proc.stderr
    proc = _cli("grade", str(nb), "--lesson", "07_nope", root=layout.root)
    assert proc.returncode == 2 and "unknown lesson" in proc.stderr
