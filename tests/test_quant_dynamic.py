"""quantize_dynamic, sensitivity analysis, mixed precision and float16 conversion."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from course import InferenceSession
from course.models.digits import digits_model_path, load_digits_split
from course.quant import (ArrayDataReader, DynamicQuantizeLinear, calibrated, convert_float_to_float16,
                          dynamic_quantize_linear, mixed_precision, quantize_dynamic, sensitivity, sqnr)
from course.quant.metrics import run_model

SPLIT = load_digits_split()
FEEDS = {"input": SPLIT.x_test[:200]}


def mlp():
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in
             (("W1", rng.standard_normal((24, 20))), ("C1", rng.standard_normal(24)), ("W2", rng.standard_normal((24, 7))))]
    nodes = [helper.make_node("Gemm", ["x", "W1", "C1"], ["h"], "fc1", transB=1),
             helper.make_node("MatMul", ["h", "W2"], ["y"], "fc2")]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 20])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 7])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _ours(model, feeds):
    return InferenceSession(model, providers=["ReferenceExecutionProvider"]).run(None, feeds)[0]


def test_dynamic_quantize_linear_follows_the_spec():
    y, s, z = dynamic_quantize_linear(np.float32([-1.0, 0.0, 2.0, 3.0]))
    assert s == np.float32(4.0 / 255) and int(z) == 64  # round(1 / (4 / 255)) = round(63.75)
    assert y.tolist() == [0, 64, 191, 255]  # 2 / float32(4 / 255) = 127.4999..., not 127.5


def test_quantize_dynamic_structure_and_accuracy():
    x = np.random.default_rng(0).standard_normal((9, 20)).astype(np.float32)
    model = quantize_dynamic(mlp(), None, per_channel=True)
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["DynamicQuantizeLinear"] == 2 and ops["MatMulInteger"] == 2 and ops["Gemm"] == ops["MatMul"] == 0
    assert sqnr(run_model(mlp(), {"x": x})[0], _ours(model, {"x": x})) > 30.0


def test_quantize_dynamic_agrees_exactly_with_onnxruntime_with_reduce_range():
    """7-bit weights: onnxruntime's u8 x s8 MatMulInteger is exact on every CPU, so both engines
    compute the same int32 accumulators and the same float32 rescale."""
    ort = pytest.importorskip("onnxruntime")
    x = np.random.default_rng(1).standard_normal((9, 20)).astype(np.float32)
    model = quantize_dynamic(mlp(), None, reduce_range=True)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no fused contrib op
    theirs = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    np.testing.assert_array_equal(_ours(model, {"x": x}), theirs)


@pytest.fixture(scope="module")
def digits_calibrated():
    return calibrated(str(digits_model_path()), ArrayDataReader("input", SPLIT.x_train[:128], 64))


def test_sensitivity_lists_every_quantized_layer(digits_calibrated):
    result = sensitivity(digits_calibrated, FEEDS)
    assert [s.op_type for s in result] == ["Conv", "Conv", "Gemm", "Gemm"]
    assert all(30.0 < s.sqnr_db < 80.0 for s in result)


def test_mixed_precision_keeps_the_most_sensitive_layer_float(digits_calibrated):
    ref = run_model(digits_calibrated.model, FEEDS)[0]
    full = sqnr(ref, run_model(digits_calibrated.quantized(), FEEDS)[0])
    worst = min(sensitivity(digits_calibrated, FEEDS), key=lambda s: s.sqnr_db).node
    model, excluded = mixed_precision(digits_calibrated, FEEDS, keep_float=1)
    assert excluded == [worst] and sqnr(ref, run_model(model, FEEDS)[0]) > full
    model, excluded = mixed_precision(digits_calibrated, FEEDS, target_sqnr=full + 1.0)
    assert excluded and sqnr(ref, run_model(model, FEEDS)[0]) >= full + 1.0


def test_float16_model_keeps_float32_io_and_runs_in_both_engines():
    ref = run_model(str(digits_model_path()), FEEDS)[0]
    model = convert_float_to_float16(str(digits_model_path()))
    assert all(t.data_type != TensorProto.FLOAT for t in model.graph.initializer)
    y = run_model(model, FEEDS)[0]
    assert y.dtype == np.float32 and sqnr(ref, y) > 50.0
    ort = pytest.importorskip("onnxruntime")
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, FEEDS)[0]
    assert sqnr(ref, theirs) > 50.0
