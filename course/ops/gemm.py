"""Gemm: Y = alpha * op(A) @ op(B) + beta * C, op = optional transpose; C broadcasts to (M, N)."""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops.base import InferContext, Op
from course.ops.registry import register


@register("Gemm", since=7)
class Gemm(Op):
    attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
    num_inputs = (3, 3)  # C became optional in opset 11

    def infer_shape(self, ctx: InferContext):
        a, b = ctx.shape(0), ctx.shape(1)
        for name, s in (("A", a), ("B", b)):
            if s is not None and len(s) != 2:
                raise ShapeError(f"input {name} has rank {len(s)}; Gemm needs 2-D matrices")
        m = None if a is None else a[1 if ctx.attrs["transA"] else 0]
        n = None if b is None else b[0 if ctx.attrs["transB"] else 1]
        ka = None if a is None else a[0 if ctx.attrs["transA"] else 1]
        kb = None if b is None else b[1 if ctx.attrs["transB"] else 0]
        if isinstance(ka, int) and isinstance(kb, int) and ka != kb:
            raise ShapeError(f"inner dims differ: A gives K={ka}, B gives K={kb}")
        return [(m, n)]

    def compute(self, a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0, out=None):
        a = a.T if transA else a
        b = b.T if transB else b
        if a.shape[1] != b.shape[0]:
            raise ShapeError(f"inner dims differ: op(A) is {a.shape}, op(B) is {b.shape}")
        y = np.matmul(a, b, out=out)
        if alpha != 1.0:
            y *= y.dtype.type(alpha)
        if c is not None and beta != 0.0:
            y += c if beta == 1.0 else c * c.dtype.type(beta)
        return y


@register("Gemm", since=11)
class Gemm11(Gemm):
    num_inputs = (2, 3)
