"""GlobalAveragePool / GlobalMaxPool: reduce every spatial axis to 1, keeping (N, C)."""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops.base import InferContext, Op
from course.ops.registry import register


class _GlobalPool(Op):
    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        if x is not None and len(x) < 3:
            raise ShapeError(f"input has rank {len(x)}; expected (N, C, spatial...)")
        return [None if x is None else tuple(x[:2]) + (1,) * (len(x) - 2)]


@register("GlobalAveragePool", since=1)
class GlobalAveragePool(_GlobalPool):
    def compute(self, x, out=None):
        return np.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True, dtype=x.dtype, out=out)


@register("GlobalMaxPool", since=1)
class GlobalMaxPool(_GlobalPool):
    def compute(self, x, out=None):
        return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True, out=out)
