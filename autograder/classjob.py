"""One student's grading as a self-contained job, so any worker can run it: a local process or a
Dask worker on another machine that has the course package installed but not the course.

A ``Job`` carries everything (the lesson's source notebook and files, the merged submission, the
limits); ``run_job`` grades it with REAL nbgrader (autograde + generate_feedback, in the
sandboxed ``classworker`` child) against a private copy of the lesson and a private gradebook, and
returns a ``JobResult`` of plain data. Only the coordinator (``classroom``) writes the class's
gradebook and work folder, from these results.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.execute import mark_unfinished
from autograder.feedback import write_feedback
from autograder.isolate import run_limited
from autograder.layout import Layout
from autograder.nbgrader_steps import PROGRESS_ENV
from autograder.notebooks import source_info
from autograder.sandbox import SPEC_ENV, Sandbox, known_refusal
from autograder.scoring import TestResult, score_tests
from autograder.settings import LIMITS_ENV, Limits, kernel_env


@dataclass
class Job:
    lesson: str
    student: str
    source: str                       # the lesson's source notebook (JSON text)
    assets: dict[str, bytes]          # the lesson folder's other files, by relative path
    notebook: str | None              # the merged submission; None when it could not be read
    problem: str = ""                 # why ``notebook`` is None
    notes: list[str] = field(default_factory=list)
    limits: str = ""                  # settings.Limits as JSON
    hide: list[str] = field(default_factory=list)  # the coordinator's folders the kernel must not see


@dataclass
class JobResult:
    student: str
    tests: list[tuple[str, float, float, str]]   # (id, points, score, message)
    feedback: str                     # HTML
    autograded: str | None = None     # the executed notebook (JSON) when nbgrader finished
    problem: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sandbox: str = ""

    @property
    def graded_by_nbgrader(self) -> bool:
        return self.autograded is not None and not self.problem

    def test_results(self) -> list[TestResult]:
        return [TestResult(*t) for t in self.tests]


def lesson_assets(folder: Path) -> dict[str, bytes]:
    """The lesson folder's files other than notebooks and caches (data, images)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if (path.is_file() and path.suffix not in (".ipynb", ".pyc")
                and not {".ipynb_checkpoints", "__pycache__"} & set(rel.parts)):
            out[str(rel)] = path.read_bytes()
    return out


_TEMPLATES: dict[str, Path] = {}


def _template(job: Job) -> Path:
    """A private course root for the job's lesson (``solutions/`` + a work folder whose gradebook
    has the lesson registered), made once per worker process and lesson version."""
    key = hashlib.sha256(job.source.encode() + repr(sorted(job.assets.items())).encode()).hexdigest()
    if key in _TEMPLATES and _TEMPLATES[key].exists():
        return _TEMPLATES[key]
    from autograder.classroom import register_lesson

    root = Path(tempfile.mkdtemp(prefix="agcourse-"))
    atexit.register(shutil.rmtree, root, True)
    folder = root / "solutions" / job.lesson
    folder.mkdir(parents=True)
    (folder / f"{job.lesson}.ipynb").write_text(job.source, encoding="utf-8")
    for rel, data in job.assets.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    register_lesson(Layout(root), job.lesson, root / "work")
    _TEMPLATES[key] = root
    return root


def run_job(job: Job) -> JobResult:
    start = time.monotonic()
    limits = Limits(**json.loads(job.limits)) if job.limits else Limits.from_env()
    info = source_info(nbformat.reads(job.source, as_version=4))
    zero = [TestResult(t, p, 0.0, "not graded") for t, p in info.tests.items()]
    with tempfile.TemporaryDirectory(prefix="agjob-") as tmp:
        page = Path(tmp, "feedback.html")
        if job.notebook is None or known_refusal():  # unreadable, or the sandbox refused already
            problem = job.problem if job.notebook is None else known_refusal()
            write_feedback(page, job.student, job.lesson, problem, zero, job.notes)
            return _result(job, zero, page, None, problem, start)
        root = _template(job)
        work = Path(tmp, "work")
        shutil.copytree(root / "work", work)
        dest = work / "submitted" / job.student / job.lesson
        dest.mkdir(parents=True)
        (dest / f"{job.lesson}.ipynb").write_text(job.notebook, encoding="utf-8")
        progress = Path(tmp, "progress.ipynb")
        box = Sandbox.create(limits, [*map(Path, job.hide), root, Path(tmp)], root / "solutions" / job.lesson)
        with box:
            env = {**kernel_env(), PROGRESS_ENV: str(progress), SPEC_ENV: str(box.spec_file),
                   LIMITS_ENV: limits.to_json()}
            cmd = [sys.executable, "-m", "autograder.classworker", str(root), str(work), job.lesson, job.student]
            outcome = run_limited(cmd, limits.submission_timeout, cwd=str(work), env=env)
            applied, refused = box.report(), box.refused()
        sandbox = applied.summary() if applied else "not started"
        if refused:  # the kernel was not started: say why, whatever nbgrader made of it
            write_feedback(page, job.student, job.lesson, refused, zero, job.notes)
            return _result(job, zero, page, None, refused, start, sandbox)
        feedback = work / "feedback" / job.student / job.lesson / f"{job.lesson}.html"
        autograded = work / "autograded" / job.student / job.lesson / f"{job.lesson}.ipynb"
        if outcome.returncode == 0 and feedback.exists() and autograded.exists():
            tests = _gradebook_tests(work, job.lesson, job.student, info)
            return _result(job, tests, feedback, autograded.read_text(encoding="utf-8"), "", start, sandbox)
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
        write_feedback(page, job.student, job.lesson, problem, tests, job.notes)
        return _result(job, tests, page, None, problem, start, sandbox)


def _result(job, tests, page: Path, autograded, problem, start, sandbox="") -> JobResult:
    return JobResult(job.student, [(t.id, t.points, t.score, t.message) for t in tests],
                     page.read_text(encoding="utf-8"), autograded, problem, list(job.notes),
                     time.monotonic() - start, sandbox)


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
