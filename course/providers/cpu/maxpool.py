"""MaxPool with a 3x3 window (ResNet's, SqueezeNet's, Inception's), float32, without Indices.

Walked like the NCHW depthwise kernel: each plane split by stride phase into a buffer whose
padding holds -inf (so a padding cell never wins), every tap a contiguous run, results on an
(OH, PW) grid then cropped; planes split between the threads. Taps are taken in row-major order
with np.maximum's rule (a NaN wins), so the result is exactly the reference's.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from course.providers.cpu.geometry import Window, phases3x3
from course.providers.cpu.intrinsics import f32_ptr, i64_ptr
from course.providers.cpu.job import MAX_POOL, address, floats, layout, make_job, split
from course.providers.cpu.planes import crop, fill_plane, grid_size, tap_runs

POOL3 = layout("MaxPoolArgs", "n c h w oh ow nfill sh sw ph pw step x fill taps y")


@njit(inline="always")
def _max(a, b):
    # np.maximum's rule: a NaN on either side wins; otherwise the larger (of +0.0 and -0.0,
    # either may come back: numpy's own loops differ there).
    return a if a >= b or a != a else b


@njit(cache=True, nogil=True)
def max3x3_planes(x, fill, taps, sh, sw, ph, pw, lowest, y, k0, k1):
    """Planes k0..k1 (of N*C) of y (N, C, OH, OW) = the 3x3 max pool of x."""
    n, c, oh, ow = y.shape
    size = grid_size(oh, pw)
    buf = np.full((fill.shape[0], ph * pw + size - oh * pw), lowest, dtype=x.dtype)
    grid = np.empty(size, dtype=y.dtype)
    for k in range(k0, k1):
        i, ch = k // c, k % c
        fill_plane(buf, x[i, ch], fill, sh, sw, pw)
        t0, t1, t2, t3, t4, t5, t6, t7, t8 = tap_runs(buf, taps, size)
        for j in range(size):
            v = _max(t0[j], t1[j])
            v = _max(v, t2[j])
            v = _max(v, t3[j])
            v = _max(v, t4[j])
            v = _max(v, t5[j])
            v = _max(v, t6[j])
            v = _max(v, t7[j])
            grid[j] = _max(v, t8[j])
        crop(grid, y[i, ch], pw)


@njit(cache=True, nogil=True)
def max_pool_chunk(args, fl, i):
    """Chunk i of a MAX_POOL job: a range of planes."""
    n, c, step = args[POOL3.n], args[POOL3.c], args[POOL3.step]
    k0 = i * step
    k1 = min(n * c, k0 + step)
    max3x3_planes(carray(f32_ptr(args[POOL3.x]), (n, c, args[POOL3.h], args[POOL3.w])),
                  carray(i64_ptr(args[POOL3.fill]), (args[POOL3.nfill], 6)), carray(i64_ptr(args[POOL3.taps]), (9, 2)),
                  args[POOL3.sh], args[POOL3.sw], args[POOL3.ph], args[POOL3.pw], np.float32(-np.inf),
                  carray(f32_ptr(args[POOL3.y]), (n, c, args[POOL3.oh], args[POOL3.ow])), k0, k1)


def max_pool3x3(x: np.ndarray, win: Window, out=None) -> np.ndarray:
    """MaxPool with a 3x3 window of x (N, C, H, W) float32 (any layout) to win.out; ``win`` may
    come from ceil_mode: a window hanging past the padding sees only -inf there. Written into
    ``out`` when that is a C-contiguous float32 array of the output's shape."""
    x = np.ascontiguousarray(x)
    n, c = x.shape[:2]
    shape = (n, c) + tuple(win.out)
    fits = out is not None and out.shape == shape and out.dtype == np.float32 and out.flags.c_contiguous
    y = out if fits else np.empty(shape, dtype=np.float32)
    if y.size == 0:
        return y
    (ph, pw), fill, taps = phases3x3(x.shape[2:], win)
    step, chunks = split(n * c)
    make_job(POOL3, MAX_POOL, floats(), chunks, (x, fill, taps, y),
             n=n, c=c, h=x.shape[2], w=x.shape[3], oh=win.out[0], ow=win.out[1], nfill=fill.shape[0],
             sh=win.strides[0], sw=win.strides[1], ph=ph, pw=pw, step=step, x=address(x), fill=address(fill),
             taps=address(taps), y=address(y)).post()
    return y
