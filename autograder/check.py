"""``python -m autograder check``: the instructor's gate before a release.

Per lesson: the source passes the format lint, ``lessons/`` equals a fresh build byte for byte,
no solution or hidden-test line leaks into the released notebook, the solutions notebook scores
full marks and the released notebook scores 0 (with grading completing).
"""
from __future__ import annotations

import filecmp
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from autograder.build import build_lessons
from autograder.grade import grade_notebook
from autograder.layout import Layout
from autograder.lint import leaked_lines, structure_problems


_BUILD_LOCK = threading.Lock()  # nbgrader's converters are not meant to run in parallel threads


def _tree_diff(a: Path, b: Path) -> list[str]:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} if a.exists() else set()
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    out = [f"missing from lessons/: {p}" for p in sorted(files_b - files_a)]
    out += [f"not produced by build: {p}" for p in sorted(files_a - files_b)]
    out += [f"differs from a fresh build: {p}" for p in sorted(files_a & files_b)
            if not filecmp.cmp(a / p, b / p, shallow=False)]
    return out


def check_lesson(layout: Layout, lesson: str) -> tuple[bool, str]:
    start = time.monotonic()
    problems = []
    source = nbformat.read(str(layout.source_notebook(lesson)), as_version=4)
    problems += structure_problems(source)
    with tempfile.TemporaryDirectory(prefix="check-") as tmp:
        with _BUILD_LOCK:
            build_lessons(layout, [lesson], Path(tmp))
        problems += _tree_diff(layout.lessons_dir / lesson, Path(tmp) / lesson)
        fresh = nbformat.read(str(Path(tmp) / lesson / f"{lesson}.ipynb"), as_version=4)
    shipped = [fresh]
    if layout.released_notebook(lesson).exists():
        shipped.append(nbformat.read(str(layout.released_notebook(lesson)), as_version=4))
    leaks = sorted({l for nb in shipped for l in leaked_lines(source, nb)})
    problems += [f"solution/hidden line leaks into the lesson: {l!r}" for l in leaks]
    full = grade_notebook(layout.source_notebook(lesson), layout, lesson)
    if full.max_score <= 0:
        problems.append("no graded tests")
    if full.score != full.max_score:
        failed = [f"{t.id} ({t.message})" for t in full.tests if not t.passed]
        problems.append(f"solutions score {full.score:g}/{full.max_score:g}: " + "; ".join(failed))
    released = layout.released_notebook(lesson)
    blank_txt = "lesson missing"
    if released.exists():
        blank = grade_notebook(released, layout, lesson)
        blank_txt = f"lesson {blank.score:g}/{blank.max_score:g}"
        if blank.score != 0:
            passing = [t.id for t in blank.tests if t.passed]
            problems.append(f"the released notebook scores {blank.score:g} (tests that pass "
                            f"without an answer: {passing})")
        if blank.notes and any("stopped" in n for n in blank.notes):
            problems.append("grading the released notebook did not complete: " + "; ".join(blank.notes))
    ok = not problems
    line = (f"{lesson:<24} {'ok  ' if ok else 'FAIL'} solutions {full.score:g}/{full.max_score:g}"
            f"  {blank_txt}  {time.monotonic() - start:.1f} s")
    return ok, "\n".join([line, *[f"    - {p}" for p in problems]])


def check_lessons(layout: Layout, lessons: list[str], jobs: int = 2) -> int:
    if not lessons:
        print("no lessons found under", layout.solutions)
        return 1
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda l: check_lesson(layout, l), lessons))
    for _, text in results:
        print(text)
    bad = sum(not ok for ok, _ in results)
    print(f"check: {len(results) - bad}/{len(results)} lessons passed")
    return 1 if bad else 0
