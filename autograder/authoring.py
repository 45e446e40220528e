"""Write lessons as percent-format Python, keep them as nbgrader notebooks.

The truth is ``solutions/NN_name/NN_name.ipynb``; this module converts it to and from a
percent-format text that is pleasant to edit and review::

    python -m autograder.authoring to-py solutions/01_containers/01_containers.ipynb > /tmp/01.py
    python -m autograder.authoring from-py /tmp/01.py solutions/01_containers/01_containers.ipynb

Cell headers:

    # %% [markdown]                         prose (each line starts with "# ")
    # %% [code]                             demo code: runs, not graded, learners may edit
    # %% [setup id=setup]                   locked code (nbgrader read-only), e.g. imports
    # %% [solution id=vector_grow]          an exercise: the learner's answer cell
    # %% [test id=test_vector_grow points=3]  graded test cell (locked); ids start with test_<exercise>

A test cell tests the exercise whose id it starts with (``test_vector_grow_hidden`` tests
``vector_grow``). Inside solution cells use ``### BEGIN SOLUTION``/``### END SOLUTION``; inside
test cells ``### BEGIN HIDDEN TESTS``/``### END HIDDEN TESTS``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HEADER = re.compile(r"^# %% \[(?P<kind>markdown|code|setup|solution|test)(?P<opts>[^\]]*)\]\s*$")
KINDS = ("markdown", "code", "setup", "solution", "test")


def _meta(kind: str, opts: dict) -> dict:
    if kind in ("markdown", "code"):
        return {}
    gid = opts.get("id")
    if not gid:
        raise ValueError(f"a [{kind}] cell needs id=...")
    nb = {"grade_id": gid, "schema_version": 3, "task": False}
    if kind == "setup":
        nb.update(grade=False, solution=False, locked=True)
    elif kind == "solution":
        nb.update(grade=False, solution=True, locked=False)
    else:
        nb.update(grade=True, solution=False, locked=True, points=float(opts.get("points", 1)))
    return {"nbgrader": dict(sorted(nb.items()))}


def cell_kind(cell) -> str:
    meta = cell.get("metadata", {}).get("nbgrader")
    if cell["cell_type"] == "markdown":
        return "markdown"
    if not meta:
        return "code"
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("solution"):
        return "solution"
    return "setup"


def from_py(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    blocks: list[tuple[str, dict, list[str]]] = []
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            opts = dict(kv.split("=", 1) for kv in m["opts"].split())
            blocks.append((m["kind"], opts, []))
        elif blocks:
            blocks[-1][2].append(line)
        elif line.strip():
            raise ValueError(f"text before the first cell header: {line!r}")
    for i, (kind, opts, lines) in enumerate(blocks):
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            src = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in lines)
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell("\n".join(lines))
        cell.metadata = _meta(kind, opts)
        cell.id = opts.get("id", f"cell-{i:03d}")
        nb.cells.append(cell)
    ids = [c.id for c in nb.cells]
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        raise ValueError(f"duplicate cell ids: {sorted(dup)}")
    return nb


def to_py(nb) -> str:
    out = []
    for cell in nb.cells:
        kind = cell_kind(cell)
        meta = cell.metadata.get("nbgrader", {})
        opts = ""
        if kind in ("setup", "solution", "test"):
            opts = f" id={meta['grade_id']}"
        if kind == "test":
            pts = meta.get("points", 1)
            opts += f" points={int(pts) if float(pts).is_integer() else pts}"
        out.append(f"# %% [{kind}{opts}]")
        if kind == "markdown":
            out.extend(("# " + l) if l else "#" for l in cell.source.splitlines())
        else:
            out.extend(cell.source.splitlines())
        out.append("")
    return "\n".join(out)


def write_notebook(nb, path: Path) -> None:
    """Deterministic on-disk form: no outputs, no execution counts, sorted keys, trailing newline."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "to-py":
        sys.stdout.write(to_py(nbformat.read(argv[1], as_version=4)))
        return 0
    if len(argv) == 3 and argv[0] == "from-py":
        write_notebook(from_py(Path(argv[1]).read_text(encoding="utf-8")), Path(argv[2]))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
