"""Gather: take slices of ``data`` along ``axis`` at ``indices`` (negative indices count back)."""
from __future__ import annotations

import numpy as np

from course.errors import DTypeError, ShapeError
from course.ops._common import norm_axis
from course.ops.base import InferContext, Op
from course.ops.registry import register


@register("Gather", since=1)
class Gather(Op):
    attrs = {"axis": 0}
    num_inputs = (2, 2)

    def infer_shape(self, ctx: InferContext):
        x, idx = ctx.shape(0), ctx.shape(1)
        if ctx.dtype(1) is not None and ctx.dtype(1) not in (np.dtype(np.int32), np.dtype(np.int64)):
            raise DTypeError(f"indices have element type {ctx.dtype(1).name}; expected int32 or int64")
        if x is None or idx is None:
            return [None]
        a = norm_axis(ctx.attrs["axis"], len(x))
        return [tuple(x[:a]) + tuple(idx) + tuple(x[a + 1:])]

    def compute(self, x, indices, axis=0):
        a = norm_axis(axis, x.ndim)
        n = x.shape[a]
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise ShapeError(f"indices must lie in [{-n}, {n - 1}] for axis {a} of size {n}")
        return np.take(x, indices, axis=a)
