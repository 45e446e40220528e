"""Where things are: the course root with ``solutions/`` (the truth) and ``lessons/`` (released).

The root defaults to the repository this package lives in; ``--root DIR`` (or ``COURSE_ROOT``)
points elsewhere, e.g. at a test's temporary course.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

LESSON_NAME = re.compile(r"^(?P<num>\d\d)_[a-z0-9_]+$")
RELEASE_FILE = "course-release.json"  # marks a class distribution (``autograder release``)
VISIBLE_TESTS = "visible_tests"       # there: pristine released lessons, graded against


class LayoutError(Exception):
    """The course layout does not have what was asked for (unknown lesson, missing notebook)."""


def default_root() -> Path:
    env = os.environ.get("COURSE_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def lessons_dir(self) -> Path:
        return self.root / "lessons"

    @property
    def mode(self) -> str:
        """``open`` (the instructor repository or the public one: solutions/ and hidden tests
        present) or ``class`` (a learner distribution: released lessons with visible tests only)."""
        if not self.solutions.is_dir() and (self.root / RELEASE_FILE).is_file():
            return "class"
        return "open"

    def release_info(self) -> dict:
        import json

        return json.loads((self.root / RELEASE_FILE).read_text()) if self.mode == "class" else {}

    @property
    def _sources(self) -> Path:
        # class mode grades against a pristine copy: learners edit lessons/ in place
        return self.root / VISIBLE_TESTS if self.mode == "class" else self.solutions

    def lessons(self) -> list[str]:
        if not self._sources.is_dir():
            return []
        return sorted(p.name for p in self._sources.iterdir()
                      if LESSON_NAME.match(p.name) and (p / f"{p.name}.ipynb").is_file())

    def source_notebook(self, lesson: str) -> Path:
        """The notebook whose tests grade ``lesson``: the source in solutions/, or in class mode
        the released lesson (visible tests only; the hidden ones run at submission)."""
        path = self._sources / lesson / f"{lesson}.ipynb"
        if not path.is_file():
            known = ", ".join(self.lessons()) or "none"
            raise LayoutError(f"unknown lesson {lesson!r} (no {path}); lessons: {known}")
        return path

    def released_notebook(self, lesson: str) -> Path:
        return self.lessons_dir / lesson / f"{lesson}.ipynb"

    def resolve(self, names: list[str] | None) -> list[str]:
        """Lesson names from arguments; ``01`` or ``01_containers`` or a path; none means all."""
        known = self.lessons()
        if not names:
            return known
        out = []
        for name in names:
            name = Path(name).name.removesuffix(".ipynb")
            match = [l for l in known if l == name or l.split("_")[0] == name]
            if not match:
                raise LayoutError(f"unknown lesson {name!r}; lessons: {', '.join(known) or 'none'}")
            out.append(match[0])
        return out

    def infer_lesson(self, notebook: Path) -> str:
        """The lesson a learner's notebook belongs to, from its file name or its folder."""
        known = self.lessons()
        candidates = [Path(notebook).stem, Path(notebook).resolve().parent.name]
        for cand in candidates:
            if cand in known:
                return cand
        for cand in candidates:  # "01_containers-Copy1", "01_containers (2)", "01"
            m = re.match(r"^(\d\d)(?:_|\b|$)", cand)
            hits = [l for l in known if m and l.startswith(m.group(1) + "_")]
            if len(hits) == 1:
                return hits[0]
        raise LayoutError(
            f"cannot tell which lesson {Path(notebook).name} belongs to; pass --lesson NN_name "
            f"(lessons: {', '.join(known) or 'none'})")
