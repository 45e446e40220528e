"""BatchNormalization in inference mode: y = (x - mean) / sqrt(var + eps) * scale + B.

The per-channel affine is folded first (a = scale / sqrt(var + eps), b = B - mean * a), so the
tensor itself sees one multiply and one add, in x's dtype.
"""
from __future__ import annotations

import numpy as np

from course.errors import OpAttributeError, ShapeError
from course.ops.base import InferContext, Op
from course.ops.registry import register


@register("BatchNormalization", since=7)
class BatchNormalization(Op):
    attrs = {"epsilon": 1e-5, "momentum": 0.9, "spatial": 1}
    num_inputs = (5, 5)
    num_outputs = (1, 5)

    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        if x is not None and len(x) < 2:
            raise ShapeError(f"X has rank {len(x)}; expected (N, C, ...)")
        return [x]

    def compute(self, x, scale, b, mean, var, epsilon=1e-5, momentum=0.9, spatial=1, training_mode=0, out=None):
        if training_mode:
            raise OpAttributeError("training_mode=1 is not supported: this engine runs inference only")
        if x.ndim < 2 or scale.shape != (x.shape[1],):
            raise ShapeError(f"scale has shape {scale.shape}; X {x.shape} needs ({x.shape[1]},)")
        a = scale / np.sqrt(var + var.dtype.type(epsilon))
        shift = (b - mean * a).astype(x.dtype, copy=False).reshape((-1,) + (1,) * (x.ndim - 2))
        y = np.multiply(x, a.astype(x.dtype, copy=False).reshape(shift.shape), out=out)
        y += shift
        return y


@register("BatchNormalization", since=9)
class BatchNormalization9(BatchNormalization):
    attrs = {"epsilon": 1e-5, "momentum": 0.9}


@register("BatchNormalization", since=14)
class BatchNormalization14(BatchNormalization):
    attrs = {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0}
    num_outputs = (1, 3)
