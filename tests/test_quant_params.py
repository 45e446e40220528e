"""Scale / zero point and the ONNX quantize rules: round half to even, saturation, per channel."""
from __future__ import annotations

import numpy as np
import pytest

from course.ops.quant_dequantize import DequantizeLinear21
from course.ops.quant_linear import QuantizeLinear21
from course.quant import QuantType, compute_params, dequantize, qrange, quantize, tensor_params
from course.quant.params import QuantParams, bias_params


def test_qrange_follows_onnxruntime():
    assert qrange(QuantType.QUInt8) == (0, 255)
    assert qrange(QuantType.QUInt8, reduce_range=True) == (0, 127)
    assert qrange(QuantType.QInt8) == (-128, 127)
    assert qrange(QuantType.QInt8, symmetric=True) == (-127, 127)
    assert qrange(QuantType.QInt8, reduce_range=True, symmetric=True) == (-64, 64)


def test_asymmetric_uint8_holds_zero_exactly():
    p = compute_params(-1.0, 3.0, QuantType.QUInt8)
    assert p.scale.dtype == np.float32 and p.zero_point.dtype == np.uint8
    assert p.scale == np.float32(4.0 / 255) and int(p.zero_point) == round(1.0 / (4.0 / 255))
    assert dequantize(quantize(np.float32([0.0]), p), p)[0] == 0.0


def test_range_is_widened_to_hold_zero():
    p = compute_params(2.0, 4.0, QuantType.QUInt8)  # widened to [0, 4]
    assert int(p.zero_point) == 0 and p.scale == np.float32(4.0 / 255)


def test_symmetric_int8_has_zero_point_zero_and_uses_the_larger_side():
    p = compute_params(-0.5, 2.54, QuantType.QInt8, symmetric=True)
    assert int(p.zero_point) == 0 and p.scale == np.float32(2.54 / 127)
    p = compute_params(-1.0, 1.0, QuantType.QUInt8, symmetric=True)
    assert int(p.zero_point) == 128  # round((0 + 255) / 2), half to even


def test_all_zero_range_gets_scale_one():
    p = compute_params(0.0, 0.0, QuantType.QInt8)
    assert p.scale == 1.0 and int(p.zero_point) == 0


def test_rounding_is_half_to_even_not_half_up():
    p = QuantParams(np.float32(1.0), np.uint8(10))
    x = np.float32([0.5, 1.5, 2.5, -0.5, -1.5])
    assert quantize(x, p).tolist() == [10, 12, 12, 10, 8]  # half up would give 11, 12, 13, 10, 9


def test_saturation_clips_instead_of_wrapping():
    p = QuantParams(np.float32(0.1), np.int8(0))
    assert quantize(np.float32([100.0, -100.0, 12.7]), p).tolist() == [127, -128, 127]


@pytest.mark.parametrize("qtype", [QuantType.QInt8, QuantType.QUInt8])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_quantize_matches_the_engines_quantizelinear(qtype, axis):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, 4, 3)) * 3).astype(np.float32)
    p = tensor_params(x, qtype, symmetric=qtype is QuantType.QInt8, axis=axis)
    ax = 1 if axis is None else axis
    q = quantize(x, p)
    np.testing.assert_array_equal(q, QuantizeLinear21().compute(x, p.scale, p.zero_point, axis=ax))
    np.testing.assert_array_equal(dequantize(q, p), DequantizeLinear21().compute(q, p.scale, p.zero_point, axis=ax))
    step = np.max(p.scale)
    assert np.max(np.abs(dequantize(q, p) - x)) <= step / 2 + 1e-6  # in range: error at most half a step


def test_per_channel_uses_each_channels_own_range():
    w = np.stack([np.linspace(-1, 1, 9), np.linspace(-0.01, 0.01, 9)]).astype(np.float32)
    per_tensor, per_channel = tensor_params(w, QuantType.QInt8), tensor_params(w, QuantType.QInt8, axis=0)
    assert per_channel.scale.shape == (2,) and per_channel.axis == 0
    assert np.array_equal(per_channel.scale, np.float32([1 / 127, 0.01 / 127]))
    err = lambda p: np.abs(dequantize(quantize(w, p), p) - w)[1].max()  # noqa: E731
    assert err(per_channel) < err(per_tensor) / 50  # the small channel keeps its precision


def test_reduce_range_keeps_int8_weights_within_64():
    w = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    q = quantize(w, tensor_params(w, QuantType.QInt8, reduce_range=True, axis=0))
    assert np.abs(q.astype(int)).max() == 64


def test_bias_is_int32_with_the_product_of_scales():
    w = tensor_params(np.float32([[1.0, -2.0], [0.5, 0.25]]), QuantType.QInt8, axis=0)
    b = bias_params(np.float32(0.02), w)
    assert b.dtype == np.int32 and np.array_equal(b.scale, (np.float32(0.02) * w.scale).astype(np.float32))
    assert quantize(np.float64([1e6, -3.0]), b).dtype == np.int32
