"""A class of 20 graded three ways (serial, ``--workers 2``, Dask local cluster of 2): the same
grades CSV; and the hostile fixtures (fork bomb, memory bomb, socket connect, writing into the
package, reading solutions/) each graded with a readable message, nobody else affected, and no
file outside the sandbox changed (hashes of the package and the course before and after).
"""
from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # three gradings of a class of 20: about 4-7 minutes on 2 cores

from fixtures.minilesson.mkcourse import LESSON, answer, make_course, variant

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile_sandbox"
BOMBS = ("fork_bomb", "memory_bomb", "socket_connect", "write_package", "read_solutions")


def _tree_hash(*folders: Path, only: str = "*") -> dict[str, str]:
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob(only)):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".nbi", ".nbc"):
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _class(root: Path, source: Path) -> Path:
    subs = root / "submissions"
    for i in range(8):
        variant(source, subs / f"good{i:02d}" / LESSON / f"{LESSON}.ipynb")
    for i in range(5):
        variant(source, subs / f"wrong{i:02d}" / LESSON / f"{LESSON}.ipynb",
                replace={"scale": answer("scale_wrong.py")})
    (subs / "broken00" / LESSON).mkdir(parents=True)
    (subs / "broken00" / LESSON / f"{LESSON}.ipynb").write_text("{ not json")
    (subs / "broken01" / LESSON).mkdir(parents=True)  # no notebook at all
    for name in BOMBS:
        code = (HOSTILE / f"{name}.py").read_text().replace("__COURSE_ROOT__", str(root))
        variant(source, subs / f"hostile_{name}" / LESSON / f"{LESSON}.ipynb", replace={"add": code})
    return subs


def _autograde(root: Path, subs: Path, work: Path, *extra: str) -> tuple[dict, str]:
    env = {**os.environ, "AUTOGRADER_MEMORY_MB": "1024", "AUTOGRADER_PROCESSES": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "--root", str(root), "autograde", str(subs),
         "--lesson", LESSON, "--course-dir", str(work), "--cell-timeout", "20", "--timeout", "90", *extra],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (work / f"grades-{LESSON}.csv").read_text()
    return {r["student"]: r for r in csv.DictReader(text.splitlines())}, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    source = make_course(root)
    subs = _class(root, source)
    # the course root (solutions, the work folders' sources) and the file the fixtures attack in
    # the real package (other files of the checkout may be edited by people while this runs)
    watched = lambda: {**_tree_hash(root / "solutions"), **_tree_hash(ROOT / "course", only="testing.py")}  # noqa: E731
    before = watched()
    runs = {}
    for name, extra in (("serial", ()), ("workers", ("--workers", "2")), ("dask", ("--dask", "--workers", "2"))):
        runs[name] = _autograde(root, subs, root / f"work-{name}", *extra)
        print(name, [l for l in runs[name][1].splitlines() if "per minute" in l])  # the rate
    return root, runs, before, watched()


def test_parallel_and_dask_give_the_serial_grades(graded):
    root, runs, _, _ = graded
    serial = (root / "work-serial" / f"grades-{LESSON}.csv").read_text()
    assert len(runs["serial"][0]) == 20
    for name in ("workers", "dask"):
        assert (root / f"work-{name}" / f"grades-{LESSON}.csv").read_text() == serial, runs[name][1]
    assert "submissions/min" in runs["dask"][1]  # the progress bar


def test_scores(graded):
    _, runs, _, _ = graded
    rows, out = runs["serial"]
    for student, r in rows.items():
        want = {"good": "6", "wrong": "4", "broken": "0", "hostile": "4"}[student.split("_")[0].rstrip("0123456789")]
        assert r["score"] == want, (student, r, out)
    for name in BOMBS:  # the attack fails, the rest of the notebook is graded normally
        r = rows[f"hostile_{name}"]
        assert (r["test_add"], r["test_scale"], r["test_scale_noisy"], r["problem"]) == ("0", "1", "2", ""), (name, out)


@pytest.mark.parametrize("name, message", [
    # a loaded machine may stop the fork bomb by the cell's time limit before fork() fails
    ("fork_bomb", ("Resource temporarily unavailable", "the cell ran longer than")),
    ("memory_bomb", ("MemoryError",)),
    ("socket_connect", ("network access is disabled while grading",)),
    # the package copy is root's and read-only; the real files are not even visible
    ("write_package", ("Permission denied", "Read-only file system")),
    ("read_solutions", ("no solutions/ visible from the grading kernel",)),
])
def test_each_attack_gets_a_readable_message(graded, name, message):
    root, _, _, _ = graded
    page = (root / "work-serial" / "feedback" / f"hostile_{name}" / LESSON / f"{LESSON}.html").read_text()
    assert any(m in page for m in message), name
    assert "WROTE /" not in page  # the fixture's report of a file it managed to change


def test_nothing_outside_the_sandbox_changed(graded):
    _, _, before, after = graded
    assert len(before) >= 2 and after == before


def test_gradebook_written_by_the_coordinator(graded):
    root, _, _, _ = graded
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'work-dask' / 'gradebook.db'}") as gb:
        assert gb.find_submission(LESSON, "good00").score == 6
        assert gb.find_submission(LESSON, "wrong00").score == 4
        assert gb.find_submission(LESSON, "hostile_fork_bomb").score == 4
