"""Run a notebook (or a student's autograde) in its own process group under a wall-clock limit.

Code that ignores interrupts (an endless loop inside a simulated CUDA kernel thread, a learner who
blocks SIGINT) cannot be stopped by the per-cell timeout, so every submission runs in a child
process started in a new session; when the outer limit passes, that session and the sessions of
all its descendants (Jupyter starts each kernel in a session of its own) are killed.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.execute import STATUS_KEY, mark_unfinished
from autograder.sandbox import SPEC_ENV, Sandbox
from autograder.settings import LIMITS_ENV, Limits, kernel_env


@dataclass
class Outcome:
    returncode: int | None   # None when the outer limit killed it
    seconds: float
    log: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def _descendants(pid: int) -> list[int]:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil ships with ipykernel
        return []
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def kill_tree(pid: int) -> None:
    """SIGKILL the process group of ``pid`` and of every descendant (kernels have their own)."""
    groups = set()
    for p in [pid, *_descendants(pid)]:
        try:
            groups.add(os.getpgid(p))
        except OSError:
            pass
    own = os.getpgid(0)
    for g in groups - {own}:
        try:
            os.killpg(g, signal.SIGKILL)
        except OSError:
            pass


def run_limited(cmd: list[str], limit: float, cwd: str | None = None, env: dict | None = None) -> Outcome:
    """Run ``cmd`` in a new session; kill its whole tree after ``limit`` seconds."""
    start = time.monotonic()
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            rc = None
        kill_tree(proc.pid)  # also reaps leftovers of a finished run (learner-spawned processes)
        if rc is None:
            proc.wait()
        log.seek(0)
        text = log.read()
    return Outcome(rc, time.monotonic() - start, text[-20_000:])


def execute_isolated(nb, assets: Path | None, limits: Limits, hide: list[Path] = ()
                     ) -> tuple[nbformat.NotebookNode, Outcome, Sandbox]:
    """Execute ``nb`` in a worker process whose kernel runs in a fresh sandbox holding the files
    of ``assets`` (the lesson folder as the instructor shipped it) and unable to see ``hide``;
    return the executed (or partially executed) notebook. The caller closes the sandbox."""
    with tempfile.TemporaryDirectory(prefix="autograder-") as tmp:
        src, out = Path(tmp, "in.ipynb"), Path(tmp, "out.ipynb")
        progress = Path(tmp, "progress.ipynb")
        src.write_text(nbformat.writes(nb), encoding="utf-8")
        box = Sandbox.create(limits, [*hide, Path(tmp)], assets)
        cmd = [sys.executable, "-m", "autograder.worker", str(src), str(out), str(box.work),
               "--progress", str(progress), "--limits", json.dumps(dataclasses.asdict(limits))]
        env = {**kernel_env(), SPEC_ENV: str(box.spec_file), LIMITS_ENV: limits.to_json()}
        outcome = run_limited(cmd, limits.submission_timeout, cwd=str(box.work), env=env)
        for candidate in (out, progress):
            if candidate.exists():
                try:
                    done = nbformat.read(str(candidate), as_version=4)
                    break
                except Exception:  # noqa: BLE001 - a torn write: fall back to the next file
                    continue
        else:
            done = nb
        mark_unfinished(done, "the time limit for the whole notebook ran out" if outcome.timed_out
                        else "the grading process stopped early")
        return done, outcome, box
