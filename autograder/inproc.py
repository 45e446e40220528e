"""Run a notebook's cells in this process, with chosen answer cells replaced.

Used by the test suite to prove that each exercise's tests reject plausible wrong answers
(kept as fixtures in ``tests/fixtures/wrong/<lesson>/<exercise>__<what_is_wrong>.py``) without
paying for a Jupyter kernel per fixture. The real grading path is ``autograder.grade``; this is
a fast, faithful-enough stand-in: cells run in order in one namespace, IPython magics and shell
lines are skipped, and a test cell passes when it raises nothing.
"""
from __future__ import annotations

import contextlib
import io
import linecache
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import nbformat

from autograder.authoring import cell_kind

_MAGIC = re.compile(r"^\s*[%!]")


@dataclass
class InprocResult:
    tests: dict[str, Optional[str]] = field(default_factory=dict)  # test id -> None or error line
    errors: dict[str, str] = field(default_factory=dict)  # non-test cell id -> error line
    stderr: dict[str, str] = field(default_factory=dict)  # test id -> what it wrote to stderr (if any)
    cpu_seconds: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)  # cell id -> wall-clock seconds
    namespace: dict = field(default_factory=dict, repr=False)  # the notebook's globals afterwards

    def failed(self) -> list[str]:
        return [t for t, err in self.tests.items() if err is not None]


def exercise_of(test_id: str, exercises: list[str]) -> Optional[str]:
    """The exercise a test cell belongs to: the longest exercise id that ``test_<id>`` starts."""
    best = None
    for ex in exercises:
        if test_id == f"test_{ex}" or test_id.startswith(f"test_{ex}_"):
            if best is None or len(ex) > len(best):
                best = ex
    return best


def run_notebook(path: Path | str, replace: dict[str, str] | None = None,
                 stop_after_tests_of: str | None = None) -> InprocResult:
    """Execute code cells in order; ``replace`` maps a solution cell id to substitute code.

    With ``stop_after_tests_of``, stop after the last test cell of that exercise (faster).
    """
    replace = dict(replace or {})
    nb = nbformat.read(str(path), as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    ids = [c.metadata.get("nbgrader", {}).get("grade_id", c.get("id")) for c in code_cells]
    exercises = [i for c, i in zip(code_cells, ids) if cell_kind(c) == "solution"]
    unknown = set(replace) - set(exercises)
    if unknown:
        raise KeyError(f"no solution cell(s) {sorted(unknown)} in {path}")
    last = None
    if stop_after_tests_of is not None:
        tests = [k for k, (c, i) in enumerate(zip(code_cells, ids))
                 if cell_kind(c) == "test" and exercise_of(i, exercises) == stop_after_tests_of]
        if not tests:
            raise KeyError(f"no test cells for exercise {stop_after_tests_of!r} in {path}")
        last = tests[-1]
    ns: dict = {"__name__": "__main__"}
    result = InprocResult(namespace=ns)
    with _private_parts():
        _run_cells(code_cells, ids, exercises, replace, stop_after_tests_of, last, ns, result)
    return result


@contextlib.contextmanager
def _private_parts():
    """A lesson's last cell saves the learner's parts (course.parts) into ``COURSE_PARTS_DIR``,
    else ``~/.course/parts``: a run here (the test suite's) gets a temporary folder of its own
    unless its caller named one, so no run writes into the home folder."""
    if os.environ.get("COURSE_PARTS_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="inproc-parts-") as folder:
        os.environ["COURSE_PARTS_DIR"] = folder
        try:
            yield
        finally:
            os.environ.pop("COURSE_PARTS_DIR", None)


def _run_cells(code_cells, ids, exercises, replace, stop_after_tests_of, last, ns, result) -> None:
    sink = io.StringIO()
    t0 = time.process_time()
    for k, (cell, cid) in enumerate(zip(code_cells, ids)):
        if (stop_after_tests_of is not None and cell_kind(cell) == "test"
                and exercise_of(cid, exercises) != stop_after_tests_of):
            continue  # test cells are self-contained: other exercises' tests cannot matter here
        src = replace.get(cid, cell.source)
        # A magic or shell line becomes `pass` at the same indent, so `if ...:` blocks stay valid.
        src = "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", l) if _MAGIC.match(l) else l
                        for l in src.splitlines())
        err, errsink = None, io.StringIO()
        filename = f"<cell {cid}>"
        # as IPython does: the cell's source is findable, so inspect.getsource works on its functions
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(errsink):
                exec(compile(src, filename, "exec"), ns)
        except BaseException as e:  # noqa: BLE001 - a failing cell is data here
            if isinstance(e, KeyboardInterrupt):
                raise
            first = (str(e).splitlines() or [""])[0]
            err = f"{type(e).__name__}: {first}"
        result.seconds[cid] = time.perf_counter() - started
        grading = sys.modules.get("course.grading")
        if grading is not None:
            grading.reset()  # as the post-cell hook does in a kernel: no trap outlives its cell
        if cell_kind(cell) == "test":
            result.tests[cid] = err
            if errsink.getvalue():
                result.stderr[cid] = errsink.getvalue()
        elif err is not None:
            result.errors[cid] = err
        if last is not None and k >= last:
            break
    result.cpu_seconds = time.process_time() - t0
