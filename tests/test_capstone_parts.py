"""Lesson 12's capstone assembles the learner's parts of every lesson (course.parts) into one engine.

A subprocess saves simple, real parts -- as lessons 02, 03, 06, 07, 08, 09 and 10 save them, with
the course's own code inside -- into a temporary ``COURSE_PARTS_DIR``. Lesson 12's solution then
runs outside grading (the exercises it needs and its capstone cells, one Jupyter kernel, the CUDA
simulator on): its printout must say every part was found and called, that the learner provider
ran convolutions, transposes and Gemms, and that the results agree with onnxruntime; then the same
cells run again on an empty folder and fall back to stand-ins without an error. About 15 s.
A slow test runs lessons 07, 08 and 10 and checks that they save their parts for it.
"""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from course import parts

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "solutions" / "12_runtime" / "12_runtime.ipynb"
EXERCISES = {"setup", "imports", "dispatch", "profile_check", "capstone"}  # what the capstone cells need
EARLIER = ["02 transpose", "03 conv", "06 topo_order", "06 run_graph", "07 passes", "08 passes", "09 planner",
           "10 quantize"]

SAVE = textwrap.dedent('''
    import heapq

    import numpy as np

    from course import parts
    from course.memory import place_greedy_by_size
    from course.ops.registry import lookup
    from course.passes.eliminate_common_subexpressions import EliminateCommonSubexpressions
    from course.passes.eliminate_dead_code import EliminateDeadCode
    from course.passes.fold_batchnorm import FoldBatchNorm
    from course.passes.fold_constants import FoldConstants
    from course.passes.fuse_conv_activation import FuseConvActivation
    from course.passes.fuse_elementwise import FuseElementwise
    from course.passes.simplify_algebra import SimplifyAlgebra
    from course.passes.sink_transposes import SinkTransposes
    from course.passes.to_nhwc import ToNHWC
    from course.quant import ArrayDataReader, quantize_static


    def transpose(x, perm):  # lesson 02
        out = np.empty([x.shape[p] for p in perm], x.dtype)
        out[...] = np.moveaxis(x, list(perm), list(range(x.ndim)))
        return out


    def conv(x, w, b=None, **attrs):  # lesson 03
        return lookup("Conv", 11).compute(x, w, b, **attrs)


    def topo_order(nodes):  # lesson 06: Kahn's algorithm, the latest ready node first
        producer = {v: i for i, n in enumerate(nodes) for v in n["outputs"] if v}
        deps = [{producer[v] for v in n["inputs"] if v in producer} for n in nodes]
        ready = [-i for i, d in enumerate(deps) if not d]
        heapq.heapify(ready)
        order = []
        while ready:
            i = -heapq.heappop(ready)
            order.append(i)
            for j, d in enumerate(deps):
                if i in d:
                    d.discard(i)
                    if not d:
                        heapq.heappush(ready, -j)
        return [nodes[i]["name"] for i in order]


    def run_graph(graph, feeds, kernels=None):  # lesson 06
        env = {**graph["initializers"], **feeds}
        for n in graph["nodes"]:
            outs = kernels[n["name"]](*[env[v] if v else None for v in n["inputs"]])
            outs = outs if isinstance(outs, tuple) else (outs,)
            env.update({v: o for v, o in zip(n["outputs"], outs) if v})
        return [env[v] for v in graph["outputs"]]


    def passes07():  # lesson 07
        return [FoldConstants(), SimplifyAlgebra(), EliminateCommonSubexpressions(), SinkTransposes(),
                EliminateDeadCode()]


    def passes08():  # lesson 08: fused convolutions, channels last, fused elementwise chains
        return [FoldBatchNorm(), FuseConvActivation(), ToNHWC(), FuseElementwise()]


    def planner(intervals, sizes):  # lesson 09
        return place_greedy_by_size(intervals, sizes)


    def quantize(model, images):  # lesson 10
        return quantize_static(model, None, ArrayDataReader("input", images, 64), per_channel=True)


    parts.save("02_tensors", transpose=transpose)
    parts.save("03_operators", conv=conv)
    parts.save("06_graph_ir", topo_order=topo_order, run_graph=run_graph)
    parts.save("07_graph_passes", passes=passes07)
    parts.save("08_fusion_layout", passes=passes08)
    parts.save("09_memory_planning", planner=planner)
    parts.save("10_quantization", quantize=quantize)
''')


def _env(tmp_path_factory, folder) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (parts.GRADING_ENV, "AUTOGRADER_GRADING")}
    env.update(COURSE_PARTS_DIR=str(folder), NUMBA_ENABLE_CUDASIM="1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1",
               IPYTHONDIR=str(tmp_path_factory.mktemp("ipython")))
    return env


def _capstone_notebook(empty: Path) -> tuple[nbformat.NotebookNode, int]:
    """Lesson 12 cut to what the capstone needs (setup, the solutions it uses, the cells after
    section 8 that are not tests), then the parts section again with ``COURSE_PARTS_DIR`` emptied.
    Returns the notebook and the index of the parts section's first cell."""
    nb = nbformat.read(LESSON, as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## 8. Capstone"))
    keep = [c for i, c in enumerate(nb.cells) if c.cell_type == "code" and (
        c.metadata.get("nbgrader", {}).get("grade_id") in EXERCISES
        or (i > start and not c.metadata.get("nbgrader", {}).get("grade")))]
    first = next(i for i, c in enumerate(keep) if "PARTS_USED = [" in c.source)
    again = [nbformat.v4.new_code_cell(f"os.environ['COURSE_PARTS_DIR'] = {str(empty)!r}")]
    nb.cells = keep + again + [nbformat.v4.new_code_cell(c.source) for c in keep[first:]]
    return nb, first


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """(what the parts section printed with every part saved, what it printed with none)."""
    from nbclient import NotebookClient

    folder, empty = tmp_path_factory.mktemp("parts"), tmp_path_factory.mktemp("no_parts")
    env = _env(tmp_path_factory, folder)
    script = tmp_path_factory.mktemp("lessons") / "save_parts.py"  # a file: its functions' source can be read back
    script.write_text(SAVE)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    nb, first = _capstone_notebook(empty)
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    errors = [f"cell {i}: {o.ename}: {o.evalue}" for i, c in enumerate(nb.cells) for o in c.outputs
              if o.output_type == "error"]
    assert not errors, errors
    text = ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream") for c in nb.cells]
    half = len(nb.cells) - first
    return "".join(text[first:first + half // 2]), "".join(text[first + half // 2:])


def _rows(text: str) -> dict:
    """{engine: (accuracy or share of classes, max |y - ref|)} from the parts section's tables
    (ResNet's rows come after the digits CNN's, so a name seen twice keeps its ResNet row)."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(your parts.*?|course engine|onnxruntime.*?)\s+([\d.]+)%\s+([\d.e+-]+|nan)\s+\S", line)
        if m:
            rows[m.group(1).strip()] = (float(m.group(2)) / 100, float(m.group(3)))
    return rows


def test_every_part_saved_is_found_and_runs_in_the_capstone_engine(printed):
    text = printed[0]
    assert "missing: nothing" in text and "failed" not in text, text
    for part in EARLIER:
        assert re.search(rf"^  {part}\s+yours\s", text, re.M), f"{part} not found:\n{text}"
    calls = dict((k, int(n)) for k, n in re.findall(r"(\d\d \w+) (\d+)x", text))
    assert all(calls.get(p, 0) > 0 for p in EARLIER + ["12 dispatch", "12 my_gemm"]), calls
    assert "8 of the 8 parts of earlier lessons ran\n" in text, text
    learner = re.search(r"LearnerExecutionProvider runs (\d+) of (\d+) steps: (.*); arena placed by (\w+)", text)
    assert learner and {"Gemm", "Transpose", "course.nhwc:FusedConv"} <= set(learner.group(3).split(", ")), text
    assert learner.group(4) == "planner", "the arena is placed by the saved planner"
    rows = _rows(text)
    for name in ("your parts", "your parts, your run_graph", "your parts, int8"):
        assert name in rows, f"no row {name!r}:\n{text}"
    digits = _rows(text.split("ResNet-18")[0])
    assert digits["your parts"][0] > 0.97 and digits["your parts"][1] < 1e-4, text
    assert digits["your parts, your run_graph"][0] > 0.97 and digits["your parts, your run_graph"][1] < 1e-4, text
    assert digits["your parts, int8"][0] > 0.95, text
    assert rows["your parts"][0] == 1.0 and rows["your parts"][1] < 1e-4, "ResNet-18 agrees with onnxruntime"


def test_an_empty_parts_folder_falls_back_without_an_error(printed):
    text = printed[1]
    assert "found: nothing" in text and "failed" not in text, text
    for part in EARLIER:
        assert re.search(rf"^  {part}\s+missing\s+stands in: ", text, re.M), f"{part}:\n{text}"
    assert "0 of the 8 parts of earlier lessons ran\n" in text, text
    assert "LearnerExecutionProvider runs 2 of" in text and ": Gemm; arena placed by best" in text, text
    rows = _rows(text)
    assert {"your parts", "your parts, int8", "course engine", "onnxruntime"} <= set(rows), text
    assert "your parts, your run_graph" not in rows
    assert rows["your parts"][0] == 1.0 and rows["your parts"][1] < 1e-4, text


# Runs one notebook in a fresh kernel; the first failing cell stops it and its error is printed.
_EXECUTE = r"""
import json, sys, nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
except CellExecutionError as e:
    print(json.dumps({"error": str(e)[-3000:]}))
    sys.exit(1)
"""


@pytest.mark.slow
def test_lessons_07_08_10_save_parts_the_capstone_can_run(tmp_path_factory):
    """Their solutions run as a learner runs them; what they saved loads here and runs in a session."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    import course
    from course.models import build_model, digits_model_path, load_digits_split

    folder = tmp_path_factory.mktemp("parts")
    env = _env(tmp_path_factory, folder)
    lessons = ["07_graph_passes", "08_fusion_layout", "10_quantization"]
    runs = [subprocess.Popen([sys.executable, "-c", _EXECUTE, str(ROOT / "solutions" / n / f"{n}.ipynb"),
                              str(tmp_path_factory.mktemp(n))], env=env, stdout=subprocess.PIPE, text=True)
            for n in lessons]
    outs = [p.communicate(timeout=900)[0] for p in runs]
    assert all(p.returncode == 0 for p in runs), outs
    os.environ["COURSE_PARTS_DIR"] = str(folder)
    try:
        found = parts.collect(dict.fromkeys(lessons))
    finally:
        os.environ.pop("COURSE_PARTS_DIR")
    assert {k: sorted(v) for k, v in found.items()} == {lessons[0]: ["passes"], lessons[1]: ["passes"],
                                                        lessons[2]: ["quantize"]}
    resnet = build_model("resnet", image_size=32, num_classes=10, width=0.25)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    passes = found[lessons[0]]["passes"]() + found[lessons[1]]["passes"]()
    got = course.InferenceSession(resnet, providers=["ReferenceExecutionProvider"], passes=passes).run(None, {"input": x})[0]
    want = ort.InferenceSession(resnet.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    digits, split = onnx.load(str(digits_model_path())), load_digits_split()
    qdq = found[lessons[2]]["quantize"](digits, split.x_train[:256])
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in qdq.graph.node}
    logits = course.InferenceSession(qdq).run(None, {"input": split.x_test})[0]
    assert (logits.argmax(1) == split.y_test).mean() > 0.95
