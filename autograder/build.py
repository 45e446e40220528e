"""``python -m autograder build``: ``lessons/NN_name/`` from ``solutions/NN_name/`` with nbgrader.

nbgrader's generate_assignment step (its own preprocessors: lock cells, clear solutions, clear
hidden tests, checksums) runs on each lesson, then the notebooks are rewritten in a fixed form so
that a second build gives byte-identical files: no outputs, sorted JSON, no volatile metadata.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat

from autograder.authoring import write_notebook
from autograder.layout import Layout
from autograder.nbconfig import course_config, quiet_logger

VOLATILE_NOTEBOOK_KEYS = ("widgets", "toc", "varInspector", "celltoolbar", "vscode", "colab", "execution")
VOLATILE_CELL_KEYS = ("execution", "collapsed", "scrolled", "ExecuteTime", "jupyter", "editable", "deletable", "trusted")


def generate(layout: Layout, lesson: str, dest_root: Path) -> Path:
    """Run nbgrader generate_assignment for ``lesson`` into ``dest_root/lesson``; return that folder."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    from autograder.settings import ensure_tools_on_path

    ensure_tools_on_path()  # nbgrader runs `alembic` when it creates a gradebook
    layout.source_notebook(lesson)  # a clear error for an unknown lesson
    dest_root = Path(dest_root).resolve()
    config = course_config(layout.root, release=dest_root)
    # nbgrader's SaveCells step always writes a gradebook; this one is scratch, beside the output
    config.CourseDirectory.db_url = f"sqlite:///{dest_root / 'build-gradebook.db'}"
    config.GenerateAssignment.force = True
    config.GenerateAssignment.permissions = 644
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = lesson
    converter = GenerateAssignment(coursedir=coursedir, config=config, parent=None)
    converter.log = quiet_logger()
    converter.start()
    out = dest_root / lesson
    for nb_path in sorted(out.glob("*.ipynb")):
        normalize(nb_path)
    return out


def normalize(path: Path) -> None:
    """Rewrite a generated notebook in the course's deterministic on-disk form."""
    nb = nbformat.read(str(path), as_version=4)
    for key in VOLATILE_NOTEBOOK_KEYS:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if "attachments" in cell and not cell.attachments:
            del cell["attachments"]
    write_notebook(nb, path)


def build_lessons(layout: Layout, lessons: list[str], dest_root: Path | None = None) -> list[tuple[str, Path]]:
    """Build each lesson; with ``dest_root`` (e.g. a temp dir) instead of ``lessons/``."""
    dest_root = Path(dest_root) if dest_root else layout.lessons_dir
    built = []
    for lesson in lessons:
        with tempfile.TemporaryDirectory(prefix="build-") as tmp:
            # generate into scratch first so a failed build never leaves a half-written lesson
            out = generate(layout, lesson, Path(tmp))
            final = dest_root / lesson
            if final.exists():
                shutil.rmtree(final)
            shutil.copytree(out, final)
        built.append((lesson, final))
    return built
