"""Softmax, numerically stable (the row maximum is subtracted before exp).

Opsets 1-12 flatten the input to 2-D at ``axis`` and normalize each row (axis default 1);
opset 13+ normalizes along the single ``axis`` (default -1).
"""
from __future__ import annotations

import numpy as np

from course.ops._common import norm_axis
from course.ops.base import InferContext, Op
from course.ops.registry import register


def _softmax(x, axes):
    e = np.exp(x - np.max(x, axis=axes, keepdims=True))
    e /= np.sum(e, axis=axes, keepdims=True)
    return e


@register("Softmax", since=1)
class Softmax(Op):
    attrs = {"axis": 1}

    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        if x is not None:
            norm_axis(ctx.attrs["axis"], len(x))
        return [x]

    def compute(self, x, axis=1):
        a = norm_axis(axis, x.ndim)
        return _softmax(x, tuple(range(a, x.ndim)))


@register("Softmax", since=13)
class Softmax13(Softmax):
    attrs = {"axis": -1}

    def compute(self, x, axis=-1):
        return _softmax(x, norm_axis(axis, x.ndim))
