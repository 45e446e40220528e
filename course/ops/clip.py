"""Clip to [min, max]: bounds as attributes (opsets 6-10) or optional scalar inputs (11+)."""
from __future__ import annotations

import numpy as np

from course.ops._common import write_out
from course.ops.base import InferContext, Op
from course.ops.registry import register


def _clip(x, lo, hi, out=None):
    """max(x, lo) then min(., hi): min wins when lo > hi, as ONNX specifies. One new array (or
    ``out``, written)."""
    if lo is None and hi is None:
        return np.array(x, copy=True) if out is None else write_out(out, x)
    y = np.maximum(x, x.dtype.type(lo), out=out) if lo is not None else np.minimum(x, x.dtype.type(hi), out=out)
    if lo is not None and hi is not None:
        np.minimum(y, x.dtype.type(hi), out=y)
    return y


@register("Clip", since=6)
class Clip(Op):
    attrs = {"max": 3.4028234663852886e38, "min": -3.4028234663852886e38}

    def infer_shape(self, ctx: InferContext):
        return [ctx.shape(0)]

    def compute(self, x, max=3.4028234663852886e38, min=-3.4028234663852886e38, out=None):
        return _clip(x, min, max, out)


@register("Clip", since=11)
class Clip11(Clip):
    attrs = {}
    num_inputs = (1, 3)

    def compute(self, x, lo=None, hi=None, out=None):
        return _clip(x, None if lo is None else lo.reshape(-1)[0], None if hi is None else hi.reshape(-1)[0], out)
