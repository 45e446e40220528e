"""course.onnx_backend drives the engine through onnx's own backend interface and test runner."""
import re
import unittest

import numpy as np
import onnx.backend.test
import pytest
from onnx import helper as h

import course
from course.testing import assert_close, random_tensor
from ir_builders import mlp, ort_run

backend = course.onnx_backend

# Model cases shipped in the onnx wheel, mostly old exporter models (opset 6, IR 3) whose weights
# are initializers listed as graph inputs. (onnx's in-memory node cases are run by
# tests/test_conformance.py; generating them all takes seconds, so the runner skips them here.)
RUNNER_CASES = ["test_single_relu_model", "test_Conv2d", "test_Conv2d_groups", "test_Conv2d_depthwise_padded",
                "test_operator_maxpool", "test_operator_flatten", "test_operator_conv"]


def test_onnx_runner_passes_selected_cases(monkeypatch):
    real_load = onnx.backend.test.runner.load_model_tests
    monkeypatch.setattr(onnx.backend.test.runner, "load_model_tests",
                        lambda data_dir=None, kind=None: [] if kind == "node" else real_load(kind=kind))
    runner = onnx.backend.test.BackendTest(backend, __name__)
    wanted = re.compile(rf"^({'|'.join(RUNNER_CASES)})_cpu$")
    suite = unittest.TestSuite()
    for cls in runner.test_cases.values():
        for name in dir(cls):
            if wanted.match(name):
                suite.addTest(cls(name))
    result = unittest.TestResult()
    suite.run(result)
    problems = [f"{t}: {err.splitlines()[-1]}" for t, err in result.failures + result.errors]
    assert not problems, problems
    assert result.testsRun == len(RUNNER_CASES) and not result.skipped, (result.testsRun, result.skipped)


def test_prepare_and_run_model():
    m = mlp()
    x = random_tensor((3, 4), seed=3)
    want = ort_run(m, {"x": x})[0]
    rep = backend.prepare(m, "CPU")
    for got in (rep.run([x]), rep.run(x), rep.run({"x": x}), backend.run_model(m, [x])):
        assert len(got) == 1
        assert_close(got[0], want, rtol=1e-5, atol=1e-6)


def test_run_node():
    x = np.array([[-1.0, 2.0]], np.float32)
    (y,) = backend.run_node(h.make_node("LeakyRelu", ["x"], ["y"], alpha=0.5), [x])
    assert_close(y, np.array([[-0.5, 2.0]], np.float32))


def test_devices_and_compatibility():
    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    with pytest.raises(RuntimeError, match="CUDA"):
        backend.prepare(mlp(), "CUDA")
    unsupported = h.make_model(h.make_graph([h.make_node("Frobnicate", ["x"], ["y"])], "g", [], []),
                               opset_imports=[h.make_opsetid("", 17)])
    assert backend.is_compatible(mlp())
    assert not backend.is_compatible(unsupported)
