"""Split into parts along an axis: sizes from the 'split' attribute (opsets 2-12) or input (13+),
equal parts otherwise (opset 18 names the count with num_outputs and allows a smaller last part).
"""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops._common import as_ints, norm_axis
from course.ops.base import InferContext, Op
from course.ops.registry import register


def split_sizes(length, parts, sizes, uneven_last=False):
    if sizes is not None:
        if sum(sizes) != length or min(sizes, default=0) < 0:
            raise ShapeError(f"split sizes {list(sizes)} do not add up to the axis length {length}")
        return list(sizes)
    if uneven_last:
        step = -(-length // parts)
        return [min(step, max(0, length - i * step)) for i in range(parts)]
    if length % parts:
        raise ShapeError(f"axis length {length} does not split into {parts} equal parts")
    return [length // parts] * parts


@register("Split", since=2)
class Split(Op):
    attrs = {"axis": 0, "split": None}
    num_outputs = (1, None)
    wants_num_outputs = True

    def _sizes(self, attrs, const):
        return attrs.get("split")

    def _parts(self, attrs, n_out):
        return n_out

    def infer_dtype(self, ctx: InferContext):
        return [ctx.dtype(0)] * ctx.num_outputs

    def infer_shape(self, ctx: InferContext):
        n_out = ctx.num_outputs
        x = ctx.shape(0)
        if x is None:
            return [None] * n_out
        a = norm_axis(ctx.attrs["axis"], len(x))
        sizes = self._sizes(ctx.attrs, ctx.const(1))
        if len(ctx.inputs) > 1 and ctx.inputs[1] is not None and sizes is None:  # sizes known at run time
            return [tuple(x[:a]) + (None,) + tuple(x[a + 1:])] * n_out
        if not isinstance(x[a], int):
            return [x[:a] + (None,) + x[a + 1:]] * n_out
        parts = split_sizes(x[a], self._parts(ctx.attrs, n_out), sizes, uneven_last=self.since >= 18)
        return [tuple(x[:a]) + (p,) + tuple(x[a + 1:]) for p in parts]

    def compute(self, x, split_in=None, axis=0, split=None, num_outputs=None, _num_outputs=1):
        a = norm_axis(axis, x.ndim)
        sizes = split if split is not None else (None if split_in is None else as_ints(split_in))
        parts = num_outputs or _num_outputs
        cuts = np.cumsum(split_sizes(x.shape[a], parts, sizes, uneven_last=num_outputs is not None))[:-1]
        return tuple(np.split(x, cuts, axis=a))


@register("Split", since=13)
class Split13(Split):
    attrs = {"axis": 0}
    num_inputs = (1, 2)

    def _sizes(self, attrs, const):
        return None if const is None else as_ints(const)


@register("Split", since=18)
class Split18(Split13):
    attrs = {"axis": 0, "num_outputs": None}

    def _parts(self, attrs, n_out):
        return attrs.get("num_outputs") or n_out

    def compute(self, x, split_in=None, axis=0, num_outputs=None, _num_outputs=1):
        if split_in is None and num_outputs is None:
            raise ShapeError("Split-18 needs either the 'split' input or the num_outputs attribute")
        return super().compute(x, split_in, axis=axis, num_outputs=num_outputs, _num_outputs=_num_outputs)
