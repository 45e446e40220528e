"""Elementwise unary ops: one numpy ufunc each, dtype preserved (float32 stays float32)."""
from __future__ import annotations

import numpy as np

from course.errors import DTypeError
from course.ops.base import InferContext, Op
from course.ops.registry import register


class _Unary(Op):
    """y = f(x) elementwise; output type and shape are the input's."""

    float_only = True

    def infer_dtype(self, ctx: InferContext):
        dt = ctx.dtype(0)
        if dt is not None and self.float_only and dt.kind != "f":
            raise DTypeError(f"input has element type {dt.name}; {self.op_type} needs a float type")
        return [dt]

    def infer_shape(self, ctx: InferContext):
        return [ctx.shape(0)]


@register("Abs", since=6)
class Abs(_Unary):
    float_only = False

    def compute(self, x, out=None):
        return np.abs(x, out=out)


@register("Neg", since=6)
class Neg(_Unary):
    float_only = False

    def compute(self, x, out=None):
        return np.negative(x, out=out)


@register("Exp", since=6)
class Exp(_Unary):
    def compute(self, x, out=None):
        return np.exp(x, out=out)


@register("Sqrt", since=6)
class Sqrt(_Unary):
    def compute(self, x, out=None):
        return np.sqrt(x, out=out)


@register("Reciprocal", since=6)
class Reciprocal(_Unary):
    def compute(self, x, out=None):
        return np.reciprocal(x, out=out)
