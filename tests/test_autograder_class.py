"""``python -m autograder autograde``: a class through REAL nbgrader autograde + feedback.

One good, one broken (invalid JSON), one hostile (tampered metadata, an output flood, a kernel
crash via os._exit) and one that ignores interrupts (killed by the outer limit): everyone gets a
score, a feedback page and a CSV row, and the good student's grade comes from nbgrader's gradebook.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fixtures.minilesson.mkcourse import LESSON, answer, cell, make_course, variant

ROOT = Path(__file__).resolve().parent.parent


def _hostile(nb):
    cell(nb, "test_add").metadata["nbgrader"]["points"] = 1000.0
    cell(nb, "test_scale").metadata["nbgrader"].update(solution=True, grade=False)
    nb.cells.insert(3, nbformat.v4.new_code_cell(answer("add_flood.py")))


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    source = make_course(root)
    subs = root / "submissions"
    variant(source, subs / "alice" / LESSON / f"{LESSON}.ipynb")
    (subs / "bob" / LESSON).mkdir(parents=True)
    (subs / "bob" / LESSON / f"{LESSON}.ipynb").write_text("{ this is not json")
    variant(source, subs / "eve" / LESSON / "my answers.ipynb", edit=_hostile,
            replace={"scale": answer("scale_crashes_kernel.py")})
    variant(source, subs / "mallory" / LESSON / f"{LESSON}.ipynb",
            replace={"add": answer("add_ignores_interrupts.py")})
    work = root / "elsewhere"
    env = {**os.environ, "AUTOGRADER_OUTPUT_CHARS": "5000"}
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "--root", str(root), "autograde", str(subs),
         "--lesson", LESSON, "--course-dir", str(work), "--cell-timeout", "3", "--timeout", "30"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["student"]: r for r in csv.DictReader((work / f"grades-{LESSON}.csv").open())}
    return root, work, rows, proc.stdout


def test_every_student_gets_a_row_a_score_and_feedback(graded_class):
    _, work, rows, out = graded_class
    assert sorted(rows) == ["alice", "bob", "eve", "mallory"], out
    for student in rows:
        page = work / "feedback" / student / LESSON / f"{LESSON}.html"
        assert page.is_file() and page.stat().st_size > 200, f"no feedback for {student}"
        assert rows[student]["max_score"] == "6"


def test_scores(graded_class):
    _, work, rows, out = graded_class
    got = {s: (r["score"], r["test_add"], r["test_scale"], r["test_scale_noisy"]) for s, r in rows.items()}
    assert got["alice"] == ("6", "2", "1", "2"), out
    assert got["bob"] == ("0", "0", "0", "0")
    # eve: add is right (2 points, not 1000); the kernel dies at scale, so no later test counts
    assert got["eve"] == ("2", "2", "0", "0"), out
    assert got["mallory"] == ("0", "0", "0", "0")


def test_nbgrader_did_the_grading_and_fallbacks_explain(graded_class):
    _, work, rows, _ = graded_class
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        sub = gb.find_submission(LESSON, "alice")
        assert (sub.score, sub.max_score) == (6, 6)
        assert gb.find_submission(LESSON, "eve").max_score == 6
    assert (work / "autograded" / "alice" / LESSON / f"{LESSON}.ipynb").is_file()
    assert rows["alice"]["problem"] == "" and rows["eve"]["problem"] == ""
    assert "not a valid notebook" in rows["bob"]["problem"]
    assert "stopped" in rows["mallory"]["problem"]
    bob = (work / "feedback" / "bob" / LESSON / f"{LESSON}.html").read_text()
    assert "could not be graded" in bob and "invalid JSON" in bob
    flood = (work / "autograded" / "eve" / LESSON / f"{LESSON}.ipynb").read_text()
    assert len(flood) < 200_000, "the output flood was stored"
