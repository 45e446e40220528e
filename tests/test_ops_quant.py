"""Quantized kernels against onnxruntime: exact integers, round-half-to-even, saturation."""
import numpy as np
import pytest

from course.testing import random_tensor
from ops_oracle import check, engine

F32 = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731


@pytest.mark.parametrize("qtype", ["uint8", "int8"])
@pytest.mark.parametrize("opset", [10, 13, 19])
def test_quantize_per_tensor(qtype, opset):
    x = random_tensor((3, 5), seed=1, low=-4, high=4)
    x[0, :4] = [0.5, 1.5, 2.5, -2.5]  # exact halves: round half to even
    zp = np.array(128 if qtype == "uint8" else -3, dtype=qtype)
    check("QuantizeLinear", [x, F32(0.02), zp], {}, opset=opset, out_dtypes=[qtype])  # many saturate
    check("QuantizeLinear", [x, F32(1.0), zp], {}, opset=opset, out_dtypes=[qtype])


def test_quantize_without_zero_point_is_uint8():
    x = random_tensor((4, 4), seed=2, low=-1, high=3)
    check("QuantizeLinear", [x, F32(0.05)], {}, opset=13, out_dtypes=["uint8"])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_quantize_dequantize_per_axis(axis):
    x = random_tensor((3, 4), seed=3, low=-2, high=2)
    n = x.shape[axis]
    scale = random_tensor((n,), seed=4, low=0.01, high=0.05)
    zp = random_tensor((n,), "int8", seed=5, low=-10, high=10)
    check("QuantizeLinear", [x, scale, zp], {"axis": axis}, opset=13, out_dtypes=["int8"])
    q = random_tensor((3, 4), "int8", seed=6, low=-128, high=127)
    check("DequantizeLinear", [q, scale, zp], {"axis": axis}, opset=13, out_dtypes=["float32"])


@pytest.mark.parametrize("qtype", ["uint8", "int8", "int32"])
def test_dequantize_per_tensor(qtype):
    q = random_tensor((2, 6), qtype, seed=7, low=0 if qtype == "uint8" else -100, high=200 if qtype == "uint8" else 100)
    zp = None if qtype == "int32" else np.array(3, dtype=qtype)
    inputs = [q, F32(0.125)] + ([] if zp is None else [zp])
    check("DequantizeLinear", inputs, {}, opset=13, out_dtypes=["float32"])


@pytest.mark.parametrize("a_zp,b_zp", [(None, None), (np.uint8(12), np.uint8(130))])
def test_matmul_integer(a_zp, b_zp):
    a = random_tensor((3, 40), "uint8", seed=8, low=0, high=255)
    b = random_tensor((40, 5), "uint8", seed=9, low=0, high=255)
    inputs = [a, b] + ([] if a_zp is None else [np.asarray(a_zp), np.asarray(b_zp)])
    check("MatMulInteger", inputs, {}, opset=10, out_dtypes=["int32"])


def test_matmul_integer_per_row_and_column_zero_points():
    # The spec allows an M-vector for A's zero point and an N-vector for B's; onnxruntime and the
    # reference evaluator only take scalars, so the exact int64 formula is the oracle here.
    a = random_tensor((3, 40), "uint8", seed=8, low=0, high=255)
    b = random_tensor((40, 5), "uint8", seed=9, low=0, high=255)
    a_zp, b_zp = np.array([0, 20, 40], np.uint8), np.arange(5, dtype=np.uint8) + 7
    got, _, _ = engine("MatMulInteger", [a, b, a_zp, b_zp], {}, 10)
    want = (a.astype(np.int64) - a_zp.astype(np.int64)[:, None]) @ (b.astype(np.int64) - b_zp.astype(np.int64))
    assert got[0].dtype == np.int32
    np.testing.assert_array_equal(got[0], want)


@pytest.mark.parametrize("attrs", [{}, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, {"group": 2, "pads": [0, 1, 1, 0]}])
def test_conv_integer(attrs):
    x = random_tensor((1, 4, 7, 6), "uint8", seed=10, low=0, high=255)
    w = random_tensor((6, 4 // attrs.get("group", 1), 3, 3), "uint8", seed=11, low=0, high=255)
    check("ConvInteger", [x, w, np.array(100, np.uint8), np.array(120, np.uint8)], attrs, opset=10, out_dtypes=["int32"])


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("attrs", [{}, {"pads": [1, 1, 1, 1], "strides": [2, 1]}, {"group": 4, "pads": [1, 1, 1, 1]}])
def test_qlinear_conv(per_channel, attrs):
    g = attrs.get("group", 1)
    x = random_tensor((1, 4, 8, 7), "uint8", seed=12, low=0, high=255)
    w = random_tensor((4, 4 // g, 3, 3), "int8", seed=13, low=-127, high=127)
    w_scale = random_tensor((4,), seed=14, low=0.001, high=0.01) if per_channel else F32(0.004)
    bias = random_tensor((4,), "int32", seed=15, low=-2000, high=2000)
    inputs = [x, F32(0.02), np.array(128, np.uint8), w, w_scale, np.array(0, np.int8), F32(0.05), np.array(120, np.uint8), bias]
    check("QLinearConv", inputs, attrs, opset=10, out_dtypes=["uint8"])


@pytest.mark.parametrize("qtype", ["uint8", "int8"])
def test_qlinear_matmul(qtype):
    lo, hi = (0, 255) if qtype == "uint8" else (-128, 127)
    a = random_tensor((2, 3, 16), qtype, seed=16, low=lo, high=hi)
    b = random_tensor((16, 5), qtype, seed=17, low=lo, high=hi)
    zp = lambda v: np.array(v, dtype=qtype)  # noqa: E731
    inputs = [a, F32(0.03), zp(5), b, F32(0.02), zp(-3 if qtype == "int8" else 9), F32(0.1), zp(10)]
    check("QLinearMatMul", inputs, {}, opset=10, out_dtypes=[qtype])
