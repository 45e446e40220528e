"""MatMulInteger and ConvInteger: integer products accumulated exactly into int32.

``Y = sum (A - a_zero_point) * (B - b_zero_point)``, exactly. The zero points are subtracted
first, then the product runs as a float64 matmul: each product of two centred 8-bit values is an
integer below 2**16 and every partial sum stays far below 2**53 (for any K under ~10**11), so
float64 holds each one exactly, in any summation order -- the same integers as an int64
accumulation, without numpy's slow integer matmul (it has no BLAS).
"""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops.base import InferContext, Op
from course.ops.conv import CONV_ATTRS, conv_core, conv_infer_shape
from course.ops.matmul import matmul_shape
from course.ops.registry import register


def centered(x, zp, axis=None):
    """x - zero_point as float64; zp is a scalar or a vector along ``axis`` of x."""
    v = x.astype(np.float64)
    if zp is None or zp.size == 0:
        return v
    if zp.size == 1:
        return v - float(zp.reshape(-1)[0])
    if axis is None or zp.size != x.shape[axis]:
        raise ShapeError(f"zero point of shape {zp.shape} does not fit input {x.shape}")
    return v - zp.astype(np.float64).reshape((-1,) + (1,) * (x.ndim - (axis % x.ndim) - 1))


def to_int32(v: np.ndarray) -> np.ndarray:
    """Exact integers held in float64 -> int32, wrapping as an int32 accumulator would."""
    return v.astype(np.int64).astype(np.int32)


@register("MatMulInteger", since=10)
class MatMulInteger(Op):
    num_inputs = (2, 4)

    def infer_dtype(self, ctx: InferContext):
        return [np.dtype(np.int32)]

    def infer_shape(self, ctx: InferContext):
        return [matmul_shape(ctx.shape(0), ctx.shape(1))]

    def compute(self, a, b, a_zp=None, b_zp=None):
        # a's zero point may be per row (axis -2), b's per column (axis -1).
        return to_int32(np.matmul(centered(a, a_zp, axis=-2 if a.ndim > 1 else 0), centered(b, b_zp, axis=-1)))


@register("ConvInteger", since=10)
class ConvInteger(Op):
    attrs = CONV_ATTRS
    num_inputs = (2, 4)

    def infer_dtype(self, ctx: InferContext):
        return [np.dtype(np.int32)]

    def infer_shape(self, ctx: InferContext):
        return [conv_infer_shape(ctx, ctx.shape(0), ctx.shape(1))]

    def compute(self, x, w, x_zp=None, w_zp=None, auto_pad="NOTSET", dilations=None, group=1,
                kernel_shape=None, pads=None, strides=None):
        # Padding after subtracting the zero point pads with x_zero_point, as ONNX specifies.
        y = conv_core(centered(x, x_zp), centered(w, w_zp, axis=0), group, strides, pads, dilations, auto_pad)
        return to_int32(y)
