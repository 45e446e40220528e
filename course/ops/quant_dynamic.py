"""DynamicQuantizeLinear: uint8 quantisation with the scale and zero point of this very input.

The range always holds 0 (so 0.0 is exact): [min(x, 0), max(x, 0)], scale = range / 255,
zero point = round(0 - min / scale) saturated to [0, 255]; y = saturate(round(x / scale) + zp),
rounding half to even, all in float32 as the spec computes it.
"""
from __future__ import annotations

import numpy as np

from course.ops.base import InferContext, Op
from course.ops.registry import register


def dynamic_quantize_linear(x: np.ndarray):
    lo = np.float32(min(x.min(initial=0.0), 0.0))
    hi = np.float32(max(x.max(initial=0.0), 0.0))
    scale = (hi - lo) / np.float32(255.0) if hi > lo else np.float32(1.0)
    zp = np.uint8(np.clip(np.rint(np.float32(0.0) - lo / scale), 0, 255))
    y = np.clip(np.rint(x.astype(np.float32) / scale) + np.float32(zp), 0, 255).astype(np.uint8)
    return y, np.array(scale, np.float32), np.array(zp, np.uint8)


@register("DynamicQuantizeLinear", since=11)
class DynamicQuantizeLinear(Op):
    num_outputs = (3, 3)

    def infer_dtype(self, ctx: InferContext):
        return [np.dtype(np.uint8), np.dtype(np.float32), np.dtype(np.uint8)]

    def infer_shape(self, ctx: InferContext):
        return [ctx.shape(0), (), ()]

    def compute(self, x):
        return dynamic_quantize_linear(x)
