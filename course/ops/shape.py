"""Shape: the input's dims as an int64 vector, optionally sliced by start/end (opset 15+)."""
from __future__ import annotations

import numpy as np

from course.ops.base import InferContext, Op
from course.ops.registry import register


@register("Shape", since=1)
class Shape(Op):
    def _range(self, rank, attrs):
        return slice(attrs.get("start", 0), attrs.get("end"))  # clamping is Python's slice rule

    def infer_dtype(self, ctx: InferContext):
        return [np.dtype(np.int64)]

    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        return [None if x is None else (len(range(len(x))[self._range(len(x), ctx.attrs)]),)]

    def compute(self, x, start=0, end=None):
        return np.array(x.shape[slice(start, end)], dtype=np.int64)


@register("Shape", since=15)
class Shape15(Shape):
    attrs = {"end": None, "start": 0}
