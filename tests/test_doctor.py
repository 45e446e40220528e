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
    for dist in ("numpy", "numba", "numba-cuda", "onnx", "onnxruntime", "nbgrader", "jupyterlab",
                 "nbformat", "nbclient", "jupyter-client", "ipykernel", "hypothesis"):
        assert f"{dist} " in out and doctor.version(dist) in out, dist
    mode_word = "simulator" if course.CUDA_MODE == "simulator" else "GPU:"
    assert mode_word in out.split("CUDA", 1)[1].splitlines()[0]
    assert "Colab          no" in out and "everything the lessons need is here" in out
    assert "self-grading: `python -m autograder grade` can run here" in out
    assert "python3 -> this Python" in out.split("\nkernel ", 1)[1].splitlines()[0]


def test_advice_for_missing_packages():
    msg = doctor.advice("nbgrader", "nbgrader==0.9.6", colab=True)
    assert "pip install nbgrader==0.9.6" in msg and "!python -m autograder grade" in msg
    assert "%pip install onnx==1.23.2" in doctor.advice("onnx", "onnx==1.23.2", colab=True)
    assert "`pip install numba==0.68.1`" in doctor.advice("numba", "numba==0.68.1", colab=False)


def test_usage_error():
    proc = subprocess.run([sys.executable, "-m", "course"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "doctor" in proc.stderr


def test_self_grading_needs_nbformat_nbclient_and_a_kernel(monkeypatch):
    """Without nbformat (or nbclient, ipykernel) `autograder grade` cannot run: doctor must say so."""
    real = doctor.version
    for dist in ("nbformat", "nbclient", "ipykernel"):
        monkeypatch.setattr(doctor, "version", lambda d, gone=dist: None if d == gone else real(d))
        lines, ok = doctor.report()
        out = "\n".join(lines)
        assert not ok, dist
        assert f"{dist} is missing, and self-grading needs it" in out, out
        assert "cannot run here yet" in out and "can run here" not in out, out
        assert "works without it" not in out, "no claim that self-grading works while it cannot"
    monkeypatch.setattr(doctor, "version", real)
    monkeypatch.setattr(doctor, "kernel_report", lambda: ("no `python3` Jupyter kernel", "install one: `python -m ipykernel install --user`"))
    lines, ok = doctor.report()
    out = "\n".join(lines)
    assert not ok and "ipykernel install" in out and "cannot run here yet" in out, out


def test_nbgrader_missing_is_fine_for_self_grading(monkeypatch):
    real = doctor.version
    monkeypatch.setattr(doctor, "version", lambda d: None if d == "nbgrader" else real(d))
    lines, ok = doctor.report()
    out = "\n".join(lines)
    assert ok and "works without it" in out and "can run here" in out, out
