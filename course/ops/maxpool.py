"""MaxPool with its optional Indices output (flat index into X, row- or column-major).

A float32 3x3 pool without Indices (ResNet's, SqueezeNet's, Inception's) runs the compiled
kernel of _fused_kernels.py (fk.max_pool3x3: plane by plane in cache, planes shared with the
helper thread during a run; 64x112x112 -> 56x56: ~190 vs ~1000 us); other 2-D pools take the
stride phases of _window.flat_taps and one np.maximum per tap, the rest strided views."""
from __future__ import annotations

import numpy as np

from course.ops import _window as win
from course.ops.pool import _Pool, pool_setup
from course.ops.registry import register


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _indices(x, best_tap, k, s, d, out, pb, storage_order):
    """Flat input index of each window's maximum, from the tap that won and the window origin."""
    n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    taps = np.array(list(np.ndindex(*k)), dtype=np.int64)  # (T, nsp)
    grids = np.meshgrid(*[np.arange(o, dtype=np.int64) for o in out], indexing="ij")
    pos = [grids[a] * s[a] - pb[a] + taps[best_tap, a] * d[a] for a in range(len(k))]
    if storage_order:  # column-major over the spatial axes
        flat, mul = pos[0], 1
        for a in range(1, len(k)):
            mul *= spatial[a - 1]
            flat = flat + pos[a] * mul
    else:
        flat = np.ravel_multi_index(pos, spatial, mode="clip") if len(k) else pos
    plane = int(np.prod(spatial))
    base = (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * len(k))
    return base + flat


def _max_flat(x, k, s, d, pb, out):
    """2-D MaxPool without Indices through _window.flat_taps: each tap is a contiguous slice of a
    stride phase of the (lowest-value) padded input, so every max runs over contiguous memory
    instead of a stride-2 view (ResNet's 3x3/2 pool: ~4x faster)."""
    taps, width = win.flat_taps(x, k, s, d, pb, out, value=_lowest(x.dtype))
    y = np.array(taps[0], copy=True)
    for view in taps[1:]:
        np.maximum(y, view, out=y)
    y = y.reshape(x.shape[:2] + (out[0], width))
    return y if width == out[1] else np.ascontiguousarray(y[..., :out[1]])


@register("MaxPool", since=1)
class MaxPool(_Pool):
    wants_num_outputs = True

    def infer_dtype(self, ctx):
        return [ctx.dtype(0)]  # opsets 1-7 have no Indices output

    def compute(self, x, auto_pad="NOTSET", kernel_shape=None, pads=None, strides=None,
                storage_order=0, ceil_mode=0, dilations=None, _num_outputs=1):
        k, s, d, out, pb, pe, over = pool_setup(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode)
        if _num_outputs == 1 and x.ndim == 4 and x.size and all(out):
            if x.dtype == np.float32 and tuple(k) == (3, 3):
                from course.ops import _fused_kernels as fk  # imports numba: only once such a pool runs

                return fk.max_pool3x3(x, out, s, pb, d)
            return _max_flat(x, k, s, d, pb, out)
        xp = win.pad_input(x, pb, [e + o for e, o in zip(pe, over)], _lowest(x.dtype))
        taps = list(np.ndindex(*k))
        y = np.array(win.tap_view(xp, taps[0], out, s, d), copy=True)
        best = np.zeros(y.shape, dtype=np.int64) if _num_outputs > 1 else None
        for t, tap in enumerate(taps[1:], start=1):
            v = win.tap_view(xp, tap, out, s, d)
            if best is not None:
                best[v > y] = t  # strict: the first maximum wins, as in onnxruntime
            np.maximum(y, v, out=y)
        if best is None:
            return y
        return y, _indices(x, best, k, s, d, out, pb, storage_order)


@register("MaxPool", since=8)
class MaxPool8(MaxPool):
    num_outputs = (1, 2)
    attrs = {**_Pool.attrs, "storage_order": 0}

    def infer_dtype(self, ctx):
        return [ctx.dtype(0), np.dtype(np.int64)]


@register("MaxPool", since=10)
class MaxPool10(MaxPool8):
    attrs = {**MaxPool8.attrs, "ceil_mode": 0, "dilations": None}
