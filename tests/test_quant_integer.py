"""QDQToInteger: QDQ Conv / Gemm / MatMul become integer ops that agree exactly with the integer
definition (int64 accumulation, one float32 multiplier, round half to even, saturation)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from course import InferenceSession
from course.ir.onnx_export import to_onnx
from course.passes.qdq_to_integer import QDQToInteger
from course.quant import ArrayDataReader, QuantFormat, QuantType, quantize_static
from course.quant.observe import load_graph

RNG = np.random.default_rng(7)


def _model(nodes, inits, x_shape, y_name="y"):
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(y_name, TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def conv_model():
    """x -> Conv 3x3 s2 p1 (+B) -> Relu -> Conv 1x1 (+B) -> y"""
    inits = {"W1": RNG.standard_normal((4, 3, 3, 3)), "B1": RNG.standard_normal(4) * 0.1,
             "W2": RNG.standard_normal((5, 4, 1, 1)), "B2": RNG.standard_normal(5) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], "conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
             helper.make_node("Conv", ["r1", "W2", "B2"], ["y"], "conv2")]
    return _model(nodes, inits, [None, 3, 7, 6])


def dense_model():
    """x -> Gemm(transB, +C) -> Relu -> MatMul -> MatMul -> y"""
    inits = {"W1": RNG.standard_normal((12, 16)), "C1": RNG.standard_normal(12) * 0.1,
             "W2": RNG.standard_normal((12, 8)), "W3": RNG.standard_normal((8, 6))}
    nodes = [helper.make_node("Gemm", ["x", "W1", "C1"], ["h"], "fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], "relu"),
             helper.make_node("MatMul", ["r", "W2"], ["m"], "fc2"),
             helper.make_node("MatMul", ["m", "W3"], ["y"], "fc3")]
    return _model(nodes, inits, [None, 16])


def _quantized(model, x, **kw):
    return quantize_static(model, None, ArrayDataReader("x", x, 8), **kw)


def _run(model, x):
    return InferenceSession(model, providers=["ReferenceExecutionProvider"]).run(None, {"x": x})[0]


def _inits(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


# --- the integer definition, written out with int64 sums ------------------------------------------
def conv_acc(xq, xz, wq, wz, b, stride, pad):
    x = np.pad(xq.astype(np.int64) - int(xz), [(0, 0), (0, 0), (pad, pad), (pad, pad)])  # pads hold x_zp
    w = wq.astype(np.int64) - wz.astype(np.int64).reshape(-1, 1, 1, 1)
    k = w.shape[-1]
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,mcij->nmhw", win, w) + b.astype(np.int64).reshape(1, -1, 1, 1)


def requantize(acc, mult, yz):
    info = np.iinfo(yz.dtype)
    v = np.rint(acc.astype(np.float32) * mult.astype(np.float32)) + np.float32(yz)
    return np.clip(v, info.min, info.max).astype(yz.dtype)


def test_conv_pass_precondition_modified_postcondition():
    x = RNG.standard_normal((8, 3, 7, 6)).astype(np.float32)
    graph = load_graph(_quantized(conv_model(), x, per_channel=True))
    before = Counter(n.op_type for n in graph.nodes)
    assert before["Conv"] == 2 and before["DequantizeLinear"] >= 6
    result = QDQToInteger()(graph)
    after = Counter(n.op_type for n in result.graph.nodes)
    assert result.modified and after["Conv"] == 0 and after["Relu"] == 0
    assert after["QLinearConv"] == 1 and after["ConvInteger"] == 1
    result.graph.infer_types()
    result.graph.verify()
    assert not QDQToInteger()(result.graph).modified


@pytest.mark.parametrize("per_channel", [False, True])
def test_conv_integer_ops_equal_the_integer_definition(per_channel):
    x = RNG.standard_normal((8, 3, 7, 6)).astype(np.float32)
    model = _quantized(conv_model(), x, per_channel=per_channel, quant_format=QuantFormat.QOperator)
    i = _inits(model)
    q = {n.op_type: n for n in model.graph.node}
    xs, xz = i[q["QuantizeLinear"].input[1]], i[q["QuantizeLinear"].input[2]]
    xq = np.clip(np.rint(x / xs) + xz, 0, 255).astype(np.uint8)
    ql = [i[n] for n in q["QLinearConv"].input[1:]]  # xs, xz, w, ws, wz, ys, yz, b
    acc1 = conv_acc(xq, ql[1], ql[2], ql[4], ql[7], 2, 1)
    mult = ((ql[0] * ql[3]).astype(np.float32) / ql[5]).astype(np.float32)
    a1 = requantize(acc1, mult.reshape((1, -1, 1, 1) if mult.size > 1 else ()), ql[6])
    ci = [i[n] for n in q["ConvInteger"].input[1:]]  # w, x_zp, w_zp
    acc2 = conv_acc(a1, ci[1], ci[0], ci[2], i[q["Add"].input[1]].reshape(-1), 1, 0)
    dq_scale = i[q["DequantizeLinear"].input[1]]
    y = acc2.astype(np.float32) * dq_scale.reshape((1, -1, 1, 1) if dq_scale.size > 1 else ())
    np.testing.assert_array_equal(_run(model, x), y.astype(np.float32))


def test_dense_pass_uses_qlinearmatmul_where_requantized_and_matmulinteger_elsewhere():
    x = RNG.standard_normal((16, 16)).astype(np.float32)
    model = _quantized(dense_model(), x, per_channel=True, quant_format=QuantFormat.QOperator)
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QLinearMatMul"] == 1 and ops["MatMulInteger"] == 2
    assert ops["Gemm"] == ops["MatMul"] == 0


@pytest.mark.parametrize("model_fn,shape", [(conv_model, (8, 3, 7, 6)), (dense_model, (16, 16))])
def test_integer_model_is_within_one_lsb_chain_of_the_qdq_model(model_fn, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    model = model_fn()
    qdq = _quantized(model, x, per_channel=True)
    qop = _quantized(model, x, per_channel=True, quant_format=QuantFormat.QOperator)
    y_qdq, y_int = _run(qdq, x), _run(qop, x)
    # one LSB of the last quantized activation, times the largest |row sum| of the last weights
    i = _inits(qop)
    last = [n for n in qop.graph.node if n.op_type in ("ConvInteger", "MatMulInteger")][-1]
    w = i[last.input[1]].astype(np.float64)
    acc_scale = i[[n for n in qop.graph.node if n.op_type == "DequantizeLinear"][-1].input[1]]
    bound = np.max(acc_scale) * np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max() * 1.01
    assert np.max(np.abs(y_qdq - y_int)) <= bound


def _ort(model, x, outputs=None):
    ort = pytest.importorskip("onnxruntime")
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for name in outputs or []:
        m.graph.output.append(onnx.ValueInfoProto(name=name))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})


@pytest.mark.parametrize("weight_type,reduce_range,per_channel", [(QuantType.QInt8, True, True),
                                                                  (QuantType.QUInt8, False, False)])
@pytest.mark.parametrize("model_fn,shape", [(conv_model, (8, 3, 7, 6)), (dense_model, (16, 16))])
def test_onnxruntime_agrees_exactly_where_its_kernels_are_exact(model_fn, shape, weight_type, reduce_range,
                                                               per_channel):
    """u8 x s8 with 7-bit weights (|pair sums| <= 255 * 64 * 2 < 2**15) or u8 x u8: onnxruntime's
    integer kernels are exact on every CPU, so its integer tensors equal ours (0 LSB) and the
    float output too. (u8 weights per tensor: onnxruntime's ConvInteger takes one weight zero
    point, and asymmetric u8 weights per channel have one per channel.)"""
    x = RNG.standard_normal(shape).astype(np.float32)
    model = _quantized(model_fn(), x, per_channel=per_channel, weight_type=weight_type, reduce_range=reduce_range,
                       quant_format=QuantFormat.QOperator)
    ints = [n.output[0] for n in model.graph.node if n.op_type in ("QLinearConv", "QLinearMatMul", "MatMulInteger",
                                                                     "ConvInteger")]
    graph = load_graph(model)
    graph.outputs += [v for v in graph.values() if v.name in ints]
    ours = InferenceSession(to_onnx(graph), providers=["ReferenceExecutionProvider"]).run(None, {"x": x})
    theirs = _ort(model, x, ints)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
