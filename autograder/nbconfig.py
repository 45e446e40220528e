"""nbgrader configuration, kept here (the repository root has no nbgrader_config.py).

Course root = the repository (or ``--root``); source = ``solutions/``, release = ``lessons/``;
everything a class produces (submitted, autograded, feedback, gradebook.db) lives in a work folder,
``<root>/work`` by default (git-ignored), or wherever ``--course-dir`` points.
"""
from __future__ import annotations

import logging
from pathlib import Path

from traitlets.config import Config

from autograder.settings import Limits


def course_config(root: Path, work: Path | None = None, release: Path | None = None,
                  limits: Limits | None = None) -> Config:
    root = Path(root).resolve()
    work = Path(work).resolve() if work else root / "work"
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = "solutions"
    # nbgrader joins these to the root; absolute paths (the work folder) are kept as they are.
    c.CourseDirectory.release_directory = str(Path(release).resolve()) if release else "lessons"
    c.CourseDirectory.submitted_directory = str(work / "submitted")
    c.CourseDirectory.autograded_directory = str(work / "autograded")
    c.CourseDirectory.feedback_directory = str(work / "feedback")
    c.CourseDirectory.db_url = f"sqlite:///{work / 'gradebook.db'}"
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]
    if limits is not None:
        c.Execute.timeout = limits.cell_timeout
        c.Execute.startup_timeout = limits.startup_timeout
        c.LimitOutput.max_lines = 1000
        c.LimitOutput.max_traceback = 100
    return c


def quiet_logger(name: str = "autograder.nbgrader") -> logging.Logger:
    log = logging.getLogger(name)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[nbgrader] %(levelname)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False
    return log
