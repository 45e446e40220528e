"""A convolution as W (M, C*KH*KW) @ im2col(X), the im2col matrix made inside the job.

Two ways to split it between the threads (``axis``):

- by output pixels (1, with at least twice as many pixels as output channels): each thread takes
  bands of columns, and builds the im2col block of ``block`` columns in a buffer of its own,
  multiplies it at once while it is in cache, and runs the epilogue on that block of Y. The
  whole im2col matrix never exists.
- by output channels (0, few pixels: ResNet's 14x14 and 7x7 stages): the im2col matrix is made
  once in a shared buffer, in ``parts`` (channel ranges) that both threads claim on a counter of
  the job's own; each thread then multiplies a band of W's rows by all of it. A thread waits
  only for parts the other is making, so it never waits on one nobody took.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from course.providers.cpu import blas
from course.providers.cpu.epilogue import epilogue_block
from course.providers.cpu.intrinsics import add, claim, f32_ptr, i64_ptr, libc_yield, sgemm, wait_for
from course.providers.cpu.job import (ALIGN, F32, FLOATS, IM2COL_GEMM, SYNC_DONE, SYNC_WORDS, address, floats,
                                      layout, make_job, split)
from course.providers.cpu.planes import gather_at

BLOCK_BYTES = 512 * 1024  # a block of im2col columns and of Y: in L2 together
PARTS = 4  # channel ranges the shared im2col matrix is made in (axis 0)

IM2COL = layout("Im2colArgs", "blas ilp64 m k p weight x c h w kh kw sh sw dh dw pt pl ow y bias has_bias "
                              "z ldz has_z act step block axis col sync parts yield_fn")


@njit(inline="always")
def im2col_block(x, c0, c1, h, w, kh, kw, sh, sw, dh, dw, pt, pl, ow_, b0, b1, col):
    # Columns b0..b1 (output pixels, row-major) of the im2col matrix of one image x (C*H*W flat),
    # rows of channels c0..c1 only, into col (C*KH*KW rows of b1 - b0): row (c, i, j) holds
    # x[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw], 0 outside x. Each output row's stretch of a
    # tap is a strided run of one input row between two zero runs, whose bounds depend on the
    # output row and j only: worked out once for all c, i.
    nb = b1 - b0
    p = b0
    while p < b1:
        oh = p // ow_
        o0 = p - oh * ow_
        o1 = min(ow_, o0 + b1 - p)
        d0 = p - b0
        for j in range(kw):
            off = j * dw - pl  # iw = ow * sw + off, inside x for lo <= ow < hi
            lo = min(o1, max(o0, -(off // sw) if off < 0 else 0))
            hi = max(lo, min(o1, (w - 1 - off) // sw + 1))
            for c in range(c0, c1):
                for i in range(kh):
                    d = ((c * kh + i) * kw + j) * nb + d0
                    ih = oh * sh - pt + i * dh
                    if ih < 0 or ih >= h:
                        for q in range(o1 - o0):
                            col[np.uintp(d + q)] = 0.0
                        continue
                    for q in range(lo - o0):
                        col[np.uintp(d + q)] = 0.0
                    gather_at(col, d + lo - o0, x, (c * h + ih) * w + lo * sw + off, hi - lo, sw)
                    for q in range(hi - o0, o1 - o0):
                        col[np.uintp(d + q)] = 0.0
        p += o1 - o0


@njit(inline="always")
def _make_columns(args, x, c0, c1, b0, b1, col):
    L = IM2COL
    im2col_block(x, c0, c1, args[L.h], args[L.w], args[L.kh], args[L.kw], args[L.sh], args[L.sw], args[L.dh],
                 args[L.dw], args[L.pt], args[L.pl], args[L.ow], b0, b1, col)


@njit(inline="always")
def _epilogue_on(args, fl, r0, r1, c0, c1):
    # Y[r0:r1, c0:c1] = act(Y + bias + Z), when the job has an activation (act >= 0).
    L = IM2COL
    m, p = args[L.m], args[L.p]
    if args[L.act] >= 0:
        epilogue_block(carray(f32_ptr(args[L.y]), (m * p,)), p, r0, r1, c0, c1,
                       carray(f32_ptr(args[L.bias]), (m if args[L.has_bias] else 0,)), 1 if args[L.has_bias] else 0,
                       carray(f32_ptr(args[L.z]), ((m - 1) * args[L.ldz] + p if args[L.has_z] else 0,)),
                       args[L.ldz], args[L.has_z] != 0, args[L.act], np.float32(fl[FLOATS.lo]),
                       np.float32(fl[FLOATS.hi]), np.float32(fl[FLOATS.alpha]))


@njit(inline="always")
def _pixel_band(args, fl, x, i):
    # axis 1: chunk i is a band of output pixels, made ``block`` columns at a time.
    L = IM2COL
    m, k, p, block = args[L.m], args[L.k], args[L.p], args[L.block]
    q0 = i * args[L.step]
    q1 = min(p, q0 + args[L.step])
    col = np.empty(k * min(block, q1 - q0), dtype=np.float32)
    for b0 in range(q0, q1, block):
        b1 = min(q1, b0 + block)
        _make_columns(args, x, 0, args[L.c], b0, b1, col)
        sgemm(args[L.blas], args[L.ilp64], 0, 0, m, b1 - b0, k, args[L.weight], k, col.ctypes.data, b1 - b0,
              np.float32(0.0), args[L.y] + b0 * F32, p)
        _epilogue_on(args, fl, 0, m, b0, b1)


@njit(inline="always")
def _channel_band(args, fl, x, i):
    # axis 0: help make the shared im2col matrix, wait for all of it, then chunk i's band of
    # output channels.
    L = IM2COL
    m, k, p, c, parts = args[L.m], args[L.k], args[L.p], args[L.c], args[L.parts]
    col = carray(f32_ptr(args[L.col]), (k * p,))
    sync = carray(i64_ptr(args[L.sync]), (SYNC_WORDS,))
    cstep = -(-c // parts)
    t = claim(sync, 0, parts)
    while t >= 0:
        _make_columns(args, x, t * cstep, min(c, (t + 1) * cstep), 0, p, col)
        add(sync, SYNC_DONE, 1)
        t = claim(sync, 0, parts)
    wait_for(sync, SYNC_DONE, parts, args[L.yield_fn])  # the other thread is making its last part
    r0 = i * args[L.step]
    r1 = min(m, r0 + args[L.step])
    sgemm(args[L.blas], args[L.ilp64], 0, 0, r1 - r0, p, k, args[L.weight] + r0 * k * F32, k, args[L.col], p,
          np.float32(0.0), args[L.y] + r0 * p * F32, p)
    _epilogue_on(args, fl, r0, r1, 0, p)


@njit(cache=True, nogil=True)
def im2col_chunk(args, fl, i):
    """Chunk i of an IM2COL_GEMM job."""
    x = carray(f32_ptr(args[IM2COL.x]), (args[IM2COL.c] * args[IM2COL.h] * args[IM2COL.w],))
    if args[IM2COL.axis] == 0:
        _channel_band(args, fl, x, i)
    else:
        _pixel_band(args, fl, x, i)


def pick_axis(m: int, p: int) -> int:
    """How the threads split the job by default: by pixels when there are at least twice as many
    as output channels, else by output channels."""
    return 1 if p >= 2 * m else 0


def scratch(m: int, k: int, p: int, axis: int) -> tuple:
    """The job's scratch fields: by output channels, the shared (K, P) im2col matrix and the
    job's counters; by pixels none (each chunk makes its blocks of columns inside the compiled
    loop, a buffer per chunk of at most BLOCK_BYTES: which thread takes which chunk is settled
    while the job runs, so those cannot be laid out ahead)."""
    return (("col", k * p), ("sync", SYNC_WORDS)) if axis == 0 else ()


def im2col_gemm(x: np.ndarray, w: np.ndarray, win, y: np.ndarray, bias=None, z=None, act=None, block=None,
                axis=None, workspace=None) -> np.ndarray:
    """``y = W @ im2col(x)`` for one image, float32: x (C, H, W) and w (M, C*KH*KW) contiguous, y
    (M, OH*OW) contiguous, ``win`` the geometry.Window; with ``act`` = (activation, params) the
    FusedConv epilogue ``y = act(y + bias + z)`` (bias (M,), z an (M, OH*OW) row-major window)
    on each block. ``axis``: how the threads split it (see the module), by default by pixels
    when there are at least twice as many as output channels. ``workspace``: bytes to carve the
    job's ``scratch`` from (scratch.py), else it is allocated."""
    from course.providers.cpu.epilogue import scalars
    from course.providers.cpu.gemm import ld_or_broadcast

    c, h, wd = x.shape
    m, k = w.shape
    p = y.shape[1]
    (kh, kw), out = win.kernel, win.out
    if (k != c * kh * kw or y.shape[0] != m or p != out[0] * out[1] or not x.flags.c_contiguous
            or not w.flags.c_contiguous or not y.flags.c_contiguous or (z is not None and z.shape != y.shape)):
        raise ValueError(f"im2col_gemm: {w.shape} @ im2col{x.shape} -> {y.shape} does not fit")
    code, lo, hi, alpha = scalars(*act) if act is not None else (-1, 0.0, 0.0, 0.0)
    axis = pick_axis(m, p) if axis is None else axis
    if axis == 1:
        block = block or max(ALIGN, BLOCK_BYTES // (F32 * (m + k)) // ALIGN * ALIGN)
        step, chunks = block, -(-p // block)  # a block per chunk: a helper that starts late still takes its share
    else:
        (step, chunks), block = split(m), 0
    fn, ilp64 = blas.sgemm_address()
    make_job(IM2COL, IM2COL_GEMM, floats(0.0, lo, hi, alpha), chunks, (x, w, y, bias, z),
             scratch=scratch(m, k, p, axis), workspace=workspace,
             blas=fn, ilp64=ilp64, m=m, k=k, p=p, weight=address(w), x=address(x), c=c, h=h, w=wd, kh=kh, kw=kw,
             sh=win.strides[0], sw=win.strides[1], dh=win.dilations[0], dw=win.dilations[1],
             pt=win.pads_begin[0], pl=win.pads_begin[1], ow=out[1], y=address(y),
             bias=address(bias if bias is not None else y), has_bias=bias is not None,
             z=address(z if z is not None else y), ldz=ld_or_broadcast(z), has_z=z is not None, act=code,
             step=step, block=block, axis=axis, col=0, sync=0, parts=PARTS, yield_fn=libc_yield()).post()
    return y
