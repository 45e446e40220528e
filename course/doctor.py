"""``python -m course doctor``: what this machine has, and what to do about anything missing."""
from __future__ import annotations

import importlib.metadata as md
import platform
import sys

# distribution name -> (needed for lessons, pip pin, what it is for)
PACKAGES = {
    "numpy": (True, "numpy==2.4.6", "arrays"),
    "numba": (True, "numba==0.68.1", "CPU JIT and the CUDA simulator"),
    "numba-cuda": (True, "numba-cuda==0.30.4", "CUDA kernels (lessons 04, 05, 08)"),
    "onnx": (True, "onnx==1.23.2", "models (lessons 06, 12)"),
    "onnxruntime": (True, "onnxruntime==1.31.1", "the reference runtime the engine is compared with"),
    "nbgrader": (False, "nbgrader==0.9.6", "self-grading with `python -m autograder grade`"),
    "jupyterlab": (False, "jupyterlab==4.6.6", "running the lessons locally"),
}


def on_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in __import__("os").environ


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def cuda_report() -> tuple[str, str | None]:
    """(description, problem or None). Imports numba only after ``course`` chose the mode."""
    import course

    if course.CUDA_MODE == "simulator":
        return "Numba's CUDA simulator (no usable GPU; kernels run slowly, on the CPU)", None
    try:
        from numba import cuda

        if not cuda.is_available():
            return "GPU mode, but numba cannot use it", "set NUMBA_ENABLE_CUDASIM=1 to use the simulator"
        name = cuda.get_current_device().name
        name = name.decode() if isinstance(name, bytes) else name
        return f"GPU: {name}", None
    except Exception as e:  # noqa: BLE001 - any driver trouble is reported, not raised
        return f"GPU mode, but it failed: {e}", "set NUMBA_ENABLE_CUDASIM=1 to use the simulator"


def advice(dist: str, pin: str, colab: bool) -> str:
    if dist == "nbgrader":
        return (f"nbgrader is not installed: instructors' `autograde` needs `pip install {pin}`. "
                "Self-grading (`python -m autograder grade NOTEBOOK`) works without it"
                + (" — on Colab run `!python -m autograder grade <notebook>` in a cell." if colab else "."))
    if dist == "jupyterlab":
        return ("JupyterLab is not needed on Colab." if colab
                else f"to run the lessons locally: `pip install {pin}` (or `make lab`).")
    where = "in a Colab cell: `%pip install " if colab else "`pip install "
    return f"{dist} is missing: {where}{pin}` (then restart the kernel)."


def report() -> tuple[list[str], bool]:
    """Lines to print and whether everything the lessons need is present."""
    colab = on_colab()
    lines = [f"Python      {platform.python_version()} ({sys.executable})"]
    todo, ok = [], True
    if sys.version_info < (3, 10):
        ok = False
        todo.append("Python 3.10 or newer is required.")
    for dist, (needed, pin, what) in PACKAGES.items():
        v = version(dist)
        lines.append(f"{dist:<12}{v or 'missing'}" + ("" if v is None or pin.endswith(v) else f"  (course pins {pin})"))
        if v is None:
            ok = ok and not needed
            todo.append(advice(dist, pin, colab))
    desc, problem = cuda_report() if version("numba") else ("unknown (numba missing)", None)
    lines.append(f"CUDA        {desc}")
    lines.append(f"Colab       {'yes' if colab else 'no'}")
    if problem:
        todo.append(problem)
    lines += [f"to do: {t}" for t in todo]
    lines.append("doctor: everything the lessons need is here" if ok else "doctor: something the lessons need is missing")
    return lines, ok


def main() -> int:
    lines, ok = report()
    print("\n".join(lines))
    return 0 if ok else 1
