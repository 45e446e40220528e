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
    "matplotlib": (True, "matplotlib==3.11.2", "the lessons' pictures"),
    "hypothesis": (True, "hypothesis==6.170.15", "the hidden tests' random cases"),
    "ml-dtypes": (True, "ml-dtypes==0.6.0", "bfloat16 in lesson 02's tests"),
    "nbgrader": (False, "nbgrader==0.9.6", "instructors' `python -m autograder autograde`"),
    "jupyterlab": (False, "jupyterlab==4.6.6", "running the lessons locally"),
}

# What `python -m autograder grade` needs: it reads the notebook with nbformat and runs a fresh copy
# in a Jupyter kernel ("python3", started through jupyter_client by nbclient, served by ipykernel).
GRADING = {
    "nbformat": "nbformat==5.11.1",
    "nbclient": "nbclient==0.11.0",
    "jupyter-client": "jupyter_client==8.10.0",
    "ipykernel": "ipykernel==7.4.0",
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


def kernel_report() -> tuple[str, str | None]:
    """(description, problem or None) of the Jupyter kernel self-grading starts ("python3")."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return "unknown (jupyter_client missing)", None  # reported with the missing packages
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return "no `python3` Jupyter kernel", "install one for this Python: `python -m ipykernel install --user`"
    except Exception as e:  # noqa: BLE001 - a broken kernelspec is reported, not raised
        return f"the `python3` kernel spec cannot be read: {e}", "reinstall it: `python -m ipykernel install --user`"
    exe = spec.argv[0] if spec.argv else ""
    # jupyter_client starts a spec whose command is plain `python`/`python3` with this interpreter
    if exe in ("python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return f"python3 -> this Python ({spec.resource_dir})", None
    import os

    if os.path.realpath(exe) == os.path.realpath(sys.executable):
        return f"python3 -> this Python ({spec.resource_dir})", None
    return (f"python3 -> {exe}, not this Python",
            f"the grader's kernel runs {exe}, which may not have the course: "
            f"`{sys.executable} -m ipykernel install --user` points it here")


def advice(dist: str, pin: str, colab: bool, grading_ok: bool = True) -> str:
    if dist == "nbgrader":
        return (f"nbgrader is not installed: instructors' `autograde` needs `pip install {pin}`. "
                + ("Self-grading (`python -m autograder grade NOTEBOOK`) works without it"
                   + (" — on Colab run `course.colab.save_notebook(\"NN_name.ipynb\")`, then "
                      "`!python -m autograder grade NN_name.ipynb` in a cell." if colab else ".")
                   if grading_ok else "Self-grading does not need it, but see what else it needs below."))
    if dist in GRADING:
        where = "in a Colab cell: `%pip install " if colab else "`pip install "
        return f"{dist} is missing, and self-grading needs it: {where}{pin}`."
    if dist == "jupyterlab":
        return ("JupyterLab is not needed on Colab." if colab
                else f"to run the lessons locally: `pip install {pin}` (or `make lab`).")
    where = "in a Colab cell: `%pip install " if colab else "`pip install "
    return f"{dist} is missing: {where}{pin}` (then restart the kernel)."


def report() -> tuple[list[str], bool]:
    """Lines to print and whether everything the lessons need is present."""
    colab = on_colab()
    lines = [f"{'Python':<15}{platform.python_version()} ({sys.executable})"]
    todo, ok = [], True
    if sys.version_info < (3, 10):
        ok = False
        todo.append("Python 3.10 or newer is required.")
    grading_missing = [dist for dist in GRADING if version(dist) is None]
    kernel_desc, kernel_problem = kernel_report() if version("jupyter-client") else ("unknown (jupyter_client missing)", None)
    grading_ok = not grading_missing and kernel_problem is None

    def show(dist: str, pin: str) -> str | None:
        v = version(dist)
        lines.append(f"{dist:<15}{v or 'missing'}" + ("" if v is None or pin.endswith(v) else f"  (course pins {pin})"))
        return v

    for dist, (needed, pin, what) in PACKAGES.items():
        if show(dist, pin) is None:
            ok = ok and not needed
            todo.append(advice(dist, pin, colab, grading_ok))
    for dist, pin in GRADING.items():
        if show(dist, pin) is None:
            todo.append(advice(dist, pin, colab))
    lines.append(f"{'kernel':<15}{kernel_desc}")
    if kernel_problem:
        todo.append(kernel_problem)
    desc, problem = cuda_report() if version("numba") else ("unknown (numba missing)", None)
    lines.append(f"{'CUDA':<15}{desc}")
    lines.append(f"{'Colab':<15}{'yes' if colab else 'no'}")
    if problem:
        todo.append(problem)
    lines += [f"to do: {t}" for t in todo]
    lines.append("self-grading: `python -m autograder grade` can run here" if grading_ok
                 else "self-grading: `python -m autograder grade` cannot run here yet (see the to-do lines)")
    lines.append("doctor: everything the lessons need is here" if ok and grading_ok
                 else "doctor: something the lessons need is missing")
    return lines, ok and grading_ok


def main() -> int:
    lines, ok = report()
    print("\n".join(lines))
    return 0 if ok else 1
