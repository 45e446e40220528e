"""Scores from an executed notebook: a test cell earns its points only if it ran and raised nothing.

Points always come from the source notebook. A test's status is the kernel's execute reply
(recorded by ``execute``), not the outputs, which learner code could clear; stderr noise and
displayed values in a passing test cell are ignored (no partial credit in this course).
"""
from __future__ import annotations

from dataclasses import dataclass

from autograder.execute import STATUS_KEY
from autograder.notebooks import SourceInfo, grade_id


@dataclass
class TestResult:
    __test__ = False  # not a pytest class

    id: str
    points: float
    score: float
    message: str

    @property
    def passed(self) -> bool:
        return self.score == self.points


def first_error(cell) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            value = (str(out.get("evalue", "")).strip().splitlines() or [""])[0]
            return f"{out.get('ename', 'Error')}: {value}".rstrip(": ")
    status = cell.get("metadata", {}).get(STATUS_KEY)
    return f"did not run ({status or 'no result'})"


def cell_passed(cell) -> bool:
    status = cell.get("metadata", {}).get(STATUS_KEY)
    return status == "ok" and not any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def score_tests(executed_nb, info: SourceInfo) -> list[TestResult]:
    cells = {}
    for cell in executed_nb.cells:
        gid = grade_id(cell)
        if gid in info.tests and gid not in cells:
            cells[gid] = cell
    results = []
    for tid, points in info.tests.items():
        cell = cells.get(tid)
        if cell is not None and cell_passed(cell):
            results.append(TestResult(tid, points, points, ""))
        else:
            results.append(TestResult(tid, points, 0.0, first_error(cell) if cell else "test cell missing"))
    return results


def clean_test_outputs(cell) -> None:
    """Make a test cell's outputs say what its status says, for nbgrader's determine_grade."""
    outputs = list(cell.get("outputs", []))
    if cell_passed(cell):
        cell.outputs = [o for o in outputs if o.get("output_type") == "display_data"
                        or (o.get("output_type") == "stream" and o.get("name") == "stdout")]
    elif not any(o.get("output_type") == "error" for o in outputs):
        from autograder.execute import error_output

        cell.outputs = outputs + [error_output("TestFailed", first_error(cell))]
