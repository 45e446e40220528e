"""Lessons 06 and 09 save the learner's parts, and a later process runs them inside the engine.

The solution notebooks of lessons 06 and 09 run top to bottom in Jupyter kernels, as a learner
runs them (not graded: nothing stops ``course.parts.save``; the CUDA simulator on, as in CI), with
``COURSE_PARTS_DIR`` a temporary folder. This process then loads what their last cells saved --
lesson 06's ``topo_order`` and ``run_graph``, lesson 09's ``planner`` -- and runs them as the
session's ``scheduler=``, ``interpreter=`` and ``planner=`` against onnxruntime. The two notebooks
run at once, one kernel each; the module takes about 20 s on a 2-core machine.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import course
from course import parts
from course.models import build_model, digits_model_path, load_digits_split

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ["06_graph_ir", "09_memory_planning"]
CELL_S = 300

pytestmark = pytest.mark.slow

# Runs one notebook in a fresh kernel; the first failing cell stops it and its error is printed.
_EXECUTE = r"""
import json, sys, nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    NotebookClient(nb, timeout=int(sys.argv[3]), kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[2]}}).execute()
except CellExecutionError as e:
    print(json.dumps({"error": str(e)[-3000:]}))
    sys.exit(1)
print(json.dumps({"error": None}))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The parts folder after lessons 06 and 09 ran: ``{lesson: {name: part}}`` loaded here."""
    folder = tmp_path_factory.mktemp("parts")
    env = {k: v for k, v in os.environ.items() if k not in (parts.GRADING_ENV, "AUTOGRADER_GRADING")}
    env.update(COURSE_PARTS_DIR=str(folder), NUMBA_ENABLE_CUDASIM="1", MPLBACKEND="Agg",
               IPYTHONDIR=str(tmp_path_factory.mktemp("ipython")), PYTHONUNBUFFERED="1")
    runs = {lesson: subprocess.Popen(
        [sys.executable, "-c", _EXECUTE, str(ROOT / "solutions" / lesson / f"{lesson}.ipynb"),
         str(tmp_path_factory.mktemp(lesson)), str(CELL_S)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for lesson in LESSONS}
    failed = []
    for lesson, proc in runs.items():
        out, err = proc.communicate(timeout=CELL_S * 3)
        if proc.returncode != 0:
            failed.append(f"{lesson}: {out[-3000:] or err[-3000:]}")
    assert not failed, "\n".join(failed)
    old = os.environ.get("COURSE_PARTS_DIR")
    os.environ["COURSE_PARTS_DIR"] = str(folder)
    try:
        yield folder, {lesson: parts.load(lesson) for lesson in LESSONS}
    finally:
        if old is None:
            os.environ.pop("COURSE_PARTS_DIR", None)
        else:
            os.environ["COURSE_PARTS_DIR"] = old


def _ort(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


def test_the_lessons_saved_their_parts(saved):
    folder, found = saved
    assert set(found["06_graph_ir"]) == {"topo_order", "run_graph"}
    assert set(found["09_memory_planning"]) == {"planner"}
    assert found["09_memory_planning"]["planner"].__name__ == "place_greedy_by_size"
    for lesson in LESSONS:  # the readable copy beside each file
        assert "def " in (folder / f"{lesson}.py").read_text()


def test_lesson_06_parts_order_and_run_the_plan(saved):
    mine = saved[1]["06_graph_ir"]
    model = onnx.load(str(digits_model_path()))
    x = np.asarray(load_digits_split().x_test[:64], np.float32)
    session = course.InferenceSession(model, scheduler=mine["topo_order"], interpreter=mine["run_graph"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], _ort(model, {"input": x})[0], rtol=1e-4, atol=1e-4)
    resnet = build_model("resnet", image_size=32, num_classes=10, width=0.25)  # residual branches
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    session = course.InferenceSession(resnet, scheduler=mine["topo_order"], interpreter=mine["run_graph"])
    plain = course.InferenceSession(resnet)
    assert [st.spec.name for st in session.plan.steps] == [st.spec.name for st in plain.plan.steps]
    np.testing.assert_allclose(session.run(None, {"input": x})[0], _ort(resnet, {"input": x})[0], rtol=1e-4, atol=1e-4)
    # the learner's sort on the nodes of a shuffled graph: the session's hook checks what it returns
    names = mine["topo_order"]([{"name": "b", "inputs": ["t"], "outputs": ["y"]},
                                {"name": "a", "inputs": ["x"], "outputs": ["t"]}])
    assert list(names) == ["a", "b"]


def test_lesson_09_planner_places_the_arena(saved):
    mine = saved[1]
    planner = mine["09_memory_planning"]["planner"]
    model = build_model("densenet", image_size=32)
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    session = course.InferenceSession(model, planner=planner, scheduler=mine["06_graph_ir"]["topo_order"])
    report = session.memory_report()
    assert report["strategy"] == "place_greedy_by_size"
    assert report["lower_bound_bytes"] <= report["arena_bytes"] < report["naive_bytes"]
    assert len(report["offsets"]) > 100  # the arena holds the model's intermediates, not a token few
    want = _ort(model, {"input": x})[0]
    for _ in range(2):  # the second run reuses the arena the first allocated
        np.testing.assert_allclose(session.run(None, {"input": x})[0], want, rtol=1e-4, atol=1e-4)
