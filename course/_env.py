"""Decide, before numba is first imported, whether Numba runs on a real GPU or its CUDA simulator.

Numba reads ``NUMBA_ENABLE_CUDASIM`` once, at import, so the choice must be made first and is
fixed for the life of the process. ``import course`` (and ``import kernels``) call
:func:`configure_cuda` so a lesson's first cell needs nothing more.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

SIM_VAR = "NUMBA_ENABLE_CUDASIM"


def gpu_present() -> bool:
    """True when an NVIDIA driver answers; decided without importing numba."""
    if not (os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi")):
        return False
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return os.path.exists("/dev/nvidia0")
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def configure_cuda() -> str:
    """Switch the simulator on when no GPU is usable; return ``"gpu"`` or ``"simulator"``.

    An explicit ``NUMBA_ENABLE_CUDASIM`` (0 or 1) set by the user always wins. If numba was
    already imported, the mode it loaded with is reported and nothing is changed.
    """
    if "numba" not in sys.modules and SIM_VAR not in os.environ:
        os.environ[SIM_VAR] = "0" if gpu_present() else "1"
    return "simulator" if os.environ.get(SIM_VAR, "0") == "1" else "gpu"


def simulator_on() -> bool:
    return os.environ.get(SIM_VAR, "0") == "1"
