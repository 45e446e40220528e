"""Elementwise binary arithmetic with numpy broadcasting (opset 7+): Add, Sub, Mul, Div, Sum."""
from __future__ import annotations

import numpy as np

from course.errors import DTypeError
from course.ops._common import write_out
from course.ops.base import InferContext, Op
from course.ops.registry import register


class _Binary(Op):
    num_inputs = (2, 2)

    def infer_dtype(self, ctx: InferContext):
        known = {d for d in (ctx.dtype(i) for i in range(len(ctx.inputs))) if d is not None}
        if len(known) > 1:
            names = ", ".join(sorted(d.name for d in known))
            raise DTypeError(f"inputs must share one element type, got {names}")
        return [known.pop() if known else None]


@register("Add", since=7)
class Add(_Binary):
    def compute(self, a, b, out=None):
        return np.add(a, b, out=out)


@register("Sub", since=7)
class Sub(_Binary):
    def compute(self, a, b, out=None):
        return np.subtract(a, b, out=out)


@register("Mul", since=7)
class Mul(_Binary):
    def compute(self, a, b, out=None):
        return np.multiply(a, b, out=out)


@register("Div", since=7)
class Div(_Binary):
    def compute(self, a, b, out=None):
        if a.dtype.kind == "f":
            return np.divide(a, b, out=out)
        # ONNX integer division truncates toward zero; numpy's // floors.
        q = np.floor_divide(a, b)
        if a.dtype.kind == "i":
            q = q + ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0))).astype(q.dtype)
        return write_out(out, q)


@register("Sum", since=6)
class Sum(_Binary):
    num_inputs = (1, None)

    def compute(self, *xs):
        out = np.array(xs[0], copy=True) if len(xs) == 1 else np.add(xs[0], xs[1])
        for x in xs[2:]:
            out = np.add(out, x)  # not in place: a later input may broadcast to a bigger shape
        return out
