"""Cast to the element type named by ``to`` (an ONNX TensorProto code)."""
from __future__ import annotations

import numpy as np

from course.ops._common import onnx_dtype
from course.ops.base import REQUIRED, InferContext, Op
from course.ops.registry import register


def _cast(x: np.ndarray, dt: np.dtype) -> np.ndarray:
    if x.dtype == object or dt == object:  # strings: parse numbers / print them
        if dt == object:
            return np.array([_to_text(v) for v in x.reshape(-1)], dtype=object).reshape(x.shape)
        return np.array([float(v) for v in x.reshape(-1)], dtype=np.float64).astype(dt).reshape(x.shape)
    if x.dtype.kind == "f" and dt.kind in "iub" and dt.kind != "b":
        with np.errstate(invalid="ignore", over="ignore"):
            return np.trunc(x).astype(dt)  # float -> int truncates toward zero
    return x.astype(dt)


def _to_text(v):
    if isinstance(v, (bytes, str)):
        return v
    return repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)


@register("Cast", since=6)
class Cast(Op):
    attrs = {"to": REQUIRED}

    def infer_dtype(self, ctx: InferContext):
        return [onnx_dtype(ctx.attrs["to"])]

    def infer_shape(self, ctx: InferContext):
        return [ctx.shape(0)]

    def compute(self, x, to=1, saturate=1, round_mode="up"):
        return _cast(x, onnx_dtype(to))


@register("Cast", since=19)
class Cast19(Cast):
    attrs = {"saturate": 1, "to": REQUIRED}  # saturate only concerns float8 types


@register("Cast", since=24)
class Cast24(Cast):
    attrs = {"round_mode": "up", "saturate": 1, "to": REQUIRED}
