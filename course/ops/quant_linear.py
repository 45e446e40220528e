"""QuantizeLinear: per-tensor, per-axis (opset 13+) and blocked (21+) quantization.

q = saturate(round_half_even(x / scale) + zero_point), in the zero point's integer type.
"""
from __future__ import annotations

import numpy as np

from course.errors import DTypeError, ShapeError
from course.ops._common import norm_axis, onnx_dtype
from course.ops.base import InferContext, Op
from course.ops.registry import register

INT_TYPES = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32))


def param_for(p: np.ndarray, x: np.ndarray, axis: int = 1, block_size: int = 0) -> np.ndarray:
    """Scale/zero-point shaped to broadcast against x: scalar, 1-D along ``axis``, or blocked."""
    if p.size == 1 and not block_size:
        return p.reshape(())
    a = norm_axis(axis, x.ndim)
    if block_size:
        if p.ndim != x.ndim or p.shape[a] != -(-x.shape[a] // block_size):
            raise ShapeError(f"blocked scale shape {p.shape} does not fit input {x.shape}, block {block_size}")
        return np.repeat(p, block_size, axis=a)[(slice(None),) * a + (slice(0, x.shape[a]),)]
    if p.ndim != 1 or p.shape[0] != x.shape[a]:
        raise ShapeError(f"scale/zero-point of shape {p.shape} does not match axis {a} of input {x.shape}")
    return p.reshape((-1,) + (1,) * (x.ndim - a - 1))


def saturate_round(v: np.ndarray, dt: np.dtype) -> np.ndarray:
    info = np.iinfo(dt)
    return np.clip(np.rint(v), info.min, info.max).astype(dt)


@register("QuantizeLinear", since=10)
class QuantizeLinear(Op):
    num_inputs = (2, 3)

    def _out_dtype(self, zp_dtype, output_dtype=0):
        dt = zp_dtype if zp_dtype is not None else (onnx_dtype(output_dtype, "output_dtype")
                                                     if output_dtype else np.dtype(np.uint8))
        if dt not in INT_TYPES:
            raise DTypeError(f"quantized type {dt.name} is not supported (use {[t.name for t in INT_TYPES]})")
        return dt

    def infer_dtype(self, ctx: InferContext):
        return [self._out_dtype(ctx.dtype(2), ctx.attrs.get("output_dtype", 0))]

    def infer_shape(self, ctx: InferContext):
        return [ctx.shape(0)]

    def compute(self, x, scale, zp=None, axis=1, block_size=0, output_dtype=0, saturate=1, precision=0):
        dt = self._out_dtype(None if zp is None else zp.dtype, output_dtype)
        v = x / param_for(scale, x, axis, block_size).astype(x.dtype, copy=False)
        v = np.rint(v)
        if zp is not None:
            v = v + param_for(zp, x, axis, block_size).astype(v.dtype)
        return saturate_round(v, dt)


@register("QuantizeLinear", since=13)
class QuantizeLinear13(QuantizeLinear):
    attrs = {"axis": 1}


@register("QuantizeLinear", since=19)
class QuantizeLinear19(QuantizeLinear):
    attrs = {"axis": 1, "saturate": 1}  # saturate matters for float8 outputs only


@register("QuantizeLinear", since=21)
class QuantizeLinear21(QuantizeLinear):
    attrs = {"axis": 1, "block_size": 0, "output_dtype": 0, "saturate": 1}


@register("QuantizeLinear", since=23)
class QuantizeLinear23(QuantizeLinear):
    attrs = {**QuantizeLinear21.attrs, "precision": 0}
