"""Pooling kernels of the CUDA provider (``kernels/`` has none): 2-D MaxPool / AveragePool with
one thread per output, and the global poolings as a per-row shared-memory tree reduction (the
scheme of ``kernels/reduce.py``, one block per (n, c) plane instead of one sum for the array).

The window geometry (output size, begin/end pads, ceil_mode) comes from the reference's
``course.ops._window`` at run time, so the kernels only walk taps: a tap in the padding is
skipped (a max ignores it; a mean counts it when ``count_include_pad``, but never a ceil_mode
overhang past the end padding, as the reference does).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numba import cuda, float32

from course.ops import _window
from kernels.launch import ceil_div

THREADS = 128  # per block, both kernels; a power of two: the row tree halves it


class Window(NamedTuple):
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    top: int
    left: int
    bottom: int
    right: int


@cuda.jit
def pool2d_kernel(y, x, win, average, count_include_pad):
    """y[n, c, oh, ow] = max or mean of the window's taps of x (NCHW); one thread per output."""
    i = cuda.grid(1)
    if i < y.shape[0] * y.shape[1] * y.shape[2] * y.shape[3]:
        ow = i % y.shape[3]
        oh = (i // y.shape[3]) % y.shape[2]
        c = (i // (y.shape[3] * y.shape[2])) % y.shape[1]
        n = i // (y.shape[3] * y.shape[2] * y.shape[1])
        height, width = x.shape[2], x.shape[3]
        acc = float32(0.0) if average else float32(-math.inf)
        count = 0
        for a in range(win.kh):
            ih = oh * win.sh - win.top + a * win.dh
            for b in range(win.kw):
                iw = ow * win.sw - win.left + b * win.dw
                if 0 <= ih < height and 0 <= iw < width:
                    v = x[n, c, ih, iw]
                    acc = acc + v if average else max(acc, v)
                    count += 1
                elif count_include_pad and -win.top <= ih < height + win.bottom and -win.left <= iw < width + win.right:
                    count += 1
        if average and count > 0:
            acc = acc / float32(count)
        y[n, c, oh, ow] = acc


@cuda.jit
def row_reduce_kernel(out, x, average):
    """out[r] = mean (average) or max of x[r, :]; one block of THREADS threads per row."""
    buf = cuda.shared.array(THREADS, float32)
    r = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    acc = float32(0.0) if average else float32(-math.inf)
    for j in range(tid, x.shape[1], cuda.blockDim.x):
        acc = acc + x[r, j] if average else max(acc, x[r, j])
    buf[tid] = acc
    cuda.syncthreads()  # every thread's partial is in buf before the tree reads a neighbour's
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            buf[tid] = buf[tid] + buf[tid + s] if average else max(buf[tid], buf[tid + s])
        cuda.syncthreads()  # this level is written before the next (smaller) level reads it
        s //= 2
    if tid == 0:
        out[r] = buf[0] / float32(x.shape[1]) if average else buf[0]


def window_of(shape, attrs) -> tuple[Window, tuple[int, int]]:
    """The 2-D window and output size for input ``shape`` (N, C, H, W) under the pool's attrs."""
    k, s, p, d = _window.spatial_attrs(2, attrs["kernel_shape"], attrs.get("strides"), attrs.get("pads"),
                                       attrs.get("dilations"), attrs["auto_pad"])
    out, pb, pe = _window.geometry(shape[2:], k, s, p, d, attrs["auto_pad"], bool(attrs.get("ceil_mode", 0)))
    return Window(k[0], k[1], s[0], s[1], d[0], d[1], pb[0], pb[1], pe[0], pe[1]), (out[0], out[1])


def pool2d(state, x, attrs, average: bool):
    win, (oh, ow) = window_of(tuple(x.shape), attrs)
    y = state.empty((x.shape[0], x.shape[1], oh, ow))
    n = x.shape[0] * x.shape[1] * oh * ow
    if n:
        # Launch configuration: one thread per output element, THREADS per block.
        state.launch(pool2d_kernel, ceil_div(n, THREADS), THREADS, y, x, win, average,
                     bool(attrs.get("count_include_pad", 0)))
    return y


def global_pool(state, x, average: bool):
    rows, cols = x.shape[0] * x.shape[1], int(np.prod(x.shape[2:]))
    y = state.empty((rows,))
    if rows and cols:
        # Launch configuration: one block per (n, c) plane, THREADS threads stride along it.
        state.launch(row_reduce_kernel, rows, THREADS, y, x.reshape((rows, cols)), average)
    return y.reshape(tuple(x.shape[:2]) + (1,) * (len(x.shape) - 2))


def make_pool(state, spec):
    average = spec.op_type == "AveragePool"
    return functools.partial(pool2d, state, attrs=dict(spec.attrs), average=average)


def make_global_pool(state, spec):
    return functools.partial(global_pool, state, average=spec.op_type == "GlobalAveragePool")
