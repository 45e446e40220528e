"""The 3x3 depthwise convolution (group == C == M, MobileNet's), bias and activation fused into
its inner loop, in two layouts.

numpy's depthwise Conv makes a multiply and an add pass over the whole output per kernel tap (18
passes for 3x3), which is memory-bound; here each output element is finished in a register (nine
products, bias, activation, one store). NCHW (``depthwise_planes``): plane by plane through a
stride-phase buffer in cache (planes.py), planes split between the threads. Channels last
(``depthwise_pixels``, for an input a 1x1 convolution wrote channels last): one loop over the
channels per output pixel, so the SIMD lanes are full however small the plane; output rows split
between the threads. Both add the taps in row-major order, each product rounded then added (no
FMA contraction without fastmath), bias last: the same bits in either layout.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from course.providers.cpu.epilogue import activate, scalars
from course.providers.cpu.geometry import Window, channels_minor, phases3x3
from course.providers.cpu.intrinsics import f32_ptr, i64_ptr
from course.providers.cpu.job import DEPTHWISE, DEPTHWISE_NHWC, FLOATS, address, floats, layout, make_job, split
from course.providers.cpu.planes import crop, fill_plane, grid_size, tap_runs
from course.providers.cpu.weights import tap_major

DW = layout("DepthwiseArgs", "n c h w oh ow nfill sh sw ph pw has_bias act step x fill taps weight bias y")
DW_NHWC = layout("DepthwiseNhwcArgs", "n c h w oh ow sh sw pt pl has_bias act step x weight bias zero y")


@njit(cache=True, nogil=True)
def depthwise_planes(x, fill, taps, w, b, has_bias, sh, sw, ph, pw, act, lo, hi, alpha, y, k0, k1):
    """Planes k0..k1 (of N*C) of y (N, C, OH, OW) = act(depthwise3x3(x) + b). The buffer holds
    one plane's phases; its padding cells are zeroed once and never written, so they stay 0."""
    n, c, oh, ow = y.shape
    size = grid_size(oh, pw)
    buf = np.zeros((fill.shape[0], ph * pw + size - oh * pw), dtype=x.dtype)
    grid = np.empty(size, dtype=y.dtype)
    for k in range(k0, k1):
        i, ch = k // c, k % c
        fill_plane(buf, x[i, ch], fill, sh, sw, pw)
        w0, w1, w2 = w[ch, 0, 0, 0], w[ch, 0, 0, 1], w[ch, 0, 0, 2]
        w3, w4, w5 = w[ch, 0, 1, 0], w[ch, 0, 1, 1], w[ch, 0, 1, 2]
        w6, w7, w8 = w[ch, 0, 2, 0], w[ch, 0, 2, 1], w[ch, 0, 2, 2]
        bias = b[ch] if has_bias else w0  # unused without a bias
        t0, t1, t2, t3, t4, t5, t6, t7, t8 = tap_runs(buf, taps, size)
        for j in range(size):  # taps in row-major order
            v = t0[j] * w0
            v += t1[j] * w1
            v += t2[j] * w2
            v += t3[j] * w3
            v += t4[j] * w4
            v += t5[j] * w5
            v += t6[j] * w6
            v += t7[j] * w7
            v += t8[j] * w8
            if has_bias:
                v += bias
            grid[j] = activate(v, act, lo, hi, alpha)
        crop(grid, y[i, ch], pw)


@njit(inline="always")
def _vector(addr, n):
    return carray(f32_ptr(addr), (n,))


@njit(cache=True, nogil=True)
def depthwise_pixels(x, wt, b, has_bias, sh, sw, pt, pl, act, lo, hi, alpha, zero, y, r0, r1):
    """Output rows r0..r1 (of N*OH) of y (N, OH, OW, C) from x (N, H, W, C), channels last.
    Each output pixel: nine source vectors (an input pixel's C channels, or ``zero`` where the
    tap falls in the padding: it adds 0 * w there too), nine weight vectors wt[t], one output
    vector. Sources are arrays over raw addresses: views would update reference counts nine
    times per pixel, as costly as the arithmetic of a 144-channel pixel."""
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = wt[0], wt[1], wt[2], wt[3], wt[4], wt[5], wt[6], wt[7], wt[8]
    xa, za, ya = x.ctypes.data, zero.ctypes.data, y.ctypes.data
    pixel, row = c * 4, w * c * 4
    for rr in range(r0, r1):
        i, r = rr // oh, rr % oh
        top = r * sh - pt
        ok0, ok1, ok2 = 0 <= top < h, 0 <= top + 1 < h, 0 <= top + 2 < h
        base = xa + (i * h + top) * row
        for o in range(ow):
            left = o * sw - pl
            oka, okb, okc = 0 <= left < w, 0 <= left + 1 < w, 0 <= left + 2 < w
            p = base + left * pixel
            s0 = _vector(p if ok0 and oka else za, c)
            s1 = _vector(p + pixel if ok0 and okb else za, c)
            s2 = _vector(p + 2 * pixel if ok0 and okc else za, c)
            p += row
            s3 = _vector(p if ok1 and oka else za, c)
            s4 = _vector(p + pixel if ok1 and okb else za, c)
            s5 = _vector(p + 2 * pixel if ok1 and okc else za, c)
            p += row
            s6 = _vector(p if ok2 and oka else za, c)
            s7 = _vector(p + pixel if ok2 and okb else za, c)
            s8 = _vector(p + 2 * pixel if ok2 and okc else za, c)
            dst = _vector(ya + (rr * ow + o) * pixel, c)
            for ch in range(c):  # taps in row-major order, as depthwise_planes adds them
                v = s0[ch] * w0[ch]
                v += s1[ch] * w1[ch]
                v += s2[ch] * w2[ch]
                v += s3[ch] * w3[ch]
                v += s4[ch] * w4[ch]
                v += s5[ch] * w5[ch]
                v += s6[ch] * w6[ch]
                v += s7[ch] * w7[ch]
                v += s8[ch] * w8[ch]
                if has_bias:
                    v += b[ch]
                dst[ch] = activate(v, act, lo, hi, alpha)


@njit(cache=True, nogil=True)
def depthwise_chunk(args, fl, i):
    """Chunk i of a DEPTHWISE job: a range of planes."""
    n, c, oh, ow = args[DW.n], args[DW.c], args[DW.oh], args[DW.ow]
    step = args[DW.step]
    k0 = i * step
    k1 = min(n * c, k0 + step)
    depthwise_planes(carray(f32_ptr(args[DW.x]), (n, c, args[DW.h], args[DW.w])),
                     carray(i64_ptr(args[DW.fill]), (args[DW.nfill], 6)), carray(i64_ptr(args[DW.taps]), (9, 2)),
                     carray(f32_ptr(args[DW.weight]), (c, 1, 3, 3)),
                     carray(f32_ptr(args[DW.bias]), (c if args[DW.has_bias] else 0,)), args[DW.has_bias] != 0,
                     args[DW.sh], args[DW.sw], args[DW.ph], args[DW.pw], args[DW.act],
                     np.float32(fl[FLOATS.lo]), np.float32(fl[FLOATS.hi]), np.float32(fl[FLOATS.alpha]),
                     carray(f32_ptr(args[DW.y]), (n, c, oh, ow)), k0, k1)


@njit(cache=True, nogil=True)
def depthwise_nhwc_chunk(args, fl, i):
    """Chunk i of a DEPTHWISE_NHWC job: a range of output rows."""
    L = DW_NHWC
    n, c, oh, step = args[L.n], args[L.c], args[L.oh], args[L.step]
    r0 = i * step
    r1 = min(n * oh, r0 + step)
    depthwise_pixels(carray(f32_ptr(args[L.x]), (n, args[L.h], args[L.w], c)), carray(f32_ptr(args[L.weight]), (9, c)),
                     carray(f32_ptr(args[L.bias]), (c if args[L.has_bias] else 0,)), args[L.has_bias] != 0,
                     args[L.sh], args[L.sw], args[L.pt], args[L.pl], args[L.act],
                     np.float32(fl[FLOATS.lo]), np.float32(fl[FLOATS.hi]), np.float32(fl[FLOATS.alpha]),
                     carray(f32_ptr(args[L.zero]), (c,)), carray(f32_ptr(args[L.y]), (n, oh, args[L.ow], c)), r0, r1)


def depthwise_conv2d(x, w, b, win: Window, activation="Identity", params=(), out=None):
    """3x3 depthwise conv of x (N, C, H, W) float32 by w (C, 1, 3, 3), + b, then the activation;
    a channels-last x (undilated) gives a channels-last y, else y is contiguous NCHW: ``out``
    when that is given as a C-contiguous float32 array of y's shape."""
    if win.dilations == (1, 1) and channels_minor(x):
        return _depthwise_nhwc(x, w, b, win, activation, params)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    n, c = x.shape[:2]
    (oh, ow) = win.out
    y = out if _fits(out, (n, c, oh, ow)) else np.empty((n, c, oh, ow), dtype=np.float32)
    if y.size == 0:
        return y
    (ph, pw), fill, taps = phases3x3(x.shape[2:], win)
    code, lo, hi, alpha = scalars(activation, params)
    bias = np.ascontiguousarray(b, dtype=np.float32) if b is not None else y
    step, chunks = split(n * c)
    make_job(DW, DEPTHWISE, floats(lo=lo, hi=hi, alpha=alpha), chunks, (x, fill, taps, w, bias, y),
             n=n, c=c, h=x.shape[2], w=x.shape[3], oh=oh, ow=ow, nfill=fill.shape[0], sh=win.strides[0],
             sw=win.strides[1], ph=ph, pw=pw, has_bias=b is not None, act=code, step=step, x=address(x),
             fill=address(fill), taps=address(taps), weight=address(w), bias=address(bias),
             y=address(y)).post()
    return y


def _fits(out, shape) -> bool:
    return (out is not None and out.shape == shape and out.dtype == np.float32 and out.flags.c_contiguous
            and out.flags.writeable)


def _depthwise_nhwc(x, w, b, win: Window, activation, params):
    """Channels last in and out: y an (N, C, OH, OW) view of an (N, OH, OW, C) array."""
    n, c = x.shape[:2]
    wt = tap_major(w).reshape(9, c)  # (9, C): tap t's weight for every channel, contiguous
    y = np.empty((n,) + tuple(win.out) + (c,), dtype=np.float32)
    if y.size == 0:
        return y.transpose(0, 3, 1, 2)
    code, lo, hi, alpha = scalars(activation, params)
    bias = np.ascontiguousarray(b, dtype=np.float32) if b is not None else None
    xl = x.transpose(0, 2, 3, 1)
    zero = np.zeros(c, dtype=np.float32)
    rows = n * win.out[0]
    step = -(-rows // 2)  # rows hold whole vectors already: no alignment needed
    make_job(DW_NHWC, DEPTHWISE_NHWC, floats(lo=lo, hi=hi, alpha=alpha), -(-rows // step), (x, wt, bias, zero, y),
             n=n, c=c, h=xl.shape[1], w=xl.shape[2], oh=win.out[0], ow=win.out[1], sh=win.strides[0],
             sw=win.strides[1], pt=win.pads_begin[0], pl=win.pads_begin[1], has_bias=b is not None, act=code,
             step=step, x=address(xl), weight=address(wt),
             bias=address(bias if bias is not None else zero), zero=address(zero), y=address(y)).post()
    return y.transpose(0, 3, 1, 2)
