"""LRN: y = x / (bias + alpha / size * sum of x^2 over the ``size`` nearest channels) ^ beta."""
from __future__ import annotations

import numpy as np

from course.errors import OpAttributeError, ShapeError
from course.ops.base import REQUIRED, InferContext, Op
from course.ops.registry import register


@register("LRN", since=1)
class LRN(Op):
    attrs = {"alpha": 1e-4, "beta": 0.75, "bias": 1.0, "size": REQUIRED}

    def infer_shape(self, ctx: InferContext):
        if not isinstance(ctx.attrs["size"], int) or ctx.attrs["size"] < 1:
            raise OpAttributeError(f"size must be a positive int (channels in the window), got {ctx.attrs['size']!r}")
        x = ctx.shape(0)
        if x is not None and len(x) < 3:
            raise ShapeError(f"X has rank {len(x)}; LRN needs (N, C, spatial...)")
        return [x]

    def compute(self, x, alpha=1e-4, beta=0.75, bias=1.0, size=1):
        c = x.shape[1]
        lo, hi = (size - 1) // 2, size // 2  # channels c - lo .. c + hi (ONNX's floor/ceil split)
        sq = np.square(x)
        # Windowed channel sum as a difference of prefix sums over a zero-padded channel axis.
        cum = np.cumsum(np.pad(sq, [(0, 0), (lo + 1, hi)] + [(0, 0)] * (x.ndim - 2)), axis=1, dtype=x.dtype)
        window = cum[:, size:size + c] - cum[:, :c]
        scale = x.dtype.type(bias) + x.dtype.type(alpha / size) * window
        return (x / scale ** x.dtype.type(beta)).astype(x.dtype, copy=False)
