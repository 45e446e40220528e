"""ConstantOfShape: a tensor of a runtime shape filled with one value (default float32 zero)."""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops._common import as_ints
from course.ops.base import InferContext, Op
from course.ops.registry import register


@register("ConstantOfShape", since=9)
class ConstantOfShape(Op):
    attrs = {"value": None}

    def _fill(self, value):
        return np.zeros(1, dtype=np.float32) if value is None else np.asarray(value).reshape(-1)

    def infer_dtype(self, ctx: InferContext):
        return [self._fill(ctx.attrs["value"]).dtype]

    def infer_shape(self, ctx: InferContext):
        c = ctx.const(0)
        if c is not None:
            return [tuple(as_ints(c))]
        s = ctx.shape(0)
        return [None if s is None or not isinstance(s[0], int) else (None,) * s[0]]

    def compute(self, shape, value=None):
        fill = self._fill(value)
        dims = as_ints(shape)
        if fill.size != 1 or min(dims, default=0) < 0:
            raise ShapeError(f"ConstantOfShape needs a one-element value and dims >= 0, got {dims}")
        return np.full(dims, fill[0], dtype=fill.dtype)
