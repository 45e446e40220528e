"""Scale and zero point: how a real range [rmin, rmax] maps onto an integer grid.

    q = saturate(round_half_even(r / scale) + zero_point)        r ~ (q - zero_point) * scale

The range is first widened to hold 0 (so 0.0 is exactly representable: zero padding and ReLU's
zeros stay exact). Asymmetric: scale = (rmax - rmin) / (qmax - qmin), zero_point =
round(qmin - rmin / scale). Symmetric: the range is made [-a, a] with a = max(|rmin|, |rmax|), so
int8's zero point is 0 and the integer product needs no zero-point terms. ``reduce_range`` keeps 7
bits (int8 weights in [-64, 64], uint8 in [0, 127]) so that a u8 x s8 pair sum fits the 16-bit
intermediate of CPUs without VNNI. The rules follow onnxruntime's ``compute_scale_zp`` and the
ONNX QuantizeLinear spec (round half to even, saturate), computed in float32 as the op does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from course.quant.types import QuantType


@dataclass(frozen=True)
class QuantParams:
    """Scale (float32) and zero point (the quantized dtype): scalars, or 1-D along ``axis``."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: Optional[int] = None

    @property
    def dtype(self) -> np.dtype:
        return self.zero_point.dtype

    @property
    def per_channel(self) -> bool:
        return self.axis is not None


def qrange(qtype, reduce_range: bool = False, symmetric: bool = False) -> tuple[int, int]:
    """The integer grid [qmin, qmax]: int8 symmetric drops -128 so the grid is symmetric too."""
    qt = QuantType.of(qtype)
    if qt is QuantType.QUInt8:
        return (0, 127) if reduce_range else (0, 255)
    if reduce_range:
        return (-64, 64)
    return (-127, 127) if symmetric else (-128, 127)


def compute_params(rmin, rmax, qtype, symmetric: bool = False, reduce_range: bool = False,
                   axis: Optional[int] = None) -> QuantParams:
    """Scale and zero point for the range [rmin, rmax] (scalars, or arrays: one per channel)."""
    qmin, qmax = qrange(qtype, reduce_range, symmetric)
    rmin = np.minimum(np.asarray(rmin, np.float64), 0.0)
    rmax = np.maximum(np.asarray(rmax, np.float64), 0.0)
    if symmetric:
        rmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin = -rmax
    scale = np.asarray((rmax - rmin) / float(qmax - qmin), np.float64)
    empty = scale < np.finfo(np.float32).tiny  # an all-zero tensor: any scale represents it
    scale = np.where(empty, 1.0, scale)
    zp = np.where(empty, 0.0, np.round(qmin - rmin / scale))
    zp = np.clip(zp, qmin, qmax).astype(QuantType.of(qtype).dtype)
    return QuantParams(scale.astype(np.float32), zp, axis)


def _shaped(p: np.ndarray, x: np.ndarray, axis: Optional[int]) -> np.ndarray:
    if axis is None or p.ndim == 0:
        return p.reshape(())
    a = axis % x.ndim
    return p.reshape((-1,) + (1,) * (x.ndim - a - 1))


def quantize(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point), in float32 (float64
    for an int32 bias, whose integers float32 cannot all hold)."""
    info = np.iinfo(params.dtype)
    ft = np.float64 if info.bits > 16 else np.float32
    v = np.rint(np.asarray(x, ft) / _shaped(params.scale, x, params.axis).astype(ft))
    v = v + _shaped(params.zero_point, x, params.axis).astype(ft)
    return np.clip(v, info.min, info.max).astype(params.dtype)


def dequantize(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """ONNX DequantizeLinear: (q - zero_point) * scale, in float32."""
    centred = q.astype(np.int32) - _shaped(params.zero_point, q, params.axis).astype(np.int32)
    return centred.astype(np.float32) * _shaped(params.scale, q, params.axis)


def fake_quantize(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """dequantize(quantize(x)): the value a QDQ pair hands the next float op."""
    return dequantize(quantize(x, params), params)


def tensor_params(x: np.ndarray, qtype, symmetric: bool = True, reduce_range: bool = False,
                  axis: Optional[int] = None) -> QuantParams:
    """Parameters for a whole tensor (a weight) from its own range, per tensor or per ``axis``."""
    x = np.asarray(x)
    if axis is None:
        return compute_params(x.min(initial=0.0), x.max(initial=0.0), qtype, symmetric, reduce_range)
    a = axis % x.ndim
    others = tuple(i for i in range(x.ndim) if i != a)
    return compute_params(x.min(axis=others, initial=0.0), x.max(axis=others, initial=0.0), qtype,
                          symmetric, reduce_range, axis=a)


def bias_params(x_scale: np.ndarray, w_params: QuantParams) -> QuantParams:
    """int32 bias with scale x_scale * w_scale (float32, as QLinearConv multiplies them) and zero
    point 0: the bias then adds straight into the int32 accumulator."""
    scale = (np.float32(x_scale.reshape(())) * w_params.scale).astype(np.float32)
    axis = 0 if w_params.per_channel else None
    return QuantParams(scale, np.zeros(scale.shape, np.int32), axis)
