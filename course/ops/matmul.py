"""MatMul with numpy.matmul semantics: 1-D operands promoted, leading dims broadcast."""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops.base import InferContext, Op, broadcast_shapes
from course.ops.registry import register


def matmul_shape(a, b):
    """Output shape of numpy.matmul for symbolic shapes; ShapeError when K dims clash."""
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise ShapeError("MatMul inputs must have rank >= 1")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if isinstance(a2[-1], int) and isinstance(b2[-2], int) and a2[-1] != b2[-2]:
        raise ShapeError(f"inner dims differ: A {tuple(a)} and B {tuple(b)}")
    out = broadcast_shapes(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


@register("MatMul", since=1)
class MatMul(Op):
    num_inputs = (2, 2)

    def infer_shape(self, ctx: InferContext):
        return [matmul_shape(ctx.shape(0), ctx.shape(1))]

    def compute(self, a, b, out=None):
        return np.matmul(a, b, out=out)
