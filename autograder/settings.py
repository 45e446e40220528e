"""The hardened grading settings, shared by ``grade`` (one learner) and ``autograde`` (a class).

Every limit can be lowered or raised through an environment variable so the test suite can use
short limits and an instructor can be generous; the defaults suit the course's notebooks
(each solution runs in well under a minute on a CPU).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

PREAMBLE = Path(__file__).with_name("preamble.py")
STARTUP = ("preamble.py", "sandbox_startup.py")  # run by the kernel, in this order, before cell 1
LIMITS_ENV = "AUTOGRADER_LIMITS"  # the Limits as JSON, passed from the grader to its workers


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
    # the sandbox (see sandbox.py): limits of the grading kernel's process
    memory_mb: int = 4096             # private writable memory (RLIMIT_DATA)
    cpu_seconds: int = 0              # CPU time of the kernel; 0: the notebook's time limit
    processes: int = 512              # processes and threads of the sandbox's user
    open_files: int = 1024
    file_mb: int = 256                # largest file the kernel may write

    @property
    def cpu_limit(self) -> int:
        return self.cpu_seconds or self.submission_timeout

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls, **overrides) -> "Limits":
        passed = os.environ.get(LIMITS_ENV)
        if passed:  # a worker: exactly the grader's limits, command-line flags included
            base = cls(**json.loads(passed))
            return base if not overrides else dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
        base = cls(
            cell_timeout=_int_env("AUTOGRADER_CELL_TIMEOUT", cls.cell_timeout),
            submission_timeout=_int_env("AUTOGRADER_TIMEOUT", cls.submission_timeout),
            startup_timeout=_int_env("AUTOGRADER_STARTUP_TIMEOUT", cls.startup_timeout),
            output_chars=_int_env("AUTOGRADER_OUTPUT_CHARS", cls.output_chars),
            outputs_per_cell=_int_env("AUTOGRADER_OUTPUTS_PER_CELL", cls.outputs_per_cell),
            memory_mb=_int_env("AUTOGRADER_MEMORY_MB", cls.memory_mb),
            cpu_seconds=_int_env("AUTOGRADER_CPU_SECONDS", cls.cpu_seconds),
            processes=_int_env("AUTOGRADER_PROCESSES", cls.processes),
            open_files=_int_env("AUTOGRADER_OPEN_FILES", cls.open_files),
            file_mb=_int_env("AUTOGRADER_FILE_MB", cls.file_mb),
        )
        return base if not overrides else Limits(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


def kernel_env() -> dict[str, str]:
    """Environment of the grading kernel: the CUDA simulator on when no GPU, quiet Numba, no GUI."""
    from course._env import SIM_VAR, gpu_present

    env = dict(os.environ)
    if SIM_VAR not in env:
        env[SIM_VAR] = "0" if gpu_present() else "1"
    env.setdefault("MPLBACKEND", "Agg")
    env["COURSE_GRADING"] = "1"  # course.parts.save writes nothing while a notebook is graded
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONWARNINGS"] = "ignore"  # the preamble narrows this down once the kernel is up
    env["AUTOGRADER_GRADING"] = "1"
    return env


def kernel_arguments(package_dir: Path | None = None) -> list[str]:
    """Arguments for the IPython kernel: in-memory history and the hidden startup files (from
    ``package_dir``, the sandbox's copy of ``autograder/``, when the kernel cannot see this one)."""
    folder = Path(package_dir) if package_dir else PREAMBLE.parent
    return [
        "--HistoryManager.hist_file=:memory:",
        f"--IPKernelApp.exec_files={[str(folder / name) for name in STARTUP]!r}",
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
