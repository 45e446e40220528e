"""Pad (constant / reflect / edge / wrap): pads as an attribute (opsets 2-10) or input (11+).

``pads`` lists all begins then all ends; negative pads crop. Opset 18 adds an ``axes`` input
naming which axes the pads refer to.
"""
from __future__ import annotations

import numpy as np

from course.errors import OpAttributeError, ShapeError
from course.ops._common import as_ints, norm_axis
from course.ops.base import REQUIRED, InferContext, Op
from course.ops.registry import register

_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def full_pads(rank, pads, axes=None):
    """(begin, end) per axis from ONNX's [b0, b1, ..., e0, e1, ...] list."""
    axes = list(range(rank)) if axes is None else [norm_axis(a, rank, "axes value") for a in axes]
    if len(pads) != 2 * len(axes):
        raise ShapeError(f"pads has {len(pads)} values, expected {2 * len(axes)}")
    out = [(0, 0)] * rank
    for i, a in enumerate(axes):
        out[a] = (pads[i], pads[i + len(axes)])
    return out


def _check_cropped_sizes(shape, pads):
    """Negative pads crop, but never past the start of the axis."""
    for i, (d, (b, e)) in enumerate(zip(shape, pads)):
        if isinstance(d, int) and d + b + e < 0:
            raise ShapeError(f"pads ({b}, {e}) on axis {i} of size {d} give a negative size {d + b + e}")


def pad_array(x, pads, mode, value):
    if mode not in _MODES:
        raise OpAttributeError(f"mode {mode!r} is not one of {sorted(_MODES)}")
    _check_cropped_sizes(x.shape, pads)
    crop = tuple(slice(-min(b, 0), x.shape[i] + min(e, 0)) for i, (b, e) in enumerate(pads))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in pads]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=x.dtype.type(value))
    return np.pad(x, widths, mode=_MODES[mode])


@register("Pad", since=2)
class Pad(Op):
    attrs = {"mode": "constant", "pads": REQUIRED, "value": 0.0}

    def _pads(self, ctx: InferContext, rank):
        return full_pads(rank, ctx.attrs["pads"])

    def infer_shape(self, ctx: InferContext):
        x = ctx.shape(0)
        if x is None:
            return [None]
        p = self._pads(ctx, len(x))
        if p is None:
            return [(None,) * len(x)]
        _check_cropped_sizes(x, p)
        return [tuple(d + b + e if isinstance(d, int) else (d if b == e == 0 else None) for d, (b, e) in zip(x, p))]

    def compute(self, x, mode="constant", pads=None, value=0.0):
        return pad_array(x, full_pads(x.ndim, pads), mode, value)


@register("Pad", since=11)
class Pad11(Pad):
    attrs = {"mode": "constant"}
    num_inputs = (2, 3)

    def _pads(self, ctx: InferContext, rank):
        pads, axes = ctx.const(1), ctx.const(3)
        has_axes = len(ctx.inputs) > 3 and ctx.inputs[3] is not None
        if pads is None or (has_axes and axes is None):
            return None
        return full_pads(rank, as_ints(pads), None if axes is None else as_ints(axes))

    def compute(self, x, pads, constant_value=None, axes=None, mode="constant"):
        value = 0 if constant_value is None or constant_value.size == 0 else constant_value.reshape(-1)[0]
        return pad_array(x, full_pads(x.ndim, as_ints(pads), None if axes is None else as_ints(axes)), mode, value)


@register("Pad", since=18)
class Pad18(Pad11):
    num_inputs = (2, 4)  # adds the optional axes input
