"""Quantized kernels: exact integers, round-half-to-even, saturation.

QuantizeLinear/DequantizeLinear are checked against onnxruntime. The integer products
(MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv) are checked against their exact
definition written here (int64 accumulation, then the requantization's float32 rounding), on the
full 8-bit ranges; onnxruntime is a second oracle only on inputs where it is exact on every CPU:
without VNNI its u8s8 kernels add pairs of u8*s8 products in saturating 16-bit lanes (255 * 127 * 2
overflows), so its signed weights stay within +-63 (255 * 63 * 2 = 32130 fits).
"""
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


# --- the exact definitions (the oracle) -----------------------------------------------------------

def conv2d_int64(x, w, group=1, strides=(1, 1), pads=(0, 0, 0, 0)):
    """Y[n, m, i, j] = sum_{c, u, v} W[m, c, u, v] * Xpad[n, g * C/group + c, i * sh + u, j * sw + v]
    in int64, g the group of output channel m; x and w are already centred (zero points taken off)."""
    x = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    m, cg, kh, kw = w.shape
    (sh, sw), h, wd = strides, x.shape[2], x.shape[3]
    oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    y = np.zeros((x.shape[0], m, oh, ow), np.int64)
    for mi in range(m):
        g = mi // (m // group)
        for u, v in np.ndindex(kh, kw):
            patch = x[:, g * cg:(g + 1) * cg, u:u + sh * (oh - 1) + 1:sh, v:v + sw * (ow - 1) + 1:sw]
            y[:, mi] += np.einsum("nchw,c->nhw", patch, w[mi, :, u, v].astype(np.int64))
    return y


def requantize(acc, x_scale, w_scale, y_scale, y_zp):
    """saturate(round_half_even(float32(acc) * (x_scale * w_scale / y_scale)) + y_zp), in float32
    as onnxruntime computes the multiplier."""
    mult = (np.float32(x_scale) * np.asarray(w_scale, np.float32)) / np.float32(y_scale)
    v = np.rint(acc.astype(np.float32) * mult) + np.float32(y_zp)
    info = np.iinfo(y_zp.dtype)
    return np.clip(v, info.min, info.max).astype(y_zp.dtype)


def i64(a, zp=0):
    return np.asarray(a).astype(np.int64) - np.asarray(zp).astype(np.int64)


def exact(op, inputs, attrs=None, opset=10):
    """The engine's output, asserted equal to the definition's ``want`` by the caller."""
    got, _, _ = engine(op, list(inputs), attrs or {}, opset)
    return got[0]


# --- MatMulInteger ---------------------------------------------------------------------------------

@pytest.mark.parametrize("btype", ["uint8", "int8"])
@pytest.mark.parametrize("with_zp", [False, True])
def test_matmul_integer(btype, with_zp):
    lo, hi = (0, 255) if btype == "uint8" else (-128, 127)
    a = random_tensor((3, 40), "uint8", seed=8, low=0, high=255)
    b = random_tensor((40, 5), btype, seed=9, low=lo, high=hi)
    zps = [np.array(12, np.uint8), np.array(30 if btype == "uint8" else -7, btype)] if with_zp else []
    got = exact("MatMulInteger", [a, b] + zps)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, i64(a, zps[0] if zps else 0) @ i64(b, zps[1] if zps else 0))
    if btype == "int8":
        b = np.clip(b, -63, 63)  # onnxruntime's u8s8 kernels are exact only there on every CPU
    check("MatMulInteger", [a, b] + zps, {}, opset=10, out_dtypes=["int32"])


def test_matmul_integer_per_row_and_column_zero_points():
    # The spec allows an M-vector for A's zero point and an N-vector for B's; onnxruntime and the
    # reference evaluator only take scalars, so the exact int64 formula is the only oracle here.
    a = random_tensor((3, 40), "uint8", seed=8, low=0, high=255)
    b = random_tensor((40, 5), "uint8", seed=9, low=0, high=255)
    a_zp, b_zp = np.array([0, 20, 40], np.uint8), np.arange(5, dtype=np.uint8) + 7
    got = exact("MatMulInteger", [a, b, a_zp, b_zp])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, (i64(a) - i64(a_zp)[:, None]) @ i64(b, b_zp))


# --- ConvInteger -----------------------------------------------------------------------------------

CONV_CASES = [{}, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, {"group": 2, "pads": [0, 1, 1, 0]}]


@pytest.mark.parametrize("attrs", CONV_CASES)
def test_conv_integer(attrs):
    g = attrs.get("group", 1)
    x = random_tensor((1, 4, 7, 6), "uint8", seed=10, low=0, high=255)
    w = random_tensor((6, 4 // g, 3, 3), "uint8", seed=11, low=0, high=255)
    x_zp, w_zp = np.array(100, np.uint8), np.array(120, np.uint8)
    got = exact("ConvInteger", [x, w, x_zp, w_zp], attrs)
    want = conv2d_int64(i64(x, x_zp), i64(w, w_zp), g, attrs.get("strides", (1, 1)), attrs.get("pads", (0,) * 4))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)  # the padding holds x_zp: zero once centred
    check("ConvInteger", [x, w, x_zp, w_zp], attrs, opset=10, out_dtypes=["int32"])  # u8u8: exact in ORT


# --- QLinearConv / QLinearMatMul -------------------------------------------------------------------

def _qlinear_conv_inputs(per_channel, g, w_limit, y_scale=0.05):
    x = random_tensor((1, 4, 8, 7), "uint8", seed=12, low=0, high=255)
    w = random_tensor((4, 4 // g, 3, 3), "int8", seed=13, low=-w_limit, high=w_limit)
    w_scale = random_tensor((4,), seed=14, low=0.001, high=0.01) if per_channel else F32(0.004)
    bias = random_tensor((4,), "int32", seed=15, low=-2000, high=2000)
    return [x, F32(0.02), np.array(128, np.uint8), w, w_scale, np.array(0, np.int8), F32(y_scale),
            np.array(120, np.uint8), bias]


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("attrs", [{}, {"pads": [1, 1, 1, 1], "strides": [2, 1]}, {"group": 4, "pads": [1, 1, 1, 1]}])
@pytest.mark.parametrize("y_scale", [0.05, 0.004])  # the small scale saturates many outputs, both ways
def test_qlinear_conv(per_channel, attrs, y_scale):
    g = attrs.get("group", 1)
    inputs = _qlinear_conv_inputs(per_channel, g, 127, y_scale)
    x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias = inputs
    acc = conv2d_int64(i64(x, x_zp), i64(w, w_zp), g, attrs.get("strides", (1, 1)), attrs.get("pads", (0,) * 4))
    acc += bias.astype(np.int64).reshape(-1, 1, 1)
    want = requantize(acc, x_scale, np.asarray(w_scale).reshape(-1, 1, 1), y_scale, y_zp)
    got = exact("QLinearConv", inputs, attrs)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    if y_scale < 0.01:
        assert (want == 0).any() and (want == 255).any() and ((want > 0) & (want < 255)).any()
    check("QLinearConv", _qlinear_conv_inputs(per_channel, g, 63, y_scale), attrs, opset=10, out_dtypes=["uint8"])


@pytest.mark.parametrize("qtype", ["uint8", "int8"])
def test_qlinear_matmul(qtype):
    lo, hi = (0, 255) if qtype == "uint8" else (-128, 127)
    a = random_tensor((2, 3, 16), qtype, seed=16, low=lo, high=hi)
    b = random_tensor((16, 5), qtype, seed=17, low=lo, high=hi)
    zp = lambda v: np.array(v, dtype=qtype)  # noqa: E731
    inputs = [a, F32(0.03), zp(5), b, F32(0.02), zp(-3 if qtype == "int8" else 9), F32(0.1), zp(10)]
    want = requantize(i64(a, inputs[2]) @ i64(b, inputs[5]), inputs[1], inputs[4], inputs[6], inputs[7])
    got = exact("QLinearMatMul", inputs)
    assert got.dtype == np.dtype(qtype)
    np.testing.assert_array_equal(got, want)
    if qtype == "int8":  # s8s8 may run as u8s8 (A shifted by 128): B within +-63 there
        inputs[3] = np.clip(b, -63, 63)
    check("QLinearMatMul", inputs, {}, opset=10, out_dtypes=[qtype])
