"""Static checks of a lesson's source notebook (docs/lessons.md): the standard first cells,
unique grade ids, hidden tests for every exercise, and no solution text in the released notebook."""
from __future__ import annotations

import ast
import re

from autograder.authoring import cell_kind
from autograder.inproc import exercise_of
from autograder.notebooks import grade_id

MARKERS = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)")


def structure_problems(nb) -> list[str]:
    problems = []
    cells = nb.cells
    if len(cells) < 2:
        return ["a lesson needs at least a title cell and the setup cell"]
    first, setup = cells[0], cells[1]
    if first.cell_type != "markdown" or not re.search(r"^# \S", first.source, re.M):
        problems.append("cell 1 must be markdown with the lesson title ('# ...')")
    elif "colab.research.google.com" not in first.source:
        problems.append("cell 1 must carry the 'Open in Colab' badge")
    if cell_kind(setup) != "setup" or grade_id(setup) != "setup":
        problems.append("cell 2 must be the locked [setup id=setup] cell")
    else:
        for needle in ('"google.colab" in sys.modules', "import course", "course.CUDA_MODE"):
            if needle not in setup.source:
                problems.append(f"the setup cell must contain {needle!r} (docs/lessons.md)")
    ids = [grade_id(c) for c in cells if grade_id(c)]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        problems.append(f"duplicate grade ids: {dups}")
    exercises = [grade_id(c) for c in cells if cell_kind(c) == "solution"]
    hidden: dict[str, int] = {ex: 0 for ex in exercises}
    for c in cells:
        if cell_kind(c) != "test":
            continue
        ex = exercise_of(grade_id(c), exercises)
        if ex is None:
            problems.append(f"test cell {grade_id(c)} does not name an exercise (test_<exercise>...)")
        elif "### BEGIN HIDDEN TESTS" in c.source:
            hidden[ex] += 1
    for c in cells:
        if cell_kind(c) == "solution" and "### BEGIN SOLUTION" not in c.source:
            problems.append(f"solution cell {grade_id(c)} has no ### BEGIN SOLUTION region")
    problems += [f"exercise {ex} has no hidden tests" for ex, n in hidden.items() if n == 0]
    problems += _test_cell_problems(cells)
    return problems


def _test_cell_problems(cells) -> list[str]:
    """nbgrader reads a value a test cell displays as partial credit; hypothesis without
    ``derandomize=True`` would grade the same answer differently from run to run."""
    problems = []
    for c in cells:
        if cell_kind(c) != "test":
            continue
        code = "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", l) for l in c.source.splitlines())
        try:
            body = ast.parse(code).body
        except SyntaxError as e:
            problems.append(f"test cell {grade_id(c)} is not valid Python: {e.msg} (line {e.lineno})")
            continue
        # A final call (a check helper returning None) displays nothing; any other expression
        # (a name, a comparison) shows a value that nbgrader would take as the cell's score.
        if body and isinstance(body[-1], ast.Expr) and not isinstance(body[-1].value, (ast.Constant, ast.Call)):
            problems.append(f"test cell {grade_id(c)} ends with a bare expression (nbgrader reads it as a score)")
        for line in c.source.splitlines():
            if re.match(r"\s*@\w*settings\(", line) and "derandomize=True" not in line:
                problems.append(f"test cell {grade_id(c)}: hypothesis settings without derandomize=True")
    return problems


def secret_lines(nb) -> set[str]:
    """Distinctive lines inside solution and hidden-test regions: long enough to be telling and
    not also present outside those regions (a line repeated in the visible stub is no leak)."""
    inside, outside = set(), set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        region = False
        for line in cell.source.splitlines():
            if MARKERS.match(line):
                region = line.strip().startswith("### BEGIN")
                continue
            text = line.strip()
            (inside if region else outside).add(text)
    return {l for l in inside - outside if len(l) >= 12 and not l.startswith("#")}


def leaked_lines(source_nb, released_nb) -> list[str]:
    released = "\n".join(c.source for c in released_nb.cells)
    released_lines = {l.strip() for l in released.splitlines()}
    return sorted(l for l in secret_lines(source_nb) if l in released_lines)
