"""Transpose: permute axes (default: reverse them). Returns a contiguous array."""
from __future__ import annotations

import numpy as np

from course.errors import OpAttributeError
from course.ops._common import write_out
from course.ops.base import InferContext, Op
from course.ops.registry import register


def _perm(perm, rank):
    p = list(range(rank))[::-1] if perm is None else [int(v) for v in perm]
    if sorted(p) != list(range(rank)):
        raise OpAttributeError(f"perm {p} is not a permutation of the {rank} axes")
    return p


@register("Transpose", since=1)
class Transpose(Op):
    attrs = {"perm": None}

    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        return [None if x is None else tuple(x[i] for i in _perm(ctx.attrs["perm"], len(x)))]

    def compute(self, x, perm=None, out=None):
        y = np.transpose(x, _perm(perm, x.ndim))
        # A copy, so later kernels get a contiguous buffer (BLAS, reshape without copies).
        return np.ascontiguousarray(y) if out is None else write_out(out, y)
