"""``python -m course doctor`` reports versions, the CUDA mode and advice for what is missing."""
import subprocess
import sys
from pathlib import Path

import course
from course import doctor

ROOT = Path(__file__).resolve().parent.parent


def test_doctor_runs_and_reports_this_machine():
    proc = subprocess.run([sys.executable, "-m", "course", "doctor"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for dist in ("numpy", "numba", "numba-cuda", "onnx", "onnxruntime", "nbgrader", "jupyterlab"):
        assert f"{dist} " in out and doctor.version(dist) in out, dist
    mode_word = "simulator" if course.CUDA_MODE == "simulator" else "GPU:"
    assert mode_word in out.split("CUDA", 1)[1].splitlines()[0]
    assert "Colab       no" in out and "everything the lessons need is here" in out


def test_advice_for_missing_packages():
    msg = doctor.advice("nbgrader", "nbgrader==0.9.6", colab=True)
    assert "pip install nbgrader==0.9.6" in msg and "!python -m autograder grade" in msg
    assert "%pip install onnx==1.23.2" in doctor.advice("onnx", "onnx==1.23.2", colab=True)
    assert "`pip install numba==0.68.1`" in doctor.advice("numba", "numba==0.68.1", colab=False)


def test_usage_error():
    proc = subprocess.run([sys.executable, "-m", "course"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "doctor" in proc.stderr
