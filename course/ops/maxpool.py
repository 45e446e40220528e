"""MaxPool with its optional Indices output (flat index into X, row- or column-major).

Each window of the input, padded with the dtype's lowest value, reduced by max; the index is
that of the window's first maximum, turned back into a position in X."""
from __future__ import annotations

import numpy as np

from course.ops.pool import _Pool, pool_setup, pooling_windows
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


@register("MaxPool", since=1)
class MaxPool(_Pool):
    wants_num_outputs = True

    def infer_dtype(self, ctx):
        return [ctx.dtype(0)]  # opsets 1-7 have no Indices output

    def compute(self, x, auto_pad="NOTSET", kernel_shape=None, pads=None, strides=None,
                storage_order=0, ceil_mode=0, dilations=None, _num_outputs=1, out=None):
        k, s, d, dims, pb, pe, over = pool_setup(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode)
        end = [e + o for e, o in zip(pe, over)]
        cells = pooling_windows(x, pb, end, k, s, d, dims, _lowest(x.dtype))  # (N, C, *dims, taps)
        y = cells.max(axis=-1, out=out)  # out: where to write Y (destination passing), or None
        if _num_outputs == 1:
            return y
        best = cells.argmax(axis=-1)  # the first maximum wins, as in onnxruntime
        return y, _indices(x, best, k, s, d, dims, pb, storage_order)


@register("MaxPool", since=8)
class MaxPool8(MaxPool):
    num_outputs = (1, 2)
    attrs = {**_Pool.attrs, "storage_order": 0}

    def infer_dtype(self, ctx):
        return [ctx.dtype(0), np.dtype(np.int64)]


@register("MaxPool", since=10)
class MaxPool10(MaxPool8):
    attrs = {**MaxPool8.attrs, "ceil_mode": 0, "dilations": None}
