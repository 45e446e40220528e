"""``python -m autograder release DIR``: a learner distribution for a graded class ("class mode").

DIR gets the released lessons (built fresh from ``solutions/`` by nbgrader: stubs, visible tests),
the package (``course``, ``kernels``, ``autograder``), the install files and a README, and
``visible_tests/`` (a pristine copy of each released lesson, which self-grading grades against:
learners edit ``lessons/`` in place). There is no ``solutions/``, no hidden test and no solution
text: ``autograder check``'s leak test runs on every notebook written, and release fails if it
finds a line. Self-grading in DIR runs the visible tests and says the hidden ones run at
submission. With ``--repo URL``, the lessons' Colab setup cell and badge point at that repository
(push DIR there); Binder uses DIR's environment.yml, which installs DIR itself.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import nbformat

from autograder.authoring import write_notebook
from autograder.build import build_lessons
from autograder.layout import RELEASE_FILE, VISIBLE_TESTS, Layout
from autograder.lint import leaked_lines

PUBLIC_REPO = "https://github.com/inference-engines-from-scratch/course"
PACKAGES = ("course", "kernels", "autograder")
TOP_FILES = ("pyproject.toml", "environment.yml", "LICENSE", "Makefile", ".ci/constraints.txt")
HIDDEN = re.compile(r"^\s*### BEGIN HIDDEN TESTS", re.M)
CHECKS = re.compile(r"\bassert\b|\bcheck\w*\(")


def hidden_parts(source_nb) -> dict[str, str]:
    """Test cells with hidden tests: ``"all"`` when the visible part checks nothing (no assert,
    no ``check...(`` helper call: setup lines only), else ``"some"``."""
    from autograder.notebooks import grade_id

    out = {}
    for cell in source_nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution") and HIDDEN.search(cell.source):
            visible = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", cell.source, flags=re.S)
            code = "\n".join(l for l in visible.splitlines() if not l.strip().startswith("#"))
            out[grade_id(cell)] = "some" if CHECKS.search(code) else "all"
    return out


def _point_at(nb, repo: str | None) -> None:
    """Make the Colab setup cell and badge use the class repository; keep nbgrader's checksums."""
    if not repo:
        return
    from nbgrader.utils import compute_checksum

    repo = repo.removesuffix(".git").rstrip("/")
    colab_old = PUBLIC_REPO.replace("https://github.com/", "colab.research.google.com/github/")
    colab_new = repo.replace("https://github.com/", "colab.research.google.com/github/")
    for cell in nb.cells:
        new = cell.source.replace(colab_old, colab_new).replace(PUBLIC_REPO, repo)
        if new != cell.source:
            cell.source = new
            meta = cell.metadata.get("nbgrader", {})
            if "checksum" in meta:
                meta["checksum"] = compute_checksum(cell)


def _readme(lessons: list[str], repo: str | None) -> str:
    rows = "\n".join(f"- `lessons/{l}/{l}.ipynb`" for l in lessons)
    where = repo or "this folder"
    return f"""# Inference Engines from Scratch — class edition

Your course's lessons, the `course` package they build on, and a grader that runs the **visible**
tests. The hidden tests are not here: they run when your instructor grades your submission.

On Colab or Binder, open a lesson; its first cell installs the course from {where}. Locally:

    pip install -e .            # or: make lab
    python -m autograder grade lessons/01_containers/01_containers.ipynb

Lessons:

{rows}
"""


def release(layout: Layout, dest: Path, lessons: list[str], repo: str | None = None,
            force: bool = False) -> int:
    dest = Path(dest).resolve()
    if layout.mode != "open":
        print("error: release needs the instructor repository (solutions/)", file=sys.stderr)
        return 2
    if dest.exists() and any(dest.iterdir()):
        if not force:
            print(f"error: {dest} is not empty (use --force to replace it)", file=sys.stderr)
            return 2
        shutil.rmtree(dest)
    if dest == layout.root or layout.root.is_relative_to(dest):
        print("error: the release folder cannot hold the course root", file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    build_lessons(layout, lessons, dest / "lessons")
    info, leaks = {}, []
    for lesson in lessons:
        source = nbformat.read(str(layout.source_notebook(lesson)), as_version=4)
        path = dest / "lessons" / lesson / f"{lesson}.ipynb"
        nb = nbformat.read(str(path), as_version=4)
        _point_at(nb, repo)
        write_notebook(nb, path)
        leaks += [f"{lesson}: {l!r}" for l in leaked_lines(source, nb)]
        info[lesson] = {"hidden": hidden_parts(source)}
        shutil.copytree(dest / "lessons" / lesson, dest / VISIBLE_TESTS / lesson)
    if leaks:
        shutil.rmtree(dest)
        print("error: solution or hidden-test lines would ship:\n  " + "\n  ".join(leaks), file=sys.stderr)
        return 1
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", ".ipynb_checkpoints")
    package_root = Path(__file__).resolve().parent.parent
    for name in PACKAGES:
        shutil.copytree(package_root / name, dest / name, ignore=ignore)
    for name in TOP_FILES:
        if (package_root / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(package_root / name, dest / name)
    (dest / "README.md").write_text(_readme(lessons, repo), encoding="utf-8")
    (dest / RELEASE_FILE).write_text(json.dumps(
        {"mode": "class", "repo": repo, "lessons": info}, indent=1, sort_keys=True) + "\n")
    print(f"class distribution: {dest} ({len(lessons)} lessons; no solutions, no hidden tests)")
    return 0
