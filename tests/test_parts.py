"""course.parts: a learner's functions saved by one process (a lesson's kernel) and loaded, by
value, in another (a later lesson), where they plug into the engine's hooks."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest

import course
from course import parts
from course.models import digits_model_path, load_digits_split

SAVE = textwrap.dedent('''
    import heapq
    from course import parts

    LATEST_FIRST = True   # a constant the saved function reads: saved with it

    def _producers(nodes):  # a helper of the learner's: saved with the function that calls it
        return {v: i for i, n in enumerate(nodes) for v in n["outputs"] if v}

    def topo_order(nodes):
        producer = _producers(nodes)
        deps = [{producer[v] for v in n["inputs"] if v in producer} for n in nodes]
        ready = [-i if LATEST_FIRST else i for i, d in enumerate(deps) if not d]
        heapq.heapify(ready)
        order = []
        while ready:
            i = abs(heapq.heappop(ready))
            order.append(i)
            for j, d in enumerate(deps):
                if i in d:
                    d.discard(i)
                    if not d:
                        heapq.heappush(ready, -j if LATEST_FIRST else j)
        return [nodes[i]["name"] for i in order]

    def run_graph(graph, feeds, kernels=None):
        env = {**graph["initializers"], **feeds}
        for n in graph["nodes"]:
            outs = kernels[n["name"]](*[env[v] if v else None for v in n["inputs"]])
            outs = outs if isinstance(outs, tuple) else (outs,)
            env.update({v: o for v, o in zip(n["outputs"], outs) if v})
        return [env[v] for v in graph["outputs"]]

    parts.save("06_graph_ir", topo_order=topo_order, run_graph=run_graph)
''')


def _run(code, env, folder):
    script = folder / "lesson.py"  # a file, as a notebook cell is to IPython: its source can be read back
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def parts_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_PARTS_DIR", str(tmp_path))
    monkeypatch.delenv(parts.GRADING_ENV, raising=False)
    return tmp_path


def test_parts_saved_in_one_process_run_inside_a_session_in_another(parts_dir, tmp_path_factory):
    env = {**os.environ, "COURSE_PARTS_DIR": str(parts_dir)}
    env.pop(parts.GRADING_ENV, None)
    done = _run(SAVE, env, tmp_path_factory.mktemp("lesson"))
    assert done.returncode == 0, done.stderr
    assert (parts_dir / "06_graph_ir.pkl").exists()
    assert "def topo_order" in (parts_dir / "06_graph_ir.py").read_text()  # the readable copy
    mine = parts.load("06_graph_ir")
    assert set(mine) == {"topo_order", "run_graph"}
    model = onnx.load(str(digits_model_path()))
    x = np.asarray(load_digits_split().x_test[:32], np.float32)
    session = course.InferenceSession(model, scheduler=mine["topo_order"], interpreter=mine["run_graph"])
    want = course.InferenceSession(model).run(None, {"input": x})[0]
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], want)
    assert mine["topo_order"]([{"name": "a", "inputs": [], "outputs": ["x"]},
                               {"name": "b", "inputs": [], "outputs": ["y"]}]) == ["b", "a"]  # LATEST_FIRST came along


def test_nothing_is_saved_while_grading(parts_dir, monkeypatch):
    monkeypatch.setenv(parts.GRADING_ENV, "1")
    assert parts.save("09_memory_planning", planner=lambda iv, sz: {}) is None
    assert not any(parts_dir.iterdir())


def test_missing_and_unknown_parts_say_what_to_do(parts_dir):
    with pytest.raises(parts.PartsMissing, match="run that lesson's last cell"):
        parts.load("09_memory_planning")
    with pytest.raises(ValueError, match="keeps"):
        parts.save("09_memory_planning", planer=len)
    with pytest.raises(ValueError, match="no parts are kept"):
        parts.save("99_nothing", planner=len)
    parts.save("09_memory_planning", planner=len)
    with pytest.raises(parts.PartsMissing, match="again"):
        parts.load("09_memory_planning", "nope")
    (parts_dir / "03_operators.pkl").write_bytes(b"not a pickle")
    with pytest.raises(parts.PartsMissing, match="cannot be read"):
        parts.load("03_operators")
    found = parts.collect()
    assert set(found) == {"09_memory_planning"} and found["09_memory_planning"]["planner"] is len
    assert "06_graph_ir" in parts.missing(found) and "09_memory_planning" not in parts.missing(found)


def test_the_grading_kernel_is_told_it_is_grading():
    from autograder.settings import kernel_env

    assert kernel_env()[parts.GRADING_ENV] == "1"


def test_notebooks_run_in_process_never_write_into_the_home_folder(tmp_path, monkeypatch):
    """autograder.inproc.run_notebook (the test suite's way to run whole solution notebooks)
    gives each run a parts folder of its own: a lesson's last cell saves nothing under ~."""
    import nbformat

    from autograder.inproc import run_notebook

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COURSE_PARTS_DIR", raising=False)
    monkeypatch.delenv(parts.GRADING_ENV, raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from course import parts\n"
        "def planner(intervals, sizes):\n    return {t: 0 for t in intervals}\n"
        "saved = parts.save('09_memory_planning', planner=planner)\n")])
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, str(path))
    res = run_notebook(path)
    assert not res.errors, res.errors
    saved = res.namespace["saved"]
    assert saved is not None and not str(saved).startswith(str(tmp_path / "home"))
    assert not (tmp_path / "home").exists()  # nothing written under ~
    assert not saved.exists()  # the run's own folder is gone with it
    assert "COURSE_PARTS_DIR" not in os.environ
