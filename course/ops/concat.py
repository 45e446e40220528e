"""Concat along one axis; every other dim must agree."""
from __future__ import annotations

import numpy as np

from course.errors import DTypeError, ShapeError
from course.ops._common import norm_axis
from course.ops.base import REQUIRED, InferContext, Op
from course.ops.registry import register


@register("Concat", since=4)
class Concat(Op):
    attrs = {"axis": REQUIRED}
    num_inputs = (1, None)

    def infer_dtype(self, ctx: InferContext):
        known = {t.dtype for t in ctx.inputs if t is not None}
        if len(known) > 1:
            raise DTypeError(f"inputs must share one element type, got {sorted(d.name for d in known)}")
        return [known.pop() if known else None]

    def infer_shape(self, ctx: InferContext):
        shapes = [ctx.shape(i) for i in range(len(ctx.inputs))]
        if not shapes or any(s is None for s in shapes):
            return [None]
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ShapeError(f"inputs have different ranks: {[len(s) for s in shapes]}")
        a = norm_axis(ctx.attrs["axis"], rank)
        out = list(shapes[0])
        for s in shapes[1:]:
            for i in range(rank):
                if i == a:
                    out[i] = out[i] + s[i] if isinstance(out[i], int) and isinstance(s[i], int) else None
                elif isinstance(out[i], int) and isinstance(s[i], int) and out[i] != s[i]:
                    raise ShapeError(f"dim {i} differs between inputs: {out[i]} vs {s[i]}")
                elif not isinstance(out[i], int):
                    out[i] = s[i] if isinstance(s[i], int) else out[i]
        return [tuple(out)]

    def compute(self, *xs, axis=0, out=None):
        return np.concatenate(xs, axis=norm_axis(axis, xs[0].ndim), out=out)
