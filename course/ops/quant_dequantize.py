"""DequantizeLinear: x = (q - zero_point) * scale, per tensor, per axis or per block."""
from __future__ import annotations

import numpy as np

from course.errors import DTypeError
from course.ops._common import onnx_dtype
from course.ops.base import InferContext, Op
from course.ops.quant_linear import INT_TYPES, param_for
from course.ops.registry import register


@register("DequantizeLinear", since=10)
class DequantizeLinear(Op):
    num_inputs = (2, 3)

    def infer_dtype(self, ctx: InferContext):
        od = ctx.attrs.get("output_dtype", 0)
        return [onnx_dtype(od, "output_dtype") if od else ctx.dtype(1)]

    def infer_shape(self, ctx: InferContext):
        return [ctx.shape(0)]

    def compute(self, x, scale, zp=None, axis=1, block_size=0, output_dtype=0):
        if x.dtype not in INT_TYPES:
            raise DTypeError(f"quantized type {x.dtype.name} is not supported")
        q = x.astype(np.int32)
        if zp is not None:
            q = q - param_for(zp, x, axis, block_size).astype(np.int32)
        out = onnx_dtype(output_dtype, "output_dtype") if output_dtype else scale.dtype
        return (q.astype(out) * param_for(scale, x, axis, block_size).astype(out)).astype(out, copy=False)


@register("DequantizeLinear", since=13)
class DequantizeLinear13(DequantizeLinear):
    attrs = {"axis": 1}


@register("DequantizeLinear", since=21)
class DequantizeLinear21(DequantizeLinear):
    attrs = {"axis": 1, "block_size": 0}


@register("DequantizeLinear", since=23)
class DequantizeLinear23(DequantizeLinear):
    attrs = {"axis": 1, "block_size": 0, "output_dtype": 0}
