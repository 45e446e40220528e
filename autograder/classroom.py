"""``python -m autograder autograde SUBMISSIONS --lesson NN_name``: grade a class with nbgrader.

Layout in: ``SUBMISSIONS/<student>/<lesson>/*.ipynb``. Out, in the work folder (``<root>/work`` or
``--course-dir``): nbgrader's ``submitted/``, ``autograded/``, ``feedback/``, ``gradebook.db`` and
``grades-<lesson>.csv``. Each student runs in a process of their own under a wall-clock limit, so
one broken or hostile notebook never stops the others, and everyone gets a score and a feedback page.
"""
from __future__ import annotations

import csv
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.execute import mark_unfinished
from autograder.feedback import write_feedback
from autograder.isolate import run_limited
from autograder.layout import Layout
from autograder.nbconfig import course_config, quiet_logger
from autograder.nbgrader_steps import PROGRESS_ENV
from autograder.notebooks import UnreadableNotebook, merge, read_learner_notebook, source_info
from autograder.scoring import TestResult, score_tests
from autograder.settings import Limits, kernel_env


@dataclass
class StudentResult:
    student: str
    tests: list[TestResult]
    feedback: Path
    problem: str = ""           # why nbgrader could not grade it (empty: graded by nbgrader)
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return float(sum(t.score for t in self.tests))

    @property
    def max_score(self) -> float:
        return float(sum(t.points for t in self.tests))


def register_lesson(layout: Layout, lesson: str, work: Path) -> None:
    """Put the lesson into the work folder's gradebook (nbgrader generate_assignment, released
    into ``work/release`` so the repository's ``lessons/`` is never touched)."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    from autograder.settings import ensure_tools_on_path

    ensure_tools_on_path()  # nbgrader runs `alembic` when it creates a gradebook
    config = course_config(layout.root, work, release=work / "release")
    config.GenerateAssignment.force = True
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = lesson
    converter = GenerateAssignment(coursedir=coursedir, config=config)
    converter.log = quiet_logger()
    converter.start()


def pick_notebook(folder: Path, lesson: str) -> Path | None:
    if not folder.is_dir():
        return None
    named = folder / f"{lesson}.ipynb"
    if named.is_file():
        return named
    found = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    return found[0] if found else None


def _student_ids(submissions: Path) -> list[str]:
    return sorted(p.name for p in submissions.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")))


def grade_student(layout: Layout, lesson: str, student: str, submitted_nb: Path | None,
                  work: Path, limits: Limits) -> StudentResult:
    info = source_info(nbformat.read(str(layout.source_notebook(lesson)), as_version=4))
    feedback = work / "feedback" / student / lesson / f"{lesson}.html"
    if feedback.exists():
        feedback.unlink()
    zero = [TestResult(t, p, 0.0, "not graded") for t, p in info.tests.items()]
    if submitted_nb is None:
        return _fallback(student, lesson, zero, feedback, f"no notebook found in {student}/{lesson}/")
    try:
        learner = read_learner_notebook(submitted_nb)
    except UnreadableNotebook as e:
        return _fallback(student, lesson, zero, feedback, str(e))
    merged, notes = merge(info.nb, learner)
    dest = work / "submitted" / student / lesson
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    nbformat.write(merged, str(dest / f"{lesson}.ipynb"))

    progress = work / ".progress" / f"{student}-{lesson}.ipynb"
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.unlink(missing_ok=True)
    env = {**kernel_env(), PROGRESS_ENV: str(progress)}
    cmd = [sys.executable, "-m", "autograder.classworker", str(layout.root), str(work), lesson, student]
    outcome = run_limited(cmd, limits.submission_timeout, cwd=str(work), env=env)
    if outcome.returncode == 0 and feedback.exists():
        return StudentResult(student, _gradebook_tests(work, lesson, student, info), feedback, notes=notes)
    # nbgrader did not finish: score what ran from the progress file, explain in our own page
    problem = (f"it ran longer than {limits.submission_timeout} s and was stopped" if outcome.timed_out
               else "the grader stopped with an error: " + _last_line(outcome.log))
    tests = zero
    if progress.exists():
        try:
            done = nbformat.read(str(progress), as_version=4)
            mark_unfinished(done, "the notebook was stopped")
            tests = score_tests(done, info)
        except Exception:  # noqa: BLE001 - a torn progress file: nothing ran to completion
            pass
    return _fallback(student, lesson, tests, feedback, problem, notes)


def _fallback(student, lesson, tests, feedback, problem, notes=()) -> StudentResult:
    write_feedback(feedback, student, lesson, problem, tests, notes)
    return StudentResult(student, tests, feedback, problem, list(notes))


def _gradebook_tests(work: Path, lesson: str, student: str, info) -> list[TestResult]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(lesson, lesson, student)
        got = {g.name: g for g in nb.grades}
        tests = []
        for tid, points in info.tests.items():
            g = got.get(tid)
            score = float(g.score) if g is not None and g.score is not None else 0.0
            tests.append(TestResult(tid, points, score, "" if score == points else "failed (see feedback)"))
        return tests


def _last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:300] if lines else "no message"


def write_csv(path: Path, results: list[StudentResult], test_ids: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "score", "max_score", *test_ids, "problem"])
        for r in results:
            scores = {t.id: t.score for t in r.tests}
            w.writerow([r.student, f"{r.score:g}", f"{r.max_score:g}",
                        *[f"{scores.get(t, 0):g}" for t in test_ids], r.problem])


def autograde_class(layout: Layout, submissions: Path, lesson: str, course_dir: Path | None,
                    limits: Limits) -> int:
    if not submissions.is_dir():
        print(f"error: {submissions} is not a folder of <student>/{lesson}/ submissions", file=sys.stderr)
        return 2
    work = (course_dir or layout.root / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    register_lesson(layout, lesson, work)
    info = source_info(nbformat.read(str(layout.source_notebook(lesson)), as_version=4))
    results = []
    for student in _student_ids(submissions):
        nb = pick_notebook(submissions / student / lesson, lesson)
        r = grade_student(layout, lesson, student, nb, work, limits)
        results.append(r)
        extra = f"  ({r.problem})" if r.problem else ""
        print(f"{student}: {r.score:g}/{r.max_score:g}{extra}", flush=True)
    csv_path = work / f"grades-{lesson}.csv"
    write_csv(csv_path, results, list(info.tests))
    print(f"grades: {csv_path}\nfeedback: {work / 'feedback'}")
    return 0
