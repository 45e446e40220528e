"""Read notebooks and rebuild a learner's submission on top of the instructor's source.

The source notebook (``solutions/NN_name/NN_name.ipynb``) decides what is executed and what is
worth points: its test and locked cells are put back verbatim (hidden tests included), its
``nbgrader`` metadata is the only metadata that counts. From the learner's notebook we take only
the *code* of the answer cells (matched by nbgrader ``grade_id``, or by cell id when a frontend
dropped the metadata), their edits of ungraded demo cells, and cells they added, stripped of any
``nbgrader`` metadata they carry (a learner-added cell claiming ``grade: true, points: 1000`` is
just code).
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.authoring import cell_kind

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


class UnreadableNotebook(Exception):
    """The learner's file is not a notebook we can read (not JSON, or not nbformat 4)."""


def read_learner_notebook(path: Path) -> nbformat.NotebookNode:
    """Parse a learner's notebook leniently (no schema validation), with a clear error otherwise."""
    try:
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise UnreadableNotebook(f"cannot read {path}: {e.strerror or e}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UnreadableNotebook(
            f"{Path(path).name} is not a valid notebook: invalid JSON at line {e.lineno}, "
            f"column {e.colno} ({e.msg}). Was it edited outside Jupyter or saved half-way? "
            "Re-download the lesson and copy your answers into it.") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UnreadableNotebook(f"{Path(path).name} is JSON but not a Jupyter notebook (no list of cells)")
    try:
        nb = nbformat.from_dict(data)
        if nb.get("nbformat", 4) != 4:
            nb = nbformat.convert(nb, 4)
    except Exception as e:  # noqa: BLE001 - any malformed structure is the learner's file
        raise UnreadableNotebook(f"{Path(path).name} is not a readable nbformat-4 notebook: {e}") from None
    return nb


def grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) else None


def _source_text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


@dataclass
class SourceInfo:
    """What the instructor's notebook says is graded."""

    nb: nbformat.NotebookNode
    tests: dict[str, float] = field(default_factory=dict)  # test grade_id -> points, in order
    exercises: list[str] = field(default_factory=list)

    @property
    def max_score(self) -> float:
        return float(sum(self.tests.values()))


def source_info(nb) -> SourceInfo:
    info = SourceInfo(nb=nb)
    for cell in nb.cells:
        kind = cell_kind(cell)
        if kind == "test":
            info.tests[grade_id(cell)] = float(cell.metadata["nbgrader"].get("points", 0))
        elif kind == "solution":
            info.exercises.append(grade_id(cell))
    return info


def released_stub(cell) -> str:
    """The code a learner starts from: the solution region replaced as nbgrader's ClearSolutions does."""
    out, inside = [], False
    for line in _source_text(cell).splitlines():
        if line.strip().startswith("### BEGIN SOLUTION"):
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + l for l in STUB.splitlines())
        elif line.strip().startswith("### END SOLUTION"):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def without_hidden(source: str) -> str:
    """A test cell as released: the hidden-test region (markers included) removed."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip().startswith("### BEGIN HIDDEN TESTS"):
            inside = True
        elif line.strip().startswith("### END HIDDEN TESTS"):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _code_lines(source: str) -> list[str]:
    return [l.rstrip() for l in source.splitlines() if l.strip()]


def _new_code_cell(source: str, metadata: dict | None = None, cell_id: str | None = None):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata = copy.deepcopy(metadata or {})
    if cell_id:
        cell.id = cell_id
    return cell


@dataclass
class _Learner:
    """What a learner's notebook brings, keyed by the source's cells."""

    answers: dict = field(default_factory=dict)     # solution grade_id -> learner code
    demo_edits: dict = field(default_factory=dict)  # demo cell id -> learner code
    added: dict = field(default_factory=dict)       # anchor (source cell key) -> added cells
    seen_tests: set = field(default_factory=set)
    notes: list = field(default_factory=list)


def merge(source_nb, learner_nb) -> tuple[nbformat.NotebookNode, list[str]]:
    """The notebook to execute: the source's structure with the learner's answers in it.

    Returns the merged notebook and notes about what was repaired (deleted tests restored,
    missing answers, tampered metadata ignored) for the learner's feedback.
    """
    src_ids = {grade_id(c): c for c in source_nb.cells if grade_id(c)}
    demo_ids = {c.get("id") for c in source_nb.cells if c.cell_type == "code" and not grade_id(c)}
    learner = _read_learner(learner_nb, src_ids, demo_ids)
    merged = nbformat.v4.new_notebook()
    merged.metadata = copy.deepcopy(source_nb.metadata)
    merged.cells.extend(learner.added.get(None, []))
    for cell in source_nb.cells:
        merged.cells.append(_merged_cell(cell, learner))
        merged.cells.extend(learner.added.get(grade_id(cell) or cell.get("id"), []))
    for cell in merged.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    _dedupe_ids(merged)
    return merged, learner.notes + reference_notes(source_nb, learner.answers)


def _read_learner(learner_nb, src_ids: dict, demo_ids: set) -> _Learner:
    """Walk the learner's cells: answers, edited demos, cells they added (anchored after the last
    source cell seen), which tests are still there, and notes on tampering."""
    got, anchor = _Learner(), None
    for cell in learner_nb.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        gid, cid = grade_id(cell), cell.get("id")
        key = gid if gid in src_ids else (cid if cid in src_ids else None)
        if key is not None:
            _read_graded(cell, key, src_ids[key], got)
            anchor = key
        elif cid in demo_ids and cell.get("cell_type") == "code" and cid not in got.demo_edits:
            got.demo_edits[cid] = _source_text(cell)
            anchor = cid
        elif cell.get("cell_type") == "code":
            meta = cell.get("metadata", {})
            if isinstance(meta, dict) and "nbgrader" in meta:
                got.notes.append(f"a cell you added carried grading metadata ({gid or 'no id'}): it was ignored")
            got.added.setdefault(anchor, []).append(_new_code_cell(_source_text(cell)))
    return got


def _read_graded(cell, key: str, source_cell, got: _Learner) -> None:
    kind = cell_kind(source_cell)
    if kind == "solution" and cell.get("cell_type") == "code" and key not in got.answers:
        got.answers[key] = _source_text(cell)
    elif kind == "test":
        got.seen_tests.add(key)
        original = _source_text(source_cell)
        if _code_lines(_source_text(cell)) not in (_code_lines(original), _code_lines(without_hidden(original))):
            got.notes.append(f"test cell {key} was edited: the original was put back")


def _merged_cell(cell, got: _Learner):
    """The merged notebook's version of source cell ``cell``."""
    gid, kind = grade_id(cell), cell_kind(cell)
    key = gid or cell.get("id")
    if kind == "solution":
        if gid in got.answers:
            return _new_code_cell(got.answers[gid], cell.metadata, cell.get("id"))
        got.notes.append(f"answer cell {gid} is missing: it counts as not answered")
        return _new_code_cell(released_stub(cell), cell.metadata, cell.get("id"))
    if kind == "code" and key in got.demo_edits:
        return _new_code_cell(got.demo_edits[key], cell.metadata, cell.get("id"))
    if kind == "test" and gid not in got.seen_tests:
        got.notes.append(f"test cell {gid} was deleted: it was put back")
    return copy.deepcopy(cell)


_GUARD_CALL = re.compile(r"""_begin\(\s*["'](?P<lesson>\d\d_\w+)["']""")


def lesson_of(source_nb) -> str | None:
    """The lesson a source notebook's test cells name when they start their guard."""
    for cell in source_nb.cells:
        if cell_kind(cell) == "test":
            m = _GUARD_CALL.search(_source_text(cell))
            if m:
                return m["lesson"]
    return None


def reference_notes(source_nb, answers: dict[str, str]) -> list[str]:
    """Feedback for answer cells that import the reference their exercise must not use."""
    lesson = lesson_of(source_nb)
    if lesson is None:
        return []
    try:
        from course.grading import flagged_imports
    except ImportError:  # a course without the guard: nothing to flag
        return []
    notes = []
    for exercise, code in answers.items():
        names = flagged_imports(lesson, exercise, code)
        if names:
            notes.append(f"answer cell {exercise} imports {', '.join(names)}: that is the reference "
                         "this exercise asks you to write yourself, and it earns no points")
    return notes


def _dedupe_ids(nb) -> None:
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        cid = cell.get("id")
        if not cid or cid in seen:
            cid = f"added-{i:04d}"
            while cid in seen:
                cid += "x"
            cell.id = cid
        seen.add(cid)
