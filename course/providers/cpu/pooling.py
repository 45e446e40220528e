"""AveragePool and MaxPool as one strided view per kernel tap, reduced in place (numpy, no job).

The reference takes every window at once (an (N, C, *out, T) copy, then a reduction over T); on
DenseNet's 2x2 transitions that copy costs about five times the arithmetic. Here each tap is a
strided view of the padded input folded into one accumulator, and AveragePool's count of cells
per window (which depends only on the geometry) is made once per input shape. The compiled 3x3
MaxPool of maxpool.py is quicker still where it applies.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from course.ops import _window as win
from course.ops.pool import pool_setup


def _tap(xp: np.ndarray, tap, out, strides, dilations) -> np.ndarray:
    """The view of ``xp`` (N, C, *padded) holding kernel tap ``tap`` for every output position."""
    index = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, o, s, d in zip(tap, out, strides, dilations))
    return xp[(slice(None), slice(None)) + index]


@lru_cache(maxsize=64)
def _counts(spatial, dtype, kernel, strides, dilations, out, pb, pe, over, include_pad) -> np.ndarray:
    """Cells of each window that count (real input, plus explicit padding with include_pad);
    read-only, shared by every call with this geometry."""
    mask = win.pad_input(np.ones((1, 1) + spatial), pb, pe, 1.0 if include_pad else 0.0)
    mask = win.pad_input(mask, [0] * len(kernel), over, 0.0)
    count = sum(_tap(mask, t, out, strides, dilations) for t in np.ndindex(*kernel))[0, 0].astype(dtype)
    count.flags.writeable = False
    return count


def first_tap(tap: np.ndarray, out) -> np.ndarray:
    """The accumulator, holding the first tap: ``out`` (destination passing) when it is a
    C-contiguous array of the result's shape and dtype, else a new array."""
    if out is not None and out.shape == tap.shape and out.dtype == tap.dtype and out.flags.c_contiguous:
        np.copyto(out, tap)
        return out
    return np.array(tap, copy=True)


def average_pool(x, auto_pad="NOTSET", kernel_shape=None, pads=None, strides=None, count_include_pad=0,
                 ceil_mode=0, dilations=None, out=None) -> np.ndarray:
    """AveragePool's definition (course/ops/pool.py), the taps summed in row-major order (into
    ``out`` when given)."""
    k, s, d, out_shape, pb, pe, over = pool_setup(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode)
    xp = win.pad_input(x, pb, [e + o for e, o in zip(pe, over)])
    taps = list(np.ndindex(*k))
    total = first_tap(_tap(xp, taps[0], out_shape, s, d), out)
    for t in taps[1:]:
        total += _tap(xp, t, out_shape, s, d)
    count = _counts(tuple(x.shape[2:]), x.dtype, tuple(k), tuple(s), tuple(d), tuple(out_shape), tuple(pb),
                    tuple(pe), tuple(over), bool(count_include_pad))
    total /= count
    return total


def max_pool(x, auto_pad="NOTSET", kernel_shape=None, pads=None, strides=None, storage_order=0,
             ceil_mode=0, dilations=None, _num_outputs=1, out=None) -> np.ndarray:
    """MaxPool's first output (course/ops/maxpool.py): padding holds -inf, np.maximum's NaN rule
    (into ``out`` when given)."""
    k, s, d, out_shape, pb, pe, over = pool_setup(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode)
    xp = win.pad_input(x, pb, [e + o for e, o in zip(pe, over)], -np.inf)
    taps = list(np.ndindex(*k))
    best = first_tap(_tap(xp, taps[0], out_shape, s, d), out)
    for t in taps[1:]:
        np.maximum(best, _tap(xp, t, out_shape, s, d), out=best)
    return best
