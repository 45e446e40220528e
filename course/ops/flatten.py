"""Flatten: collapse the dims before ``axis`` into one and the dims from ``axis`` on into another."""
from __future__ import annotations

import math

from course.ops._common import dim_product, norm_axis
from course.ops.base import InferContext, Op
from course.ops.registry import register


@register("Flatten", since=1)
class Flatten(Op):
    attrs = {"axis": 1}

    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        if x is None:
            return [None]
        a = norm_axis(ctx.attrs["axis"], len(x), extra=1)
        lead = x[0] if a == 1 else dim_product(x[:a])
        return [(lead, x[-1] if a == len(x) - 1 else dim_product(x[a:]))]

    def compute(self, x, axis=1):
        a = norm_axis(axis, x.ndim, extra=1)
        return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))
