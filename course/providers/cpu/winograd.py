"""A stride-1, undilated 3x3 convolution by Winograd's F(2x2, 3x3) (Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016): 2.25x fewer multiplications.

A 2x2 block of the output comes from a 4x4 tile d of the input with 16 multiplications per
input channel instead of 36, Y = A^T [(G g G^T) * (B^T d B)] A, with
  B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
  A^T = [1 1 1 0; 0 1 -1 -1].
The products over the channels are 16 GEMMs, one per element e of the 4x4 tiles:
M[e] (M, T) = U[e] (M, C) @ V[e] (C, T) for T tiles; U = G g G^T is made once per weight
(weights.winograd). One job in three phases that both threads take parts of, each waiting for
the last phase's parts (counters of the job's own): V (input tiles transformed, by channel
ranges), the 16 GEMMs, Y (output tiles transformed back with the epilogue, by channel ranges).
The result differs from the direct sum by rounding only (additions in another order).
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from course.providers.cpu import blas
from course.providers.cpu.epilogue import epilogue_row
from course.providers.cpu.intrinsics import add, claim, f32_ptr, i64_ptr, libc_yield, sgemm, wait_for
from course.providers.cpu.job import F32, FLOATS, SYNC_DONE, SYNC_WORDS, WINOGRAD, address, floats, layout, make_job

PARTS = 8  # channel ranges of the input and output phases

WINO = layout("WinogradArgs", "blas ilp64 m c h w pt pl oh ow th tw x u v mo y bias has_bias z ldz has_z act "
                              "sync yield_fn parts vs ms")
# the job's counters: input parts claimed / made, GEMMs claimed / made, output parts claimed
INPUT_CLAIMED, INPUT_MADE, GEMM_CLAIMED, GEMM_MADE, OUTPUT_CLAIMED = (0, SYNC_DONE, 2 * SYNC_DONE, 3 * SYNC_DONE,
                                                                      4 * SYNC_DONE)


@njit(inline="always")
def _padded_row(rows, a, x, c, ih, h, w, pl, lo, hi, wp):
    # rows[a] = input row ih of channel c, padded: columns lo..hi hold x, the rest zeros.
    if ih < 0 or ih >= h:
        for q in range(wp):
            rows[a, q] = 0.0
        return
    for q in range(lo):
        rows[a, q] = 0.0
    src = (c * h + ih) * w - pl
    for q in range(lo, hi):
        rows[a, q] = x[np.uintp(src + q)]
    for q in range(hi, wp):
        rows[a, q] = 0.0


@njit(inline="always")
def _input_tiles(x, c0, c1, h, w, pt, pl, th_n, tw_n, vs, v, rows, ev, od):
    # V[e, c, t] = (B^T d B)[e] for channels c0..c1 of one image x (C*H*W flat), d the 4x4 tile
    # of the padded input at row 2*th - pt, column 2*tw - pl; element e's (C, T) matrix at
    # e * vs. Per tile row: its 4 input rows (padded, in ``rows``), their B^T combinations split
    # into even and odd columns (``ev``, ``od``), then each of the 16 outputs is one contiguous
    # run over the tiles of the row.
    wp = 2 * tw_n + 2
    nt = th_n * tw_n
    lo = min(wp, max(0, pl))
    hi = max(lo, min(wp, w + pl))
    for c in range(c0, c1):
        for th in range(th_n):
            for a in range(4):
                _padded_row(rows, a, x, c, 2 * th - pt + a, h, w, pl, lo, hi, wp)
            for q in range(tw_n + 1):
                e, o = 2 * q, 2 * q + 1
                ev[0, q], od[0, q] = rows[0, e] - rows[2, e], rows[0, o] - rows[2, o]
                ev[1, q], od[1, q] = rows[1, e] + rows[2, e], rows[1, o] + rows[2, o]
                ev[2, q], od[2, q] = rows[2, e] - rows[1, e], rows[2, o] - rows[1, o]
                ev[3, q], od[3, q] = rows[1, e] - rows[3, e], rows[1, o] - rows[3, o]
            t0 = th * tw_n
            for k in range(4):
                d0 = 4 * k * vs + c * nt + t0
                d1, d2, d3 = d0 + vs, d0 + 2 * vs, d0 + 3 * vs
                for q in range(tw_n):
                    v[np.uintp(d0 + q)] = ev[k, q] - ev[k, q + 1]
                    v[np.uintp(d1 + q)] = od[k, q] + ev[k, q + 1]
                    v[np.uintp(d2 + q)] = ev[k, q + 1] - od[k, q]
                    v[np.uintp(d3 + q)] = od[k, q] - od[k, q + 1]


@njit(inline="always")
def _tile_rows(mo, p, st, out, q):
    # out[0:2, 2q:2q+2] = A^T M A of the tile at flat index p (element e at p + e * st).
    r0, r1, r2, r3 = mo[p], mo[p + st], mo[p + 2 * st], mo[p + 3 * st]
    r4, r5, r6, r7 = mo[p + 4 * st], mo[p + 5 * st], mo[p + 6 * st], mo[p + 7 * st]
    r8, r9, r10, r11 = mo[p + 8 * st], mo[p + 9 * st], mo[p + 10 * st], mo[p + 11 * st]
    r12, r13, r14, r15 = mo[p + 12 * st], mo[p + 13 * st], mo[p + 14 * st], mo[p + 15 * st]
    s00, s01, s02, s03 = r0 + r4 + r8, r1 + r5 + r9, r2 + r6 + r10, r3 + r7 + r11
    s10, s11, s12, s13 = r4 - r8 - r12, r5 - r9 - r13, r6 - r10 - r14, r7 - r11 - r15
    out[0, 2 * q] = s00 + s01 + s02
    out[0, 2 * q + 1] = s01 - s02 - s03
    out[1, 2 * q] = s10 + s11 + s12
    out[1, 2 * q + 1] = s11 - s12 - s13


@njit(inline="always")
def _output_tiles(args, fl, mo, m0, m1, y, out, bias, z):
    # Y[m, 2*th + a, 2*tw + b] = (A^T M A)[a, b] for channels m0..m1, the epilogue (when the
    # job has an activation, act >= 0) on each output row; ``out``: 2 scratch rows.
    L = WINO
    th_n, tw_n, oh_, ow_, st, ldz = args[L.th], args[L.tw], args[L.oh], args[L.ow], args[L.ms], args[L.ldz]
    has_bias, has_z, act = args[L.has_bias] != 0, args[L.has_z] != 0, args[L.act]
    lo, hi, alpha = np.float32(fl[FLOATS.lo]), np.float32(fl[FLOATS.hi]), np.float32(fl[FLOATS.alpha])
    for m in range(m0, m1):
        for th in range(th_n):
            b0 = m * th_n * tw_n + th * tw_n
            for q in range(tw_n):
                _tile_rows(mo, np.uintp(b0 + q), st, out, q)
            for a in range(min(2, oh_ - 2 * th)):
                oh = 2 * th + a
                row = y[(m * oh_ + oh) * ow_:(m * oh_ + oh + 1) * ow_]
                for q in range(ow_):
                    row[q] = out[a, q]
                if act >= 0:
                    zs = m * ldz + oh * ow_
                    epilogue_row(row, bias[m] if has_bias else lo, 1 if has_bias else 0, bias[0:0],
                                 z[zs:zs + ow_] if has_z else z[0:0], has_z, act, lo, hi, alpha)


@njit(inline="always")
def _input_phase(args, sync):
    L = WINO
    c, tw_n, parts = args[L.c], args[L.tw], args[L.parts]
    t = claim(sync, INPUT_CLAIMED, parts)
    if t >= 0:
        x = carray(f32_ptr(args[L.x]), (c * args[L.h] * args[L.w],))
        v = carray(f32_ptr(args[L.v]), (16 * args[L.vs],))
        rows = np.empty((4, 2 * tw_n + 2), dtype=np.float32)
        ev, od = np.empty((4, tw_n + 1), dtype=np.float32), np.empty((4, tw_n + 1), dtype=np.float32)
        while t >= 0:
            cstep = -(-c // parts)
            _input_tiles(x, t * cstep, min(c, (t + 1) * cstep), args[L.h], args[L.w], args[L.pt], args[L.pl],
                         args[L.th], tw_n, args[L.vs], v, rows, ev, od)
            add(sync, INPUT_MADE, 1)
            t = claim(sync, INPUT_CLAIMED, parts)
    wait_for(sync, INPUT_MADE, parts, args[L.yield_fn])


@njit(inline="always")
def _gemm_phase(args, sync):
    L = WINO
    m, c, nt = args[L.m], args[L.c], args[L.th] * args[L.tw]
    e = claim(sync, GEMM_CLAIMED, 16)
    while e >= 0:
        sgemm(args[L.blas], args[L.ilp64], 0, 0, m, nt, c, args[L.u] + e * m * c * F32, c,
              args[L.v] + e * args[L.vs] * F32, nt, np.float32(0.0), args[L.mo] + e * args[L.ms] * F32, nt)
        add(sync, GEMM_MADE, 1)
        e = claim(sync, GEMM_CLAIMED, 16)
    wait_for(sync, GEMM_MADE, 16, args[L.yield_fn])


@njit(inline="always")
def _output_phase(args, fl, sync):
    L = WINO
    m, parts = args[L.m], args[L.parts]
    t = claim(sync, OUTPUT_CLAIMED, parts)
    if t >= 0:
        mo = carray(f32_ptr(args[L.mo]), (16 * args[L.ms],))
        y = carray(f32_ptr(args[L.y]), (m * args[L.oh] * args[L.ow],))
        out = np.empty((2, 2 * args[L.tw]), dtype=np.float32)
        bias = carray(f32_ptr(args[L.bias]), (m if args[L.has_bias] else 0,))
        z = carray(f32_ptr(args[L.z]), ((m - 1) * args[L.ldz] + args[L.oh] * args[L.ow] if args[L.has_z] else 0,))
        while t >= 0:
            mstep = -(-m // parts)
            _output_tiles(args, fl, mo, t * mstep, min(m, (t + 1) * mstep), y, out, bias, z)
            t = claim(sync, OUTPUT_CLAIMED, parts)


@njit(cache=True, nogil=True)
def winograd_chunk(args, fl, i):
    """Either chunk of a WINOGRAD job: both take parts of each of the three phases in turn."""
    sync = carray(i64_ptr(args[WINO.sync]), (SYNC_WORDS,))
    _input_phase(args, sync)
    _gemm_phase(args, sync)
    _output_phase(args, fl, sync)


def matrix_stride(size: int) -> int:
    """Floats between two of the 16 matrices: ``size`` rounded up to 4 KiB, plus one cache line.
    Both transforms read or write the 16 at once; exactly 4 KiB apart their streams fell in one
    set of the L1 cache and the output transform ran 2x slower."""
    return -(-size // 1024) * 1024 + 16


def scratch(c: int, m: int, out) -> tuple:
    """The job's scratch fields for C input and M output channels and an ``out`` (OH, OW) plane:
    the 16 transformed input matrices V, the 16 products M and the job's counters."""
    tiles = -(-out[0] // 2) * -(-out[1] // 2)
    return (("v", 16 * matrix_stride(c * tiles)), ("mo", 16 * matrix_stride(m * tiles)), ("sync", SYNC_WORDS))


def winograd3x3(x: np.ndarray, u: np.ndarray, win, y: np.ndarray, bias=None, z=None, act=None,
                workspace=None) -> np.ndarray:
    """``y`` = the stride-1, undilated 3x3 convolution of one image, float32: x (C, H, W)
    contiguous, u = weights.winograd(w), y (M, OH*OW) contiguous for ``win.out``; with ``act`` =
    (activation, params) the epilogue ``y = act(y + bias + z)`` (bias (M,), z an (M, OH*OW)
    row-major window) on each output row. ``workspace``: bytes to carve the job's ``scratch``
    from (scratch.py), else it is allocated."""
    from course.providers.cpu.epilogue import scalars
    from course.providers.cpu.gemm import ld_or_broadcast

    c, h, wd = x.shape
    m, out = u.shape[1], win.out
    if (u.shape != (16, m, c) or y.shape != (m, out[0] * out[1]) or not x.flags.c_contiguous
            or not u.flags.c_contiguous or not y.flags.c_contiguous or (z is not None and z.shape != y.shape)
            or min(out) < 1):
        raise ValueError(f"winograd3x3: {u.shape} by {x.shape} -> {y.shape} does not fit")
    code, lo, hi, alpha = scalars(*act) if act is not None else (-1, 0.0, 0.0, 0.0)
    th, tw = -(-out[0] // 2), -(-out[1] // 2)
    vs, ms = matrix_stride(c * th * tw), matrix_stride(m * th * tw)
    fn, ilp64 = blas.sgemm_address()
    make_job(WINO, WINOGRAD, floats(0.0, lo, hi, alpha), 2, (x, u, y, bias, z),
             scratch=scratch(c, m, out), workspace=workspace,
             blas=fn, ilp64=ilp64, m=m, c=c, h=h, w=wd, pt=win.pads_begin[0], pl=win.pads_begin[1], oh=out[0],
             ow=out[1], th=th, tw=tw, x=address(x), u=address(u), v=0, mo=0, y=address(y),
             bias=address(bias if bias is not None else y), has_bias=bias is not None,
             z=address(z if z is not None else y), ldz=ld_or_broadcast(z), has_z=z is not None, act=code, sync=0,
             yield_fn=libc_yield(), parts=PARTS, vs=vs, ms=ms).post()
    return y
