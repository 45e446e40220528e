"""``python -m autograder autograde SUBMISSIONS --lesson NN_name``: grade a class with nbgrader.

Layout in: ``SUBMISSIONS/<student>/<lesson>/*.ipynb``. Out, in the work folder (``<root>/work`` or
``--course-dir``): nbgrader's ``submitted/``, ``autograded/``, ``feedback/``, ``gradebook.db`` and
``grades-<lesson>.csv``. Each student runs in a process of their own, in a sandbox, under a
wall-clock limit, so one broken or hostile notebook never stops the others, and everyone gets a
score and a feedback page. This module is the coordinator: it reads and merges the notebooks,
hands self-contained jobs (``classjob``) to an engine (``engines``: serial, ``--workers N`` local
processes, or Dask) and is the only writer of the work folder and nbgrader's gradebook.
"""
from __future__ import annotations

import csv
import shutil
import sys
import time
from pathlib import Path

import nbformat

from autograder.classjob import Job, JobResult, lesson_assets
from autograder.engines import Progress, run_jobs
from autograder.layout import Layout
from autograder.nbconfig import course_config, quiet_logger
from autograder.notebooks import UnreadableNotebook, merge, read_learner_notebook, source_info
from autograder.settings import Limits


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


def make_job(layout: Layout, lesson: str, student: str, submitted_nb: Path | None, work: Path,
             limits: Limits, source: str, assets: dict[str, bytes], hide: list[Path]) -> Job:
    """Read and merge one student's notebook (here, on the coordinator) into a self-contained job;
    what was graded is kept in ``work/submitted``."""
    job = Job(lesson, student, source, assets, None, limits=limits.to_json(), hide=[str(h) for h in hide])
    if submitted_nb is None:
        job.problem = f"no notebook found in {student}/{lesson}/"
        return job
    try:
        learner = read_learner_notebook(submitted_nb)
    except UnreadableNotebook as e:
        job.problem = str(e)
        return job
    merged, job.notes = merge(nbformat.reads(source, as_version=4), learner)
    job.notebook = nbformat.writes(merged)
    dest = work / "submitted" / student / lesson
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / f"{lesson}.ipynb").write_text(job.notebook, encoding="utf-8")
    return job


def record(work: Path, lesson: str, result: JobResult) -> None:
    """The coordinator's half of a result: feedback and executed notebook into the work folder,
    and, when nbgrader graded it, the grades into the class gradebook by nbgrader's own
    SaveAutoGrades step (the only writer of ``gradebook.db``)."""
    feedback = work / "feedback" / result.student / lesson / f"{lesson}.html"
    feedback.parent.mkdir(parents=True, exist_ok=True)
    feedback.write_text(result.feedback, encoding="utf-8")
    autograded = work / "autograded" / result.student / lesson
    shutil.rmtree(autograded, ignore_errors=True)
    if not result.graded_by_nbgrader:
        return
    autograded.mkdir(parents=True)
    (autograded / f"{lesson}.ipynb").write_text(result.autograded, encoding="utf-8")
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    db_url = f"sqlite:///{work / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(result.student)
        gb.update_or_create_submission(lesson, result.student)
    resources = {"nbgrader": {"db_url": db_url, "assignment": lesson, "notebook": lesson,
                              "student": result.student}}
    step = SaveAutoGrades()
    step.log = quiet_logger()
    step.preprocess(nbformat.reads(result.autograded, as_version=4), resources)


def write_csv(path: Path, results: list[JobResult], test_ids: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "score", "max_score", *test_ids, "problem"])
        for r in results:
            scores = {tid: score for tid, _, score, _ in r.tests}
            total, maximum = sum(t[2] for t in r.tests), sum(t[1] for t in r.tests)
            w.writerow([r.student, f"{total:g}", f"{maximum:g}",
                        *[f"{scores.get(t, 0):g}" for t in test_ids], r.problem])


def autograde_class(layout: Layout, submissions: Path, lesson: str, course_dir: Path | None,
                    limits: Limits, workers: int = 1, dask: bool = False,
                    scheduler: str | None = None) -> int:
    if not submissions.is_dir():
        print(f"error: {submissions} is not a folder of <student>/{lesson}/ submissions", file=sys.stderr)
        return 2
    work = (course_dir or layout.root / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    register_lesson(layout, lesson, work)
    source_path = layout.source_notebook(lesson)
    source = source_path.read_text(encoding="utf-8")
    info = source_info(nbformat.reads(source, as_version=4))
    assets = lesson_assets(source_path.parent)
    hide = [layout.root, work, submissions.resolve()]
    students = _student_ids(submissions)
    jobs = [make_job(layout, lesson, s, pick_notebook(submissions / s / lesson, lesson), work, limits,
                     source, assets, hide) for s in students]
    results: dict[str, JobResult] = {}
    progress = Progress(len(jobs))

    def on_result(r: JobResult) -> None:
        record(work, lesson, r)
        results[r.student] = r
        total = sum(t[2] for t in r.tests)
        maximum = sum(t[1] for t in r.tests)
        extra = f"  ({r.problem})" if r.problem else ""
        print(f"{r.student}: {total:g}/{maximum:g}{extra}", flush=True)
        progress.advance(r.student)

    run_jobs(jobs, on_result, workers=workers, dask=dask, scheduler=scheduler)
    csv_path = work / f"grades-{lesson}.csv"
    write_csv(csv_path, [results[s] for s in students], list(info.tests))
    print(f"grades: {csv_path}\nfeedback: {work / 'feedback'}\n"
          f"{len(jobs)} submissions in {time.monotonic() - progress.start:.1f} s "
          f"({progress.rate():.1f} per minute)")
    return 0
