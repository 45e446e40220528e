"""QLinearConv and QLinearMatMul: integer product, then requantize to the output scale.

y = saturate(round_half_even(acc * (x_scale * w_scale / y_scale)) + y_zero_point), where acc is
the exact int32 accumulation of (x - x_zp) * (w - w_zp) (+ bias for QLinearConv).
"""
from __future__ import annotations

import numpy as np

from course.ops.base import InferContext, Op
from course.ops.conv import CONV_ATTRS, conv_core, conv_infer_shape
from course.ops.matmul import matmul_shape
from course.ops.quant_integer import centered
from course.ops.quant_linear import saturate_round
from course.ops.registry import register


def requantize(acc, multiplier, y_zp):
    """acc (float64 holding exact integers) scaled to the output's integer type."""
    v = np.rint(acc.astype(np.float32) * multiplier.astype(np.float32))
    return saturate_round(v + float(y_zp.reshape(-1)[0]), y_zp.dtype)


@register("QLinearConv", since=10)
class QLinearConv(Op):
    attrs = CONV_ATTRS
    num_inputs = (8, 9)

    def infer_dtype(self, ctx: InferContext):
        return [ctx.dtype(7)]

    def infer_shape(self, ctx: InferContext):
        return [conv_infer_shape(ctx, ctx.shape(0), ctx.shape(3))]

    def compute(self, x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, b=None, auto_pad="NOTSET",
                dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
        acc = conv_core(centered(x, x_zp), centered(w, w_zp, axis=0), group, strides, pads, dilations, auto_pad)
        shape = (-1,) + (1,) * (acc.ndim - 2)
        if b is not None:
            acc += b.astype(np.float64).reshape(shape)
        mult = (x_scale.astype(np.float32) * w_scale.astype(np.float32)) / y_scale.astype(np.float32)
        return requantize(acc, mult.reshape(shape if mult.size > 1 else ()), y_zp)


@register("QLinearMatMul", since=10)
class QLinearMatMul(Op):
    num_inputs = (8, 8)

    def infer_dtype(self, ctx: InferContext):
        return [ctx.dtype(7)]

    def infer_shape(self, ctx: InferContext):
        return [matmul_shape(ctx.shape(0), ctx.shape(3))]

    def compute(self, a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
        acc = np.matmul(centered(a, a_zp, axis=-2), centered(b, b_zp, axis=-1))
        a_s = a_scale.astype(np.float32).reshape((-1, 1) if a_scale.size > 1 else ())
        b_s = b_scale.astype(np.float32).reshape(-1) if b_scale.size > 1 else b_scale.astype(np.float32).reshape(())
        return requantize(acc, (a_s * b_s) / y_scale.astype(np.float32).reshape(()), y_zp)
