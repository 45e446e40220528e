"""quantize_static on the digits CNN and on a model with outliers; the QDQ model in onnxruntime."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

from course import InferenceSession
from course.models.digits import digits_model_path, load_digits_split
from course.quant import ArrayDataReader, CalibrationMethod, QuantFormat, accuracy, quantize_static, sqnr
from course.quant.metrics import run_model
from quant_report import outlier_data, outlier_model

SPLIT = load_digits_split()
FEEDS = {"input": SPLIT.x_test}


@pytest.fixture(scope="module")
def float_logits():
    return run_model(str(digits_model_path()), FEEDS)[0]


def _digits(**kw):
    return quantize_static(digits_model_path(), None, ArrayDataReader("input", SPLIT.x_train[:256], 64), **kw)


@pytest.fixture(scope="module")
def per_tensor():
    return _digits()


@pytest.fixture(scope="module")
def per_channel():
    return _digits(per_channel=True)


def test_bn_is_folded_and_every_conv_and_gemm_is_quantized(per_channel):
    ops = Counter(n.op_type for n in per_channel.graph.node)
    assert ops["BatchNormalization"] == 0 and ops["Conv"] == 2 and ops["Gemm"] == 2
    assert ops["DequantizeLinear"] == 4 * 2 + 5  # weight + bias per op; input, r1, r2, flat, r3
    conv_w = [n for n in per_channel.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith(
        "_quantized") and "W" in n.input[0]]
    assert all(a.name != "axis" or a.i == 0 for n in conv_w for a in n.attribute)  # Gemm transB=1: axis 0


def test_digits_sqnr_and_accuracy(float_logits, per_tensor, per_channel):
    y_t, y_c = run_model(per_tensor, FEEDS)[0], run_model(per_channel, FEEDS)[0]
    s_t, s_c = sqnr(float_logits, y_t), sqnr(float_logits, y_c)
    assert s_t > 38.0 and s_c > 39.0 and s_c >= s_t
    ref_acc = accuracy(float_logits, SPLIT.y_test)
    assert abs(accuracy(y_c, SPLIT.y_test) - ref_acc) <= 0.005 and abs(accuracy(y_t, SPLIT.y_test) - ref_acc) <= 0.005


def test_nodes_to_exclude_stay_float(float_logits):
    model = _digits(nodes_to_exclude=[n.name for n in onnx.load(str(digits_model_path())).graph.node
                                      if n.op_type == "Gemm"][-1:])
    assert Counter(n.op_type for n in model.graph.node)["DequantizeLinear"] == 3 * 2 + 5
    assert sqnr(float_logits, run_model(model, FEEDS)[0]) > 38.0


def test_qoperator_digits_matches_qdq_closely(float_logits):
    model = _digits(per_channel=True, quant_format=QuantFormat.QOperator)
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QLinearConv"] == 2 and ops["MatMulInteger"] == 2 and ops["Conv"] == ops["Gemm"] == 0
    assert sqnr(float_logits, run_model(model, FEEDS)[0]) > 39.0


def test_qdq_model_in_onnxruntime_is_within_one_lsb_of_ours(per_channel):
    """Float convolutions in two engines sum in different orders, so a value right at a rounding
    boundary may land one step apart: every quantized activation agrees within 1 LSB."""
    ort = pytest.importorskip("onnxruntime")
    q_names = [n.output[0] for n in per_channel.graph.node if n.op_type == "QuantizeLinear"]
    m = onnx.ModelProto()
    m.CopyFrom(per_channel)
    m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in q_names)
    theirs = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(q_names, FEEDS)
    ours = InferenceSession(m, providers=["ReferenceExecutionProvider"]).run(q_names, FEEDS)
    for a, b in zip(ours, theirs):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert np.mean(a != b) < 0.01


def test_entropy_and_percentile_beat_min_max_on_outliers():
    model, x_cal, x_eval = outlier_model(), outlier_data(256, 1), outlier_data(1000, 2)
    ref = run_model(model, {"x": x_eval})[0]

    def db(method):
        q = quantize_static(model, None, ArrayDataReader("x", x_cal, 64), calibrate_method=method,
                            extra_options={"CalibPercentile": 99.9})
        return sqnr(ref, run_model(q, {"x": x_eval})[0])

    minmax = db(CalibrationMethod.MinMax)
    assert db(CalibrationMethod.Entropy) > minmax + 3 and db(CalibrationMethod.Percentile) > minmax + 3


def test_calibration_runs_on_the_reference_and_says_so():
    with pytest.raises(ValueError, match="calibration runs on the reference ops"):
        _digits(calibration_providers=["CPUExecutionProvider"])
    model = _digits(calibration_providers=["ReferenceExecutionProvider"])
    assert model.SerializeToString() == _digits().SerializeToString()


def test_run_model_is_the_graph_as_written_on_the_reference_ops(float_logits):
    session = InferenceSession(str(digits_model_path()), providers=["ReferenceExecutionProvider"],
                               graph_optimization_level="disable")
    np.testing.assert_array_equal(float_logits, session.run(None, FEEDS)[0])
