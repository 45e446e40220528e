"""MaxPool and AveragePool (N-d, pads, auto_pad, dilations, ceil_mode, count_include_pad).

The windows are one strided view of the padded input (_window.windows), reduced over their
taps. ceil_mode may add a last window that hangs past the end padding: the input is
padded a little further ("overhang") and those cells never count as elements of the window.
"""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops import _window as win
from course.ops._common import write_out
from course.ops.base import InferContext, Op
from course.ops.registry import register


def pool_setup(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode):
    """(k, s, d, out, pads_begin, pads_end, overhang) for a pooling window over x's spatial axes."""
    nsp = x.ndim - 2
    if nsp < 1 or len(kernel_shape) != nsp:
        raise ShapeError(f"X has shape {x.shape} but kernel_shape is {list(kernel_shape)}")
    k, s, p, d = win.spatial_attrs(nsp, kernel_shape, strides, pads, dilations, auto_pad)
    out, pb, pe = win.geometry(x.shape[2:], k, s, p, d, auto_pad, bool(ceil_mode))
    over = [max(0, (o - 1) * st + (kk - 1) * dd + 1 - (n + b + e))
            for o, st, kk, dd, n, b, e in zip(out, s, k, d, x.shape[2:], pb, pe)]
    return k, s, d, out, pb, pe, over


class _Pool(Op):
    attrs = {"auto_pad": "NOTSET", "kernel_shape": None, "pads": None, "strides": None}

    def infer_shape(self, ctx: InferContext):
        x, a = ctx.shape(0), ctx.attrs
        if x is None:
            return [None] * len(self.infer_dtype(ctx))
        ks = a.get("kernel_shape")
        if ks is None or len(ks) != len(x) - 2:
            raise ShapeError(f"kernel_shape {ks} does not fit input rank {len(x)}")
        k, s, p, d = win.spatial_attrs(len(ks), ks, a.get("strides"), a.get("pads"),
                                       a.get("dilations"), a["auto_pad"])
        out, _, _ = win.geometry(x[2:], k, s, p, d, a["auto_pad"], bool(a.get("ceil_mode", 0)))
        return [tuple(x[:2]) + tuple(out)] * len(self.infer_dtype(ctx))


def pooling_windows(x, pb, end, k, s, d, out, value=0):
    """(N, C, *out, T) copy of every window of x padded by ``value`` (T = taps, row-major)."""
    view = win.windows(win.pad_input(x, pb, end, value), k, s, d, out)
    return view.reshape(view.shape[:2 + len(k)] + (int(np.prod(k)),))


def _average(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode, count_include_pad):
    k, s, d, out, pb, pe, over = pool_setup(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode)
    end = [e + o for e, o in zip(pe, over)]
    total = pooling_windows(x, pb, end, k, s, d, out).sum(axis=-1, dtype=x.dtype)
    # How many cells of each window count: real input, plus explicit padding if asked.
    inside = np.ones((1, 1) + x.shape[2:], dtype=np.float64)
    mask = win.pad_input(inside, pb, pe, 1.0 if count_include_pad else 0.0)
    count = pooling_windows(mask, [0] * len(k), over, k, s, d, out).sum(axis=-1)[0, 0]
    return (total / count.astype(x.dtype)).astype(x.dtype, copy=False)


@register("AveragePool", since=7)
class AveragePool(_Pool):
    attrs = {**_Pool.attrs, "count_include_pad": 0}

    def compute(self, x, auto_pad="NOTSET", kernel_shape=None, pads=None, strides=None,
                count_include_pad=0, ceil_mode=0, dilations=None, out=None):
        return write_out(out, _average(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode,
                                       count_include_pad))


@register("AveragePool", since=10)
class AveragePool10(AveragePool):
    attrs = {**AveragePool.attrs, "ceil_mode": 0}


@register("AveragePool", since=19)
class AveragePool19(AveragePool):
    attrs = {**AveragePool10.attrs, "dilations": None}
