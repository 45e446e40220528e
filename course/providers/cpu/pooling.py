"""AveragePool and MaxPool as one strided view per kernel tap, reduced in place (numpy, no job).

The reference takes every window at once (an (N, C, *out, T) copy, then a reduction over T); on
DenseNet's 2x2 transitions that copy costs about five times the arithmetic. Here each tap is a
strided view of the padded input folded into one accumulator. A node's kernel is prepared
(``PoolKernel``): the geometry -- output shape, padding, the index of every tap's view and
AveragePool's count of cells per window -- is worked out from the attributes once per input
shape, so a call on a digits-sized input is a handful of numpy calls and no attribute parsing.
The compiled 3x3 MaxPool of maxpool.py is quicker still where it applies (``MaxPoolKernel``).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from course.ops import _window as win
from course.ops.pool import pool_setup


class PoolGeometry(NamedTuple):
    """What a pooling node needs for one input shape: everything but the data."""

    out_shape: tuple  # (N, C, *out)
    padded_shape: Optional[tuple]  # the padded input's shape, None when there is no padding
    inside: Optional[tuple]  # where the input sits in the padded one (an index), or None
    taps: tuple  # per kernel tap in row-major order, the index of its view of the padded input
    count: Optional[np.ndarray]  # AveragePool: cells of each window that count (read-only)


def _tap_index(tap, out, strides, dilations) -> tuple:
    """The index of ``xp`` (N, C, *padded) holding kernel tap ``tap`` for every output position."""
    index = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, o, s, d in zip(tap, out, strides, dilations))
    return (slice(None), slice(None)) + index


def geometry(x: np.ndarray, attrs: dict, include_pad: Optional[bool] = None) -> PoolGeometry:
    """The geometry of a pool over ``x`` by the reference's rules (course/ops/pool.py's
    ``pool_setup``, whose errors it raises); ``include_pad`` (AveragePool's count_include_pad)
    None for MaxPool, which has no count."""
    k, s, d, out, pb, pe, over = pool_setup(x, attrs.get("kernel_shape"), attrs.get("strides"), attrs.get("pads"),
                                            attrs.get("dilations"), attrs.get("auto_pad", "NOTSET"),
                                            attrs.get("ceil_mode", 0))
    end = [e + o for e, o in zip(pe, over)]
    padded = tuple(x.shape[:2]) + tuple(n + b + e for n, b, e in zip(x.shape[2:], pb, end))
    taps = tuple(_tap_index(t, out, s, d) for t in np.ndindex(*k))
    count = None
    if include_pad is not None:
        mask = win.pad_input(np.ones((1, 1) + tuple(x.shape[2:])), pb, pe, 1.0 if include_pad else 0.0)
        mask = win.pad_input(mask, [0] * len(k), over, 0.0)
        count = sum(mask[t] for t in taps)[0, 0].astype(x.dtype)
        count.flags.writeable = False
    if not any(pb) and not any(end):
        return PoolGeometry(tuple(x.shape[:2]) + tuple(out), None, None, taps, count)
    inside = (Ellipsis,) + tuple(slice(b, b + n) for b, n in zip(pb, x.shape[2:]))
    return PoolGeometry(tuple(x.shape[:2]) + tuple(out), padded, inside, taps, count)


def _destination(out, g: PoolGeometry, dtype) -> np.ndarray:
    """``out`` (destination passing) when it is a writable C-contiguous array of the result's
    shape and dtype, else a new array."""
    if (out is not None and out.shape == g.out_shape and out.dtype == dtype and out.flags.c_contiguous
            and out.flags.writeable):
        return out
    return np.empty(g.out_shape, dtype=dtype)


class PoolKernel:
    """One pooling node's kernel: ``kernel(x, out=None)``, its geometry kept for the last input
    shape and dtype (one (key, geometry) pair, replaced whole: safe when threads share it)."""

    include_pad: Optional[bool] = None  # AveragePool's count_include_pad; None for MaxPool
    fill = 0.0  # what the padding holds

    def __init__(self, attrs: dict):
        self.attrs = dict(attrs)
        self._last = None

    def prepared(self, x: np.ndarray) -> PoolGeometry:
        last = self._last
        if last is not None and last[0] == x.shape and last[1] == x.dtype:
            return last[2]
        g = geometry(x, self.attrs, self.include_pad)
        self._last = (x.shape, x.dtype, g)
        return g

    def padded(self, x: np.ndarray, g: PoolGeometry) -> np.ndarray:
        if g.padded_shape is None:
            return x
        xp = np.full(g.padded_shape, self.fill, dtype=x.dtype)
        xp[g.inside] = x
        return xp


def _fold(op, xp: np.ndarray, taps: list, dst: np.ndarray) -> np.ndarray:
    """``dst`` = the taps of ``xp`` folded with the ufunc ``op`` in order (one tap: a copy)."""
    if len(taps) == 1:
        np.copyto(dst, xp[taps[0]])
        return dst
    op(xp[taps[0]], xp[taps[1]], out=dst)
    for t in taps[2:]:
        op(dst, xp[t], out=dst)
    return dst


class AveragePoolKernel(PoolKernel):
    """AveragePool's definition (course/ops/pool.py), the taps summed in row-major order."""

    def __init__(self, attrs: dict):
        super().__init__(attrs)
        self.include_pad = bool(attrs.get("count_include_pad", 0))

    def __call__(self, x: np.ndarray, out=None) -> np.ndarray:
        g = self.prepared(x)
        xp = self.padded(x, g)
        total = _fold(np.add, xp, g.taps, _destination(out, g, x.dtype))
        total /= g.count
        return total


class MaxPoolKernel(PoolKernel):
    """MaxPool's first output (course/ops/maxpool.py): padding holds -inf, np.maximum's NaN rule."""

    fill = -np.inf

    def __call__(self, x: np.ndarray, out=None) -> np.ndarray:
        g = self.prepared(x)
        xp = self.padded(x, g)
        return _fold(np.maximum, xp, g.taps, _destination(out, g, x.dtype))


class MaxPool3x3Kernel:
    """The compiled 3x3 MaxPool of maxpool.py for one node, its Window kept for the last input
    shape; what that kernel does not take (another dtype or rank, an empty input, a window that
    does not fit: the reference raises) goes to ``reference``."""

    def __init__(self, attrs: dict, reference):
        from course.providers.cpu.maxpool import max_pool3x3

        self.attrs, self.reference, self.run = dict(attrs), reference, max_pool3x3
        self._last = None

    def __call__(self, x: np.ndarray, out=None) -> np.ndarray:
        last = self._last
        if last is None or last[0] != x.shape:
            last = self._last = (x.shape, self._window(x))
        if last[1] is None or x.dtype != np.float32:
            return self.reference(x)
        return self.run(x, last[1], out)

    def _window(self, x: np.ndarray):
        from course.providers.cpu.geometry import window_of

        if x.ndim != 4 or x.size == 0:
            return None
        w = window_of(x.shape[2:], (3, 3), self.attrs, ceil=self.attrs.get("ceil_mode", 0))
        return None if min(w.out) < 1 else w


def average_pool(x, auto_pad="NOTSET", kernel_shape=None, pads=None, strides=None, count_include_pad=0,
                 ceil_mode=0, dilations=None, out=None) -> np.ndarray:
    """One call of AveragePool with these attributes (a kernel prepared for this call alone)."""
    return AveragePoolKernel(dict(auto_pad=auto_pad, kernel_shape=kernel_shape, pads=pads, strides=strides,
                                  count_include_pad=count_include_pad, ceil_mode=ceil_mode,
                                  dilations=dilations))(x, out)


def max_pool(x, auto_pad="NOTSET", kernel_shape=None, pads=None, strides=None, storage_order=0,
             ceil_mode=0, dilations=None, _num_outputs=1, out=None) -> np.ndarray:
    """One call of MaxPool's first output with these attributes (a kernel prepared for it alone)."""
    return MaxPoolKernel(dict(auto_pad=auto_pad, kernel_shape=kernel_shape, pads=pads, strides=strides,
                              ceil_mode=ceil_mode, dilations=dilations))(x, out)
