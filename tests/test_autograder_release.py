"""``python -m autograder release DIR`` (class mode): no solution or hidden-test text in what
learners get, and self-grading there runs the visible tests and says the hidden ones run later."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.layout import Layout
from autograder.lint import secret_lines
from fixtures.minilesson.mkcourse import LESSON, make_course, variant

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("course", "kernels", "autograder")


def _release(root: Path, dest: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "--root", str(root), "release", str(dest), *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def _text_files(folder: Path):
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            try:
                yield p, p.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


@pytest.fixture(scope="module")
def mini_release(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    source = make_course(root)
    dest = tmp_path_factory.mktemp("release") / "class"
    proc = _release(root, dest, "--repo", "https://github.com/example-university/engines-2026")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, source, dest


def test_release_holds_lessons_package_and_no_secrets(mini_release):
    root, source, dest = mini_release
    assert not (dest / "solutions").exists()
    for name in (*PACKAGES, "pyproject.toml", "environment.yml", "README.md", "course-release.json"):
        assert (dest / name).exists(), name
    assert (dest / "lessons" / LESSON / "factor.txt").read_text() == "3\n"
    secrets = secret_lines(nbformat.read(str(source), as_version=4))
    assert "return unique_solution_marker" in secrets and 'assert add(-5, 5) == 0, "add(-5, 5) should be 0"' in secrets
    for path, text in _text_files(dest):  # every file, package included
        lines = {l.strip() for l in text.splitlines()}
        assert not secrets & lines, f"{path} holds {secrets & lines}"
        assert "BEGIN HIDDEN TESTS" not in text or path.suffix == ".py", path
    info = json.loads((dest / "course-release.json").read_text())
    assert info["lessons"][LESSON]["hidden"] == {"test_add": "some", "test_scale_hidden": "all"}


def _grade_in_release(dest: Path, notebook: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(dest), "AUTOGRADER_CELL_TIMEOUT": "30"}
    env.pop("COURSE_ROOT", None)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--json"],
                          capture_output=True, text=True, cwd=dest, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


def test_self_grading_in_the_release_runs_visible_tests_only(mini_release):
    root, source, dest = mini_release
    answered = variant(source, dest / "lessons" / LESSON / "mine.ipynb")  # the solution, as a learner's
    result, _ = _grade_in_release(dest, answered)
    tests = {t["id"]: t for t in result["tests"]}
    assert tests["test_add"]["score"] == 2 and "hidden part runs at submission" in tests["test_add"]["message"]
    assert tests["test_scale"]["score"] == 1
    assert tests["test_scale_hidden"]["score"] == 0
    assert tests["test_scale_hidden"]["message"] == "hidden test: runs at submission"
    text = subprocess.run([sys.executable, "-m", "autograder", "grade", str(answered)], capture_output=True,
                          text=True, cwd=dest, env={**os.environ, "PYTHONPATH": str(dest)}, timeout=300).stdout
    assert "class mode: only the visible tests ran here" in text
    stub, _ = _grade_in_release(dest, dest / "lessons" / LESSON / f"{LESSON}.ipynb")
    assert stub["score"] == 0


def test_release_of_the_real_course_leaks_nothing(tmp_path):
    """Every lesson: no solution or hidden-test line in any notebook or non-package file; the
    package is the repository's own (the reference engine, public in both modes by design)."""
    dest = tmp_path / "class"
    proc = _release(ROOT, dest, "--repo", "https://github.com/example-university/engines-2026")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert Layout(dest).mode == "class" and Layout(ROOT).mode == "open"
    layout = Layout(ROOT)
    setup = nbformat.read(str(dest / "lessons" / "01_containers" / "01_containers.ipynb"), as_version=4)
    head = setup.cells[0].source + setup.cells[1].source
    assert "github.com/example-university/engines-2026" in head  # Colab clones the class repository
    assert "inference-engines-from-scratch/course" not in head
    secrets = set()
    for lesson in layout.lessons():
        secrets |= secret_lines(nbformat.read(str(layout.source_notebook(lesson)), as_version=4))
    assert secrets
    for path, text in _text_files(dest):
        rel = path.relative_to(dest)
        if rel.parts[0] in PACKAGES:
            assert text == (ROOT / rel).read_text(encoding="utf-8"), f"{rel} differs from the repository's"
            continue
        found = secrets & {l.strip() for l in text.splitlines()}
        assert not found, f"{rel} holds solution or hidden-test lines: {sorted(found)[:3]}"
