"""Squeeze / Unsqueeze: axes as an attribute (opsets 1-12) or as an input (opset 13+)."""
from __future__ import annotations

from course.errors import ShapeError
from course.ops._common import as_ints, norm_axis
from course.ops.base import REQUIRED, InferContext, Op
from course.ops.registry import register


def squeeze_shape(shape, axes):
    """Shape after removing ``axes`` (all size-1 dims when axes is None)."""
    if axes is None:
        if any(not isinstance(d, int) for d in shape):
            return None  # which symbolic dims are 1 is unknown
        return tuple(d for d in shape if d != 1)
    ax = {norm_axis(a, len(shape), "axes value") for a in axes}
    for a in ax:
        if isinstance(shape[a], int) and shape[a] != 1:
            raise ShapeError(f"cannot squeeze axis {a} of size {shape[a]}")
    return tuple(d for i, d in enumerate(shape) if i not in ax)


def unsqueeze_shape(shape, axes):
    rank = len(shape) + len(axes)
    ax = sorted(norm_axis(a, rank, "axes value") for a in axes)
    if len(set(ax)) != len(ax):
        raise ShapeError(f"axes {list(axes)} repeat an axis")
    out, it = [], iter(shape)
    for i in range(rank):
        out.append(1 if i in ax else next(it))
    return tuple(out)


class _AxesOp(Op):
    """Shared plumbing: where the axes come from depends on the opset."""

    fn = None

    def axes(self, attrs, const):
        return attrs.get("axes") if "axes" in self.attrs else (None if const is None else as_ints(const))

    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        axes = self.axes(ctx.attrs, ctx.const(1))
        if x is None or (axes is None and (len(ctx.inputs) > 1 and ctx.inputs[1] is not None)):
            return [None]
        return [type(self).fn(x, axes)]

    def compute(self, x, axes_in=None, axes=None):
        ax = axes if axes is not None else (None if axes_in is None else as_ints(axes_in))
        return x.reshape(type(self).fn(x.shape, ax))


@register("Squeeze", since=1)
class Squeeze(_AxesOp):
    attrs = {"axes": None}
    fn = staticmethod(squeeze_shape)


@register("Squeeze", since=13)
class Squeeze13(_AxesOp):
    num_inputs = (1, 2)
    fn = staticmethod(squeeze_shape)


@register("Unsqueeze", since=1)
class Unsqueeze(_AxesOp):
    attrs = {"axes": REQUIRED}
    fn = staticmethod(unsqueeze_shape)


@register("Unsqueeze", since=13)
class Unsqueeze13(_AxesOp):
    num_inputs = (2, 2)
    fn = staticmethod(unsqueeze_shape)
