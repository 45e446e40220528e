"""A Python environment in a folder only its owner can enter (a venv in a 0700 home folder): when
the sandbox drops to a user of its own, that user cannot start the kernel. The launcher checks
first, as that user, and grading reports which folder, its mode and owner, and the fix, in the
report of ``grade`` and in the CSV, feedback and console of ``autograde`` (issue 19).

The environment used here is this test's own, reached through a link inside a fresh 0700 folder
(``tempfile.mkdtemp``), so the kernel's interpreter and ``sys.prefix`` lie inside that folder.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import classjob, grade, sandbox
from autograder.layout import Layout
from autograder.settings import Limits
from fixtures.minilesson.mkcourse import LESSON, make_course, variant

ROOT = Path(__file__).resolve().parent.parent
# the uid drop happens when the grader is root (on Linux) and the sandbox is on
DROPS_UID = (sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0
             and os.environ.get(sandbox.DISABLE_ENV) != "1")
needs_uid_drop = pytest.mark.skipif(not DROPS_UID, reason="the sandbox switches to a user of its own only as root on Linux")


@pytest.fixture
def private_python():
    """(0700 folder, interpreter inside it): this environment seen through a link in the folder."""
    folder = Path(tempfile.mkdtemp(prefix="private-env-"))  # mode 0700, owned by root
    try:
        (folder / "venv").symlink_to(sys.prefix)
        yield folder, folder / "venv" / "bin" / Path(sys.executable).name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cli(python: Path, *args: str, root: Path) -> str:
    env = {**os.environ, "AUTOGRADER_CELL_TIMEOUT": "10", "AUTOGRADER_TIMEOUT": "90"}
    proc = subprocess.run([str(python), "-m", "autograder", "--root", str(root), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "the kernel stays root" in proc.stdout:  # no namespaces here: the older fallback applies
        pytest.skip("no namespaces on this machine: a Python only root can reach keeps the kernel root")
    return proc.stdout


def _assert_names_the_folder(text: str, folder: Path) -> None:
    assert f"cannot enter the folder {folder} (mode 0700 drwx------, owner root" in text, text
    assert f"`chmod o+x {folder}`" in text and f"{sandbox.DISABLE_ENV}=1" in text, text
    assert f"{folder}/venv/bin/" in text, text  # what it holds: the kernel's interpreter


@needs_uid_drop
def test_grade_says_which_folder_and_the_fix_works(private_python, tmp_path):
    folder, python = private_python
    source = make_course(tmp_path / "course")
    out = _cli(python, "grade", str(source), root=tmp_path / "course")
    error = next(line for line in out.splitlines() if line.startswith("ERROR: "))
    _assert_names_the_folder(error, folder)
    assert out.count("not graded: the grading kernel was not started") == 4, out
    assert "stopped unexpectedly" not in out and "kernel not started" in out, out
    folder.chmod(0o701)  # the fix the message gives: others may pass through, not list
    out = _cli(python, "grade", str(source), root=tmp_path / "course")
    assert "total              6/6" in out and "ERROR" not in out, out


@needs_uid_drop
def test_autograde_puts_it_in_csv_feedback_and_console(private_python, tmp_path):
    folder, python = private_python
    root = tmp_path / "course"
    source = make_course(root)
    for student in ("alice", "bob"):
        variant(source, root / "subs" / student / LESSON / f"{LESSON}.ipynb")
    out = _cli(python, "autograde", str(root / "subs"), "--lesson", LESSON, "--course-dir",
               str(tmp_path / "work"), "--timeout", "60", root=root)
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "work" / f"grades-{LESSON}.csv").open())}
    for student in ("alice", "bob"):
        assert rows[student]["score"] == "0"
        _assert_names_the_folder(rows[student]["problem"], folder)
        page = (tmp_path / "work" / "feedback" / student / LESSON / f"{LESSON}.html").read_text()
        assert f"cannot enter the folder {folder} (mode 0700" in page
        assert any(line.startswith(f"{student}: 0/6  (the grading kernel was not started") and str(folder) in line
                   for line in out.splitlines()), out


@needs_uid_drop
def test_the_check_runs_as_the_sandbox_user(private_python):
    """No kernel: ``_unreachable`` alone, on a folder others cannot enter, then can, and a file
    others cannot read (in a folder under /tmp: pytest's own temporary folders are 0700)."""
    top, _ = private_python
    top.chmod(0o755)
    spec = sandbox.Spec(str(top), [], 0, 0, 0, 0, 0, uid=200_000 + os.getpid())
    private = top / "home"
    (private / "env").mkdir(parents=True)
    (private / "env" / "lib.py").write_text("")
    private.chmod(0o700)
    need = [("the Python environment", str(private / "env"), str(private / "env"), os.X_OK)]
    got = sandbox._unreachable(spec, need)
    assert f"cannot enter the folder {private} (mode 0700 drwx------, owner root" in got, got
    assert f"chmod o+x {private}`" in got and f"which holds the Python environment ({private}/env)" in got
    private.chmod(0o711)
    assert sandbox._unreachable(spec, need) == ""
    (private / "env" / "lib.py").chmod(0o600)
    lib = str(private / "env" / "lib.py")
    got = sandbox._unreachable(spec, [("the package copy", lib, lib, os.R_OK)])
    assert f"cannot read {lib} (mode 0600 -rw-------, owner root)" in got, got


def test_a_refusal_is_reported_without_starting_another_kernel(tmp_path, monkeypatch):
    """Once a sandbox refused (the environment, not a submission), the rest of the run reports it
    without a sandbox or a kernel: in ``autograde``'s jobs and in ``grade``."""
    why = "the grading kernel was not started: ... the folder /somewhere ..."
    monkeypatch.setattr(sandbox, "_REFUSED", why)

    def no_sandbox(*a, **k):
        raise AssertionError("a sandbox was started after a refusal")
    monkeypatch.setattr(classjob.Sandbox, "create", no_sandbox)
    monkeypatch.setattr(grade, "execute_isolated", no_sandbox)
    source = make_course(tmp_path)
    job = classjob.Job(LESSON, "carol", source.read_text(), {}, source.read_text(), limits=Limits().to_json())
    result = classjob.run_job(job)
    assert result.problem == why and "/somewhere" in result.feedback
    assert sum(t[2] for t in result.tests) == 0 and not result.graded_by_nbgrader
    report = grade.grade_notebook(source, Layout(tmp_path), LESSON, Limits())
    assert report.error == why and report.score == 0 and report.max_score == 6
