"""The hardened grading settings, shared by ``grade`` (one learner) and ``autograde`` (a class).

Every limit can be lowered or raised through an environment variable so the test suite can use
short limits and an instructor can be generous; the defaults suit the course's notebooks
(each solution runs in well under a minute on a CPU).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

PREAMBLE = Path(__file__).with_name("preamble.py")


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number of seconds/characters") from None


@dataclass(frozen=True)
class Limits:
    cell_timeout: int = 120           # s a single cell may run before the kernel is interrupted
    submission_timeout: int = 600     # s for a whole notebook; then the process group is killed
    startup_timeout: int = 60         # s to wait for the kernel to start
    output_chars: int = 20_000        # characters of text output stored per cell
    outputs_per_cell: int = 50        # output items stored per cell

    @classmethod
    def from_env(cls, **overrides) -> "Limits":
        base = cls(
            cell_timeout=_int_env("AUTOGRADER_CELL_TIMEOUT", cls.cell_timeout),
            submission_timeout=_int_env("AUTOGRADER_TIMEOUT", cls.submission_timeout),
            startup_timeout=_int_env("AUTOGRADER_STARTUP_TIMEOUT", cls.startup_timeout),
            output_chars=_int_env("AUTOGRADER_OUTPUT_CHARS", cls.output_chars),
            outputs_per_cell=_int_env("AUTOGRADER_OUTPUTS_PER_CELL", cls.outputs_per_cell),
        )
        return base if not overrides else Limits(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


def kernel_env() -> dict[str, str]:
    """Environment of the grading kernel: the CUDA simulator on when no GPU, quiet Numba, no GUI."""
    from course._env import SIM_VAR, gpu_present

    env = dict(os.environ)
    if SIM_VAR not in env:
        env[SIM_VAR] = "0" if gpu_present() else "1"
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONWARNINGS"] = "ignore"  # the preamble narrows this down once the kernel is up
    env["AUTOGRADER_GRADING"] = "1"
    return env


def kernel_arguments() -> list[str]:
    """Arguments for the IPython kernel: in-memory history and the hidden preamble file."""
    return [
        "--HistoryManager.hist_file=:memory:",
        f"--IPKernelApp.exec_files={[str(PREAMBLE)]!r}",
    ]


def python() -> str:
    return sys.executable


def ensure_tools_on_path() -> None:
    """nbgrader runs ``alembic`` (a console script) when it creates a gradebook: make the scripts
    beside this interpreter findable even when the virtualenv was not activated."""
    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir, *[p for p in parts if p]])
