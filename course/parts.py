"""Your parts, carried from lesson to lesson: what a lesson's last cell saves, later lessons load.

Each lesson that builds a piece of the engine ends by saving it::

    course.parts.save("06_graph_ir", topo_order=topo_order, run_graph=run_graph)

and the capstone (lesson 12) assembles one engine from every piece found::

    mine = course.parts.load("06_graph_ir")        # {"topo_order": <function>, "run_graph": ...}
    found = course.parts.collect()                  # {lesson: {name: part}} for what was saved

``PARTS`` lists what each lesson saves and what the engine does with it. The functions are
stored *by value* (cloudpickle: the code of your functions and classes, with the helpers and
constants they use; library functions by reference), so a later lesson gets your code even
though it runs in another kernel. A readable copy of each part's source is written beside it.

Where: the folder named by ``COURSE_PARTS_DIR``, else ``~/.course/parts``. Loading runs the
saved code: load only parts you saved yourself. Nothing is saved while a notebook is being
graded (``COURSE_GRADING=1``, which the autograder sets): grading never writes your parts.
"""
from __future__ import annotations

import inspect
import os
import platform
from pathlib import Path
from typing import Any, Mapping, Optional

# lesson -> {part name: what the engine does with it}
PARTS: dict[str, dict[str, str]] = {
    "02_tensors": {"transpose": "kernel for Transpose nodes: transpose(x, perm)"},
    "03_operators": {"conv": "kernel for Conv nodes: conv(x, w, b=None, **attrs)"},
    "06_graph_ir": {"topo_order": "the session's scheduler: topo_order(nodes) -> names",
                    "run_graph": "the session's interpreter: run_graph(graph, feeds, kernels)"},
    "07_graph_passes": {"passes": "passes() -> the graph passes the session runs"},
    "08_fusion_layout": {"passes": "passes() -> the fusion passes the session runs after lesson 07's"},
    "09_memory_planning": {"planner": "the arena's placement: planner(intervals, sizes) -> offsets"},
    "10_quantization": {"quantize": "quantize(model, images) -> an int8 QDQ model"},
}

GRADING_ENV = "COURSE_GRADING"


class PartsMissing(FileNotFoundError):
    """No parts saved for a lesson (or not the ones asked for): the message says what to run."""


def folder() -> Path:
    """Where parts are kept: ``$COURSE_PARTS_DIR``, else ``~/.course/parts``."""
    return Path(os.environ.get("COURSE_PARTS_DIR") or Path.home() / ".course" / "parts")


def _path(lesson: str) -> Path:
    return folder() / f"{lesson}.pkl"


def save(lesson: str, **parts: Any) -> Optional[Path]:
    """Save ``parts`` (name=object) for ``lesson``; returns the file (None while grading)."""
    import cloudpickle

    _check_names(lesson, parts)
    if os.environ.get(GRADING_ENV) == "1":
        print(f"(grading: your parts of {lesson} are not saved)")
        return None
    path = _path(lesson)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"lesson": lesson, "python": platform.python_version(), "parts": parts}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        cloudpickle.dump(record, f)
    os.replace(tmp, path)  # a half-written file never replaces a good one
    path.with_suffix(".py").write_text(_sources(lesson, parts))
    print(f"saved your {', '.join(parts)} for later lessons: {path}")
    return path


def _check_names(lesson: str, parts: Mapping[str, Any]) -> None:
    if lesson not in PARTS:
        raise ValueError(f"no parts are kept for lesson {lesson!r}; lessons with parts: {sorted(PARTS)}")
    unknown = sorted(set(parts) - set(PARTS[lesson]))
    if unknown:
        raise ValueError(f"lesson {lesson} keeps {sorted(PARTS[lesson])}, not {unknown}")


def _sources(lesson: str, parts: Mapping[str, Any]) -> str:
    """A readable copy of what was saved (the .pkl is what ``load`` reads)."""
    out = [f"# Your parts of lesson {lesson}, as saved by course.parts.save (for reading; "
           f"course.parts.load reads {lesson}.pkl)\n"]
    for name, obj in parts.items():
        try:
            src = inspect.getsource(obj)
        except (TypeError, OSError):
            src = repr(obj) + "\n"
        out.append(f"# --- {name}: {PARTS[lesson][name]}\n{src}")
    return "\n".join(out)


def load(lesson: str, *names: str) -> dict[str, Any]:
    """``{name: part}`` saved for ``lesson`` (all of them, or the ``names`` asked for)."""
    import cloudpickle

    path = _path(lesson)
    if not path.exists():
        raise PartsMissing(f"no parts of lesson {lesson} in {folder()}: run that lesson's last cell "
                           f"(it saves your {', '.join(PARTS.get(lesson, {}))})")
    with open(path, "rb") as f:
        try:
            record = cloudpickle.load(f)
        except Exception as e:  # another Python, or a file cut short
            raise PartsMissing(f"{path} cannot be read here ({type(e).__name__}: {e}); run lesson {lesson}'s "
                               "last cell again") from None
    parts = dict(record["parts"])
    missing = [n for n in names if n not in parts]
    if missing:
        raise PartsMissing(f"{path} has {sorted(parts)}, not {missing}: run lesson {lesson}'s last cell again")
    return {n: parts[n] for n in (names or parts)}


def collect(lessons: Optional[Mapping[str, Any]] = None) -> dict[str, dict[str, Any]]:
    """``{lesson: {name: part}}`` for every lesson of ``lessons`` (default: all of ``PARTS``)
    whose parts were saved; lessons without a file are left out (``missing`` says which)."""
    found = {}
    for lesson in (lessons or PARTS):
        try:
            found[lesson] = load(lesson)
        except PartsMissing:
            continue
    return found


def missing(found: Mapping[str, Any], lessons: Optional[Mapping[str, Any]] = None) -> list[str]:
    """The lessons of ``lessons`` (default: all) that ``collect`` did not find."""
    return [lesson for lesson in (lessons or PARTS) if lesson not in found]
