"""``build`` (real nbgrader generate_assignment) is deterministic and hides what it must;
``check`` catches a stale or leaking lessons/ folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.build import build_lessons
from autograder.layout import Layout
from autograder.lint import leaked_lines, secret_lines
from fixtures.minilesson.mkcourse import LESSON, make_course

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def course(tmp_path):
    make_course(tmp_path)
    return Layout(tmp_path)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_is_byte_identical_twice_and_copies_assets(course):
    build_lessons(course, [LESSON])
    first = _snapshot(course.lessons_dir)
    build_lessons(course, [LESSON])
    assert _snapshot(course.lessons_dir) == first
    assert sorted(first) == [f"{LESSON}/{LESSON}.ipynb", f"{LESSON}/factor.txt"]
    text = first[f"{LESSON}/{LESSON}.ipynb"].decode()
    assert text.endswith("}\n") and '"outputs": []' in text and '"execution_count": null' in text


def test_released_notebook_hides_solutions_and_hidden_tests(course):
    build_lessons(course, [LESSON])
    source = nbformat.read(str(course.source_notebook(LESSON)), as_version=4)
    released = nbformat.read(str(course.released_notebook(LESSON)), as_version=4)
    secrets = secret_lines(source)
    assert "unique_solution_marker = FACTOR * x" in secrets
    assert 'assert scale(-3) == -9, "scale(-3) should be -9"' in secrets
    assert leaked_lines(source, released) == []
    text = json.dumps(released.cells)
    assert "raise NotImplementedError()" in text and "BEGIN SOLUTION" not in text
    tests = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in released.cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert tests["test_add"]["points"] == 2 and tests["test_add"]["locked"] is True
    assert "checksum" in tests["test_add"]  # nbgrader's own generate_assignment ran


@pytest.mark.slow
def test_check_flags_a_stale_leaking_lesson(course):
    build_lessons(course, [LESSON])
    path = course.released_notebook(LESSON)
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("unique_solution_marker = FACTOR * x"))
    nbformat.write(nb, str(path))
    env = {**os.environ, "AUTOGRADER_CELL_TIMEOUT": "20"}
    proc = subprocess.run([sys.executable, "-m", "autograder", "--root", str(course.root), "check"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=400)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{LESSON}" in proc.stdout and "FAIL" in proc.stdout
    assert "solutions 6/6" in proc.stdout and "lesson 0/6" in proc.stdout
    assert f"differs from a fresh build: {LESSON}.ipynb" in proc.stdout
    assert "leaks into the lesson: 'unique_solution_marker = FACTOR * x'" in proc.stdout
