"""Slice: starts/ends/axes as attributes (opsets 1-9) or inputs with steps (opset 10+).

Out-of-range starts/ends are clamped as in numpy (ONNX uses the same rule, including for
negative steps), so each axis becomes one Python slice.
"""
from __future__ import annotations

from course.errors import ShapeError
from course.ops._common import as_ints, norm_axis
from course.ops.base import REQUIRED, InferContext, Op
from course.ops.registry import register


def slices(rank, starts, ends, axes=None, steps=None):
    """One Python slice per axis (full slices where the node does not touch the axis)."""
    axes = list(range(len(starts))) if axes is None else [norm_axis(a, rank, "axes value") for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes):
        raise ShapeError(f"starts/ends/axes/steps disagree: {starts}, {ends}, {axes}, {steps}")
    if 0 in steps:
        raise ShapeError("steps must not be 0")
    out = [slice(None)] * rank
    big = 2 ** 62  # INT64_MAX-style sentinels mean "to the end" and overflow Python slices safely
    for a, s, e, st in zip(axes, starts, ends, steps):
        out[a] = slice(max(min(s, big), -big), max(min(e, big), -big), st)
    return tuple(out)


def sliced_shape(shape, sl):
    return tuple(len(range(*s.indices(d))) if isinstance(d, int) else (d if s == slice(None) else None)
                 for d, s in zip(shape, sl))


@register("Slice", since=1)
class Slice(Op):
    attrs = {"axes": None, "ends": REQUIRED, "starts": REQUIRED}

    def _spec(self, ctx: InferContext):
        a = ctx.attrs
        return a["starts"], a["ends"], a["axes"], None

    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        spec = self._spec(ctx)
        if x is None or spec is None:
            return [None if x is None else (None,) * len(x)]
        return [sliced_shape(x, slices(len(x), *spec))]

    def compute(self, x, starts=None, ends=None, axes=None):
        return x[slices(x.ndim, starts, ends, axes)]


@register("Slice", since=10)
class Slice10(Slice):
    attrs = {}
    num_inputs = (3, 5)

    def _spec(self, ctx: InferContext):
        vals = [ctx.const(i) for i in range(1, 5)]
        given = [i < len(ctx.inputs) and ctx.inputs[i] is not None for i in range(1, 5)]
        if any(g and v is None for g, v in zip(given, vals)):
            return None  # a non-constant start/end/axis/step
        return tuple(None if v is None else as_ints(v) for v in vals)

    def compute(self, x, starts, ends, axes=None, steps=None):
        return x[slices(x.ndim, as_ints(starts), as_ints(ends),
                        None if axes is None else as_ints(axes), None if steps is None else as_ints(steps))]
