"""Child process of ``autograde``: one student through nbgrader autograde + generate_feedback.

``python -m autograder.classworker ROOT WORK LESSON STUDENT`` — run in its own session by
``classroom`` under the outer wall-clock limit; exit 0 when nbgrader produced grades and feedback.
"""
from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    root, work, lesson, student = Path(argv[0]), Path(argv[1]), argv[2], argv[3]
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from autograder.nbconfig import course_config, quiet_logger
    from autograder.nbgrader_steps import AUTOGRADE_STEPS
    from autograder.settings import Limits, ensure_tools_on_path

    ensure_tools_on_path()
    config = course_config(root, work, release=work / "release", limits=Limits.from_env())
    config.Autograde.autograde_preprocessors = AUTOGRADE_STEPS
    config.Autograde.create_student = True
    config.BaseConverter.force = True
    log = quiet_logger()
    for step in (Autograde, GenerateFeedback):
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = lesson
        coursedir.student_id = student
        converter = step(coursedir=coursedir, config=config)
        converter.log = log
        converter.start()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
