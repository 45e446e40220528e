"""Both cores for one inference: the session's thread plus one helper thread that spins while a
run is on, splitting each big kernel in two.

Why not numpy's OpenBLAS threads: on the GEMMs a MobileNet is made of (a 1x1 convolution of a
14x14 or 7x7 plane is a 576x96 @ 96x196 or 960x160 @ 160x49 product) OpenBLAS's two threads
are measured only 1.03-1.15x faster than one, while two single-threaded calls on the two halves
of the rows, run at the same time, are 1.6-1.9x faster (docs/benchmarks.md). And why not Python
threads or numba's pools: waking a sleeping thread costs ~50 us, as much as a whole small layer.
So while ``running()`` is on (``InferenceSession.run`` wraps each run in it):

- OpenBLAS is set to one thread (and set back afterwards);
- a helper thread waits inside compiled code (``_helper_loop``, no GIL) for jobs;
- a kernel posts a *job* (a kind and its arguments: raw pointers and sizes in ``_ARGS``) cut into
  a fixed number of *chunks*; both threads claim chunks with an atomic compare-and-swap on one
  ticket word (job sequence number, chunk count, next chunk) and the poster waits until every
  chunk is done. The helper is never needed for progress: the posting thread claims whatever is
  left, so a late or absent helper only costs speed.

Jobs: a sum of GEMMs into one output (a 1x1 convolution, an im2col one, one accumulating GEMM
per kernel tap, see conv._tap_gemms, or a big Gemm node), split by output rows or columns, with
the FusedConv epilogue (bias, residual, activation) applied to each band right after it is made;
a convolution as blocks of its im2col matrix, each built in cache and multiplied at once (or,
with few output pixels, one im2col matrix both threads help to build, then a band of output
channels each); a stride-1 3x3 convolution by Winograd F(2x2, 3x3), in three phases both
threads take parts of;
the 3x3 depthwise kernel split by planes, or its channels-last twin split by output rows; the
epilogue alone split by rows (where a convolution did not take it in its bands). The chunks are
the same whether or not the pool is running and whichever thread runs them, so results never
depend on the timing. Between runs the helper waits in compiled code for a while (yields, then
naps) before it goes to sleep on an Event: woken from the Event it needs the GIL, which it got
only 0.2-18 ms (median 2.7) into a run.

Only float32 goes through here (float64 keeps the single-call route), and only where CPython
can hand over raw pointers safely: every array a job touches is kept alive by the caller until
the job is done. The helper sleeps when no run came for ~0.5 s; ``COURSE_NUM_THREADS=1`` turns the pool off.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from course.ops import _blas
from course.ops import _fused_kernels as fk


def drop_stale_cache(cache_dir: Path, module: str, depends_on: Path) -> bool:
    """Delete ``module``'s numba cache files in ``cache_dir`` when ``depends_on`` changed since
    they were written; True if it did. numba's ``cache=True`` checks only the timestamp of the
    file a function is defined in, and the jobs below inline loops from _fused_kernels.py: after
    an edit (or a ``git pull``) of that file alone they would keep running the old loops."""
    stamp = cache_dir / f"{module}.depends"
    try:
        st = depends_on.stat()
        want = f"{depends_on.name} {st.st_mtime_ns} {st.st_size}"
        if stamp.is_file() and stamp.read_text() == want:
            return False
        for f in cache_dir.glob(f"{module}.*.nb[ic]"):
            f.unlink(missing_ok=True)
        cache_dir.mkdir(exist_ok=True)
        stamp.write_text(want)
        return True
    except OSError:  # a read-only install: numba keeps its cache elsewhere, or none
        return False


drop_stale_cache(Path(__file__).parent / "__pycache__", "_parallel", Path(fk.__file__))

# ---- atomics and raw pointers as numba intrinsics ---------------------------------------------


def _item_pointer(context, builder, arrty, arr, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arrty, ary, [idx], wraparound=False)


@intrinsic
def _load(typingctx, arr, idx):
    """arr[idx] with acquire ordering: what another thread stored before its release is visible."""
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_item_pointer(context, builder, sig.args[0], *args), "acquire", 8)
    return sig, codegen


@intrinsic
def _store(typingctx, arr, idx, val):
    """arr[idx] = val with release ordering."""
    sig = types.void(arr, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        builder.store_atomic(args[2], _item_pointer(context, builder, sig.args[0], args[0], args[1]),
                             "release", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _add(typingctx, arr, idx, val):
    """Atomic arr[idx] += val."""
    sig = types.void(arr, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        builder.atomic_rmw("add", _item_pointer(context, builder, sig.args[0], args[0], args[1]), args[2],
                           "seq_cst")
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _cas(typingctx, arr, idx, expected, new):
    """Atomically: if arr[idx] == expected, set it to new and return True."""
    sig = types.boolean(arr, types.intp, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.extract_value(builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst"), 1)
    return sig, codegen


_f32_ptr, _i64_ptr = fk.f32_ptr, fk.i64_ptr  # int64 address -> pointer, for numba.carray


@intrinsic
def _call_sleep(typingctx, fn, usec):
    """Call ``int fn(unsigned usec)`` at address fn (usleep) when fn != 0."""
    sig = types.void(types.int64, types.int64)

    def codegen(context, builder, sig, args):
        with builder.if_then(builder.icmp_unsigned("!=", args[0], args[0].type(0))):
            fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32)])
            builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [builder.trunc(args[1], ir.IntType(32))])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _call_yield(typingctx, fn):
    """Call ``int fn(void)`` at address fn (sched_yield) when fn != 0."""
    sig = types.void(types.int64)

    def codegen(context, builder, sig, args):
        with builder.if_then(builder.icmp_unsigned("!=", args[0], args[0].type(0))):
            fnty = ir.FunctionType(ir.IntType(32), [])
            builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])
        return context.get_dummy_value()
    return sig, codegen


def _sgemm_caller(int_bits):
    """An intrinsic calling cblas_sgemm (row-major, A transposed when trans_a, B when trans_b,
    alpha 1) at a raw address; the BLAS integer is int_bits wide (64 for numpy's ILP64 OpenBLAS)."""
    @intrinsic
    def call(typingctx, fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc):
        i64 = types.int64
        sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, types.float32, i64, i64)

        def codegen(context, builder, sig, args):
            fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc = args
            i32, bi, f32, vp = ir.IntType(32), ir.IntType(int_bits), ir.FloatType(), ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, bi, bi, bi, f32, vp, bi, vp, bi, f32, vp, bi])
            blasint = (lambda v: v) if int_bits == 64 else (lambda v: builder.trunc(v, bi))
            ptr = lambda v: builder.inttoptr(v, vp)  # noqa: E731
            flag = lambda v: builder.select(builder.icmp_unsigned("!=", v, v.type(0)), i32(112), i32(111))  # noqa: E731
            builder.call(builder.inttoptr(fn, fnty.as_pointer()),
                         [i32(101), flag(trans_a), flag(trans_b), blasint(m), blasint(n), blasint(k), f32(1.0),
                          ptr(a), blasint(lda), ptr(b), blasint(ldb), beta, ptr(c), blasint(ldc)])
            return context.get_dummy_value()
        return sig, codegen
    return call


_sgemm64 = _sgemm_caller(64)
_sgemm32 = _sgemm_caller(32)

# ---- jobs ---------------------------------------------------------------------------------------
# _STATE slots, a cache line (8 int64) apart so the two threads' hot words do not share one.
RUN, TICKET, DONE, YIELD, HELPED, SLEEP, STAYING = 0, 8, 16, 24, 32, 33, 34  # HELPED: chunks the helper ran
# Between runs the helper stays in compiled code for a while (IDLE_*: yields, then naps growing
# to IDLE_NAP_MAX_US, IDLE_NAPS_US in all) before it goes back to sleeping on an Event.
IDLE_YIELDS, IDLE_NAP_MAX_US, IDLE_NAPS_US = 20000, 500, 500_000
# TICKET = seq << 32 | chunks << 16 | next chunk: one word, so a claim can never mix two jobs.
MAX_CHUNKS = 1 << 15
GEMM, DEPTHWISE, EPILOGUE, DEPTHWISE_NHWC, MAX_POOL, IM2COL_GEMM, WINOGRAD = 1, 2, 3, 4, 5, 6, 7
# A job's own counters for parts of its work (claimed, then made), a cache line apart: words
# 0 and SYNC_DONE for im2col_gemm's shared matrix (axis 0) or Winograd's input phase, then
# 2 * and 3 * SYNC_DONE for Winograd's GEMMs, 4 * SYNC_DONE for its output phase.
SYNC_WORDS, SYNC_DONE = 40, 8
F32 = 4  # bytes per element


@njit(inline="always")
def _span(i, step, total):
    lo = i * step
    return lo, min(total, lo + step)


@njit(inline="always")
def _epilogue_block(c, ldc, r0, r1, c0, c1, bias, bias_mode, z, ldz, has_z, act, lo, hi, alpha):
    # c[r, c0:c1] = act(c[r, c0:c1] + bias + z[r, c0:c1]) for rows r0..r1 of flat row-major
    # buffers (ldc, ldz: elements between rows), with fk._epilogue's arithmetic; the bias is
    # bias[r] (bias_mode 1), bias[c0:c1] (2, a bias per column) or none (0).
    # An operand that is not used is an empty slice, never ``row`` itself: the compiler guards its
    # vector loop with an overlap test on every operand, and ``row`` would fail it.
    for r in range(r0, r1):
        row = c[r * ldc + c0:r * ldc + c1]
        fk.epilogue_row(row, bias[r] if bias_mode == 1 else lo, bias_mode,
                        bias[c0:c1] if bias_mode == 2 else bias[0:0],
                        z[r * ldz + c0:r * ldz + c1] if has_z else z[0:0], has_z, act, lo, hi, alpha)


@njit(inline="always")
def _claim(sync, slot, parts):
    # The next unclaimed part on the counter sync[slot] (atomically taken), or -1 if none is left.
    while True:
        t = _load(sync, slot)
        if t >= parts:
            return -1
        if _cas(sync, slot, t, t + 1):
            return t


@njit(inline="always")
def _wait(sync, slot, parts, yield_fn):
    # Until sync[slot] counts ``parts`` parts made (the last ones by the other thread).
    while _load(sync, slot) < parts:
        _call_yield(yield_fn)


@njit(cache=True, nogil=True)
def _run_chunk(args, fargs, i):
    kind = args[0]
    if kind == GEMM:
        # C (m, n; ldc) = beta * C + sum over taps t of A_t (m, k; lda) @ B_t (k, n; ld_t), where
        # A_t = a + t * a_tap and (B_t, ld_t) = taps[t]; chunk i is a band of rows (axis 0) or of
        # columns (axis 1) of C. With an epilogue, C = act(C + bias + Z) follows on each band
        # while it is still in cache: a band is made ``block`` columns (or rows) at a time for that.
        fn, ilp64, m, n, k = args[1], args[2], args[3], args[4], args[5]
        a, lda, a_tap, c, ldc, ntaps, taps_at, axis, step = (args[6], args[7], args[8], args[9], args[10],
                                                           args[11], args[12], args[13], args[14])
        epi, bias_at, has_bias, z_at, ldz, has_z, act, block = (args[15], args[16], args[17], args[18],
                                                                args[19], args[20], args[21], args[22])
        trans_b = args[23]  # B_t is given transposed: (n, k) row-major, ld_t apart
        trans_a = args[24]  # A_t is given transposed: (k, m) row-major, lda apart
        taps = carray(_i64_ptr(taps_at), (ntaps, 2))
        q0, q1 = _span(i, step, n if axis else m)
        for q in range(q0, q1, block):
            if axis == 0:
                r0, r1, s0, s1 = q, min(q1, q + block), 0, n
            else:
                r0, r1, s0, s1 = 0, m, q, min(q1, q + block)
            for t in range(ntaps):
                beta = np.float32(fargs[0]) if t == 0 else np.float32(1.0)
                at = a + (r0 * (1 if trans_a else lda) + t * a_tap) * F32  # row r0 of A_t
                bt = taps[t, 0] + s0 * (taps[t, 1] if trans_b else 1) * F32  # column s0 of B_t
                ct = c + (r0 * ldc + s0) * F32
                if ilp64:
                    _sgemm64(fn, trans_a, trans_b, r1 - r0, s1 - s0, k, at, lda, bt, taps[t, 1], beta, ct, ldc)
                else:
                    _sgemm32(fn, trans_a, trans_b, r1 - r0, s1 - s0, k, at, lda, bt, taps[t, 1], beta, ct, ldc)
            if epi:
                size = (m - 1) * ldc + n
                _epilogue_block(carray(_f32_ptr(c), (size,)), ldc, r0, r1, s0, s1,
                                carray(_f32_ptr(bias_at), (0 if has_bias == 0 else m if has_bias == 1 else n,)),
                                has_bias,
                                carray(_f32_ptr(z_at), ((m - 1) * ldz + n if has_z else 0,)), ldz, has_z != 0,
                                act, np.float32(fargs[1]), np.float32(fargs[2]), np.float32(fargs[3]))
    elif kind == IM2COL_GEMM:
        # Y (m, p) = W (m, k) @ im2col(X), X one (C, H, W) image, split one of two ways (axis):
        # 1: chunk i is a band of columns (output pixels), made ``block`` columns at a time: that
        # block of the im2col matrix is built in a buffer of the chunk's own, multiplied while it
        # is still in cache, and the epilogue follows on the block of Y. The im2col matrix never
        # exists as a whole.
        # 0 (few pixels, many output channels): chunk i is a band of rows (output channels) of Y,
        # all multiplied by the whole im2col matrix, made once in the shared buffer at col_at in
        # ``parts`` (channel ranges) that every chunk first helps to build, claiming them on a
        # counter of its own (sync[0], sync[SYNC_DONE] counts the parts made); it waits only for
        # parts another thread is making, so a chunk never waits on one nobody took.
        fn, ilp64, m, k, p, wa = args[1], args[2], args[3], args[4], args[5], args[6]
        xa, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, ow = (args[7], args[8], args[9], args[10], args[11],
                                                           args[12], args[13], args[14], args[15], args[16],
                                                           args[17], args[18], args[19])
        ya, bias_at, has_bias, z_at, ldz, has_z, act, step, block = (args[20], args[21], args[22], args[23],
                                                                     args[24], args[25], args[26], args[27],
                                                                     args[28])
        axis, col_at, sync_at, parts, yield_fn = args[29], args[30], args[31], args[32], args[33]
        x = carray(_f32_ptr(xa), (c * h * w,))
        if axis == 0:
            col = carray(_f32_ptr(col_at), (k * p,))
            sync = carray(_i64_ptr(sync_at), (SYNC_WORDS,))
            cstep = -(-c // parts)
            t = _claim(sync, 0, parts)
            while t >= 0:
                c0, c1 = _span(t, cstep, c)
                fk.im2col_block(x, c0, c1, h, w, kh, kw, sh, sw, dh, dw, pt, pl, ow, 0, p, col)
                _add(sync, SYNC_DONE, 1)
                t = _claim(sync, 0, parts)
            _wait(sync, SYNC_DONE, parts, yield_fn)  # the other thread is making its last part
            r0, r1 = _span(i, step, m)
            if ilp64:
                _sgemm64(fn, 0, 0, r1 - r0, p, k, wa + r0 * k * F32, k, col_at, p, np.float32(0.0),
                         ya + r0 * p * F32, p)
            else:
                _sgemm32(fn, 0, 0, r1 - r0, p, k, wa + r0 * k * F32, k, col_at, p, np.float32(0.0),
                         ya + r0 * p * F32, p)
            if act >= 0:
                _epilogue_block(carray(_f32_ptr(ya), (m * p,)), p, r0, r1, 0, p,
                                carray(_f32_ptr(bias_at), (m if has_bias else 0,)), 1 if has_bias else 0,
                                carray(_f32_ptr(z_at), ((m - 1) * ldz + p if has_z else 0,)), ldz, has_z != 0,
                                act, np.float32(fargs[1]), np.float32(fargs[2]), np.float32(fargs[3]))
            return
        q0, q1 = _span(i, step, p)
        col = np.empty(k * min(block, q1 - q0), dtype=np.float32)
        for b0 in range(q0, q1, block):
            b1 = min(q1, b0 + block)
            fk.im2col_block(x, 0, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, ow, b0, b1, col)
            if ilp64:
                _sgemm64(fn, 0, 0, m, b1 - b0, k, wa, k, col.ctypes.data, b1 - b0, np.float32(0.0), ya + b0 * F32, p)
            else:
                _sgemm32(fn, 0, 0, m, b1 - b0, k, wa, k, col.ctypes.data, b1 - b0, np.float32(0.0), ya + b0 * F32, p)
            if act >= 0:
                _epilogue_block(carray(_f32_ptr(ya), (m * p,)), p, 0, m, b0, b1,
                                carray(_f32_ptr(bias_at), (m if has_bias else 0,)), 1 if has_bias else 0,
                                carray(_f32_ptr(z_at), ((m - 1) * ldz + p if has_z else 0,)), ldz, has_z != 0,
                                act, np.float32(fargs[1]), np.float32(fargs[2]), np.float32(fargs[3]))
    elif kind == WINOGRAD:
        # A stride-1 3x3 convolution of one (C, H, W) image by Winograd F(2x2, 3x3) (see
        # fk.winograd_input), in three phases every chunk takes part in, each cut into parts
        # claimed on a counter of the job's own and waited for like im2col_gemm's (axis 0):
        # V = the input's tiles transformed (parts: channel ranges); 16 GEMMs M[e] = U[e] @ V[e]
        # (a part each); Y = M's tiles transformed back, with the epilogue (parts: channel ranges).
        fn, ilp64, m, c, h, w, pt, pl, oh, ow, th_n, tw_n = (args[1], args[2], args[3], args[4], args[5],
                                                              args[6], args[7], args[8], args[9], args[10],
                                                              args[11], args[12])
        xa, ua, va, moa, ya, bias_at, has_bias, z_at, ldz, has_z, act = (args[13], args[14], args[15], args[16],
                                                                         args[17], args[18], args[19], args[20],
                                                                         args[21], args[22], args[23])
        sync, yield_fn, parts, vs, ms = carray(_i64_ptr(args[24]), (SYNC_WORDS,)), args[25], args[26], args[27], args[28]
        nt = th_n * tw_n
        v = carray(_f32_ptr(va), (16 * vs,))
        t = _claim(sync, 0, parts)
        if t >= 0:
            x = carray(_f32_ptr(xa), (c * h * w,))
            rows = np.empty((4, 2 * tw_n + 2), dtype=np.float32)
            ev, od = np.empty((4, tw_n + 1), dtype=np.float32), np.empty((4, tw_n + 1), dtype=np.float32)
            while t >= 0:
                c0, c1 = _span(t, -(-c // parts), c)
                fk.winograd_input(x, c0, c1, h, w, pt, pl, th_n, tw_n, vs, v, rows, ev, od)
                _add(sync, SYNC_DONE, 1)
                t = _claim(sync, 0, parts)
        _wait(sync, SYNC_DONE, parts, yield_fn)
        e = _claim(sync, 2 * SYNC_DONE, 16)
        while e >= 0:
            if ilp64:
                _sgemm64(fn, 0, 0, m, nt, c, ua + e * m * c * F32, c, va + e * vs * F32, nt, np.float32(0.0),
                         moa + e * ms * F32, nt)
            else:
                _sgemm32(fn, 0, 0, m, nt, c, ua + e * m * c * F32, c, va + e * vs * F32, nt, np.float32(0.0),
                         moa + e * ms * F32, nt)
            _add(sync, 3 * SYNC_DONE, 1)
            e = _claim(sync, 2 * SYNC_DONE, 16)
        _wait(sync, 3 * SYNC_DONE, 16, yield_fn)
        t = _claim(sync, 4 * SYNC_DONE, parts)
        if t >= 0:
            mo = carray(_f32_ptr(moa), (16 * ms,))
            y = carray(_f32_ptr(ya), (m * oh * ow,))
            out = np.empty((2, 2 * tw_n), dtype=np.float32)
            bias = carray(_f32_ptr(bias_at), (m if has_bias else 0,))
            z = carray(_f32_ptr(z_at), ((m - 1) * ldz + oh * ow if has_z else 0,))
            while t >= 0:
                m0, m1 = _span(t, -(-m // parts), m)
                fk.winograd_output(mo, m0, m1, ms, th_n, tw_n, oh, ow, y, out, bias, has_bias != 0, z, ldz,
                                   has_z != 0, act, np.float32(fargs[1]), np.float32(fargs[2]),
                                   np.float32(fargs[3]), act >= 0)
                t = _claim(sync, 4 * SYNC_DONE, parts)
    elif kind == DEPTHWISE:
        n, c, h, w, oh, ow = args[1], args[2], args[3], args[4], args[5], args[6]
        nfill, sh, sw, ph, pw, has_bias, act, step = (args[7], args[8], args[9], args[10], args[11],
                                                      args[12], args[13], args[14])
        x = carray(_f32_ptr(args[15]), (n, c, h, w))
        fill = carray(_i64_ptr(args[16]), (nfill, 6))
        taps = carray(_i64_ptr(args[17]), (9, 2))
        wt = carray(_f32_ptr(args[18]), (c, 1, 3, 3))
        b = carray(_f32_ptr(args[19]), (c if has_bias else 0,))
        y = carray(_f32_ptr(args[20]), (n, c, oh, ow))
        k0, k1 = _span(i, step, n * c)
        fk._depthwise3x3(x, fill, taps, wt, b, has_bias != 0, sh, sw, ph, pw, act, np.float32(fargs[0]),
                         np.float32(fargs[1]), np.float32(fargs[2]), y, k0, k1)
    elif kind == DEPTHWISE_NHWC:
        n, c, h, w, oh, ow, sh, sw, pt, pl, has_bias, act, step = (args[1], args[2], args[3], args[4], args[5],
                                                                   args[6], args[7], args[8], args[9], args[10],
                                                                   args[11], args[12], args[13])
        r0, r1 = _span(i, step, n * oh)
        fk._depthwise3x3_nhwc(carray(_f32_ptr(args[14]), (n, h, w, c)), carray(_f32_ptr(args[15]), (9, c)),
                              carray(_f32_ptr(args[16]), (c if has_bias else 0,)), has_bias != 0, sh, sw, pt, pl,
                              act, np.float32(fargs[0]), np.float32(fargs[1]), np.float32(fargs[2]),
                              carray(_f32_ptr(args[17]), (c,)), carray(_f32_ptr(args[18]), (n, oh, ow, c)), r0, r1)
    elif kind == MAX_POOL:
        n, c, h, w, oh, ow, nfill, sh, sw, ph, pw, step = (args[1], args[2], args[3], args[4], args[5], args[6],
                                                          args[7], args[8], args[9], args[10], args[11], args[12])
        k0, k1 = _span(i, step, n * c)
        fk._max3x3(carray(_f32_ptr(args[13]), (n, c, h, w)), carray(_i64_ptr(args[14]), (nfill, 6)),
                   carray(_i64_ptr(args[15]), (9, 2)), sh, sw, ph, pw, np.float32(-np.inf),
                   carray(_f32_ptr(args[16]), (n, c, oh, ow)), k0, k1)
    elif kind == EPILOGUE:
        rows, cols, m, has_bias, has_z, act, step = args[1], args[2], args[3], args[4], args[5], args[6], args[7]
        y = carray(_f32_ptr(args[8]), (rows, cols))
        b = carray(_f32_ptr(args[9]), (m if has_bias else 0,))
        z = carray(_f32_ptr(args[10] if has_z else args[8]), (rows, cols))
        r0, r1 = _span(i, step, rows)
        fk._epilogue(y, b, has_bias != 0, z, has_z != 0, act, np.float32(fargs[0]), np.float32(fargs[1]),
                     np.float32(fargs[2]), r0, r1)


@njit(cache=True, nogil=True)
def _claim_and_run(state, args, fargs, seq):
    """Run chunks of job ``seq`` until none is left unclaimed; returns how many this thread ran."""
    ran = 0
    while True:
        t = _load(state, TICKET)
        if (t >> 32) != seq or (t & 0xFFFF) >= ((t >> 16) & 0xFFFF):
            return ran
        if _cas(state, TICKET, t, t + 1):
            _run_chunk(args, fargs, t & 0xFFFF)
            _add(state, DONE, 1)
            ran += 1


@njit(cache=True, nogil=True)
def _post_and_run(state, args, fargs, seq, chunks):
    """Publish job ``seq`` (its arguments already written), work on it, wait until it is done."""
    _store(state, DONE, 0)
    _store(state, TICKET, (seq << 32) | (chunks << 16))
    _claim_and_run(state, args, fargs, seq)
    while _load(state, DONE) < chunks:  # the helper is finishing a chunk it claimed
        _call_yield(state[YIELD])


@njit(cache=True, nogil=True)
def _run_alone(args, fargs, chunks):
    for i in range(chunks):
        _run_chunk(args, fargs, i)


@njit(cache=True, nogil=True)
def _helper_stay(state, args, fargs, naps_us):
    """The helper's life from one wake-up on: run jobs while a run is on (``_helper_loop``), and
    between runs wait for the next one here, yielding then napping (IDLE_*), in compiled code. A
    helper that sleeps on a Python Event needs the GIL to wake, and gets it only when the run's
    thread lets go for long enough: measured 0.2-18 ms (median 2.7) into a run, which so went
    single-threaded for its first layers. Returns once idle for ``naps_us`` of naps (at once
    for a negative one: how it is compiled before the helper starts)."""
    if naps_us < 0:
        _helper_loop(state, args, fargs)
        return
    _store(state, STAYING, 1)
    while True:
        _helper_loop(state, args, fargs)
        idle, nap, slept = 0, 1, 0
        while _load(state, RUN) == 0:
            if idle < IDLE_YIELDS:
                idle += 1
                _call_yield(state[YIELD])
            elif slept >= naps_us:
                _store(state, STAYING, 0)
                return
            else:
                _call_sleep(state[SLEEP], nap)
                slept += nap
                nap = min(2 * nap, IDLE_NAP_MAX_US)


@njit(cache=True, nogil=True)
def _helper_loop(state, args, fargs):
    """The helper's life while a run is on: watch the ticket, take chunks of each new job."""
    seen = _load(state, TICKET) >> 32
    while _load(state, RUN) != 0:
        seq = _load(state, TICKET) >> 32
        if seq != seen:
            seen = seq
            _add(state, HELPED, _claim_and_run(state, args, fargs, seq))
        else:
            _call_yield(state[YIELD])


# ---- the pool -----------------------------------------------------------------------------------


def _libc_yield() -> int:
    try:
        return ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value or 0
    except (OSError, AttributeError, TypeError):  # pragma: no cover - no libc by that name
        return 0


def _libc_sleep() -> int:
    try:
        return ctypes.cast(ctypes.CDLL(None).usleep, ctypes.c_void_p).value or 0
    except (OSError, AttributeError, TypeError):  # pragma: no cover - no libc by that name
        return 0


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


class _Pool:
    def __init__(self):
        self._reset()

    def _reset(self):
        self.state = np.zeros(40, dtype=np.int64)
        self.state[YIELD] = _libc_yield()
        self.state[SLEEP] = _libc_sleep()
        self.args = np.zeros(40, dtype=np.int64)
        self.fargs = np.zeros(4, dtype=np.float64)
        self.seq = 0
        self.owner = None  # thread ident of the run that holds the pool
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread = None
        self.blas_before = None

    def enabled(self) -> bool:
        return (os.environ.get("COURSE_NUM_THREADS", "") != "1" and _cpus() >= 2
                and sys.platform != "win32")

    @contextlib.contextmanager
    def running(self):
        """While on, float32 jobs posted by this thread are shared with the helper."""
        if self.owner == threading.get_ident() or not self.enabled() or not self.lock.acquire(blocking=False):
            yield False  # nested run, pool off, or another thread's run holds it: run alone
            return
        try:
            self.owner = threading.get_ident()
            self.blas_before = _blas.set_threads(1)
            if self.thread is None:
                # Compile (or load) the helper's loops here, where they return at once (RUN is 0):
                # compiled in the helper, it would leave this thread to run alone meanwhile, and
                # a script ending during that compilation aborts inside LLVM at exit.
                _helper_stay(self.state, self.args, self.fargs, -1)
            self.state[RUN] = 1
            if self.thread is None:
                self.thread = threading.Thread(target=self._helper, name="course-helper", daemon=True)
                self.thread.start()
            self.wake.set()
            yield True
        finally:
            self.state[RUN] = 0
            if self.blas_before is not None:
                _blas.set_threads(self.blas_before)
            self.owner = None
            self.lock.release()

    def _helper(self):
        _blas.set_threads(1)  # its own GEMM chunks run on this thread
        while True:
            self.wake.wait()
            self.wake.clear()
            _helper_stay(self.state, self.args, self.fargs, IDLE_NAPS_US)

    def run(self, values, floats, chunks: int) -> None:
        """Run a job: ``values`` the int64 arguments (kind first), ``floats`` up to four scalars."""
        if self.owner == threading.get_ident() and chunks > 1:
            self.args[:len(values)] = values
            self.fargs[:len(floats)] = floats
            self.seq = self.seq % (1 << 30) + 1
            _post_and_run(self.state, self.args, self.fargs, self.seq, chunks)
        else:  # arrays of its own: the pool's belong to the run that holds it (maybe in another thread)
            _run_alone(np.asarray(values, dtype=np.int64), np.asarray(floats, dtype=np.float64), chunks)


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL._reset)  # the helper thread does not survive a fork


def running():
    """Context manager: share this thread's float32 kernels with the helper thread."""
    return _POOL.running()


# Where a job's arguments hold the operands that change from call to call (Job.values[...]).
GEMM_A, GEMM_C, GEMM_TABLE, GEMM_Z, GEMM_HAS_Z = 6, 9, 12, 18, 20  # B_t: Job.table[t, 0]
DEPTHWISE_X, DEPTHWISE_Y = 15, 20
DEPTHWISE_NHWC_X, DEPTHWISE_NHWC_Y = 14, 18
IM2COL_K, IM2COL_P, IM2COL_X, IM2COL_Y, IM2COL_Z, IM2COL_HAS_Z = 4, 5, 7, 20, 23, 25
IM2COL_AXIS, IM2COL_COL, IM2COL_SYNC = 29, 30, 31  # axis 0: the shared im2col matrix and counters, per call
WINOGRAD_X, WINOGRAD_V, WINOGRAD_MO, WINOGRAD_Y, WINOGRAD_Z, WINOGRAD_HAS_Z, WINOGRAD_SYNC = 13, 15, 16, 17, 20, 22, 24
WINOGRAD_VS, WINOGRAD_MS = 27, 28  # floats between the 16 matrices of the scratch at WINOGRAD_V, WINOGRAD_MO


class Job:
    """A job's arguments, worked out once: ``post()`` runs it (shared with the helper in a run).

    A kernel prepared for one node (conv.PreparedConv) keeps the job of its first call and posts
    it again with new operand addresses, skipping the checks and set-up. ``keep`` holds every
    array whose address ``values`` (or ``table``, a GEMM's B operands) holds, so none of them is
    freed while the job may still run."""
    __slots__ = ("values", "floats", "chunks", "table", "keep")

    def __init__(self, values, floats, chunks, keep, table=None):
        self.values = np.asarray(values, dtype=np.int64)
        self.floats, self.chunks, self.keep, self.table = tuple(floats), chunks, keep, table

    def post(self) -> None:
        jobs = getattr(_RECORDING, "jobs", None)
        if jobs is not None:
            jobs.append(self)
        _POOL.run(self.values, self.floats, self.chunks)


_RECORDING = threading.local()


@contextlib.contextmanager
def recording():
    """Collect (in a list) the jobs this thread posts meanwhile."""
    before = getattr(_RECORDING, "jobs", None)
    _RECORDING.jobs = jobs = []
    try:
        yield jobs
    finally:
        _RECORDING.jobs = before


# ---- kernels as jobs ----------------------------------------------------------------------------
ALIGN = 16  # chunk boundaries on whole SIMD vectors / GEMM micro-tiles
BLOCK_BYTES = 512 * 1024  # a GEMM block with an epilogue: its output and input columns, in L2
BLOCK_MIN = 256  # columns; narrower blocks pay OpenBLAS's per-call cost too often
IM2COL_PARTS = 4  # channel ranges a shared im2col matrix is made in (im2col_gemm, axis 0)
WINOGRAD_PARTS = 8  # channel ranges of Winograd's input and output phases


@njit(nogil=True, cache=True)
def _address(a):
    """The address of a's first element (5x quicker than ``a.ctypes.data`` from Python)."""
    return a.ctypes.data


def _split(total: int, parts: int = 2) -> tuple[int, int]:
    """(step, chunks) cutting ``total`` into ``parts`` bands aligned to ALIGN (one if too small)."""
    if total < parts * ALIGN:
        return max(total, 1), 1
    step = -(-total // parts)
    step = -(-step // ALIGN) * ALIGN
    return step, -(-total // step)


def gemm_sum(a: np.ndarray, taps: list, c: np.ndarray, beta: float = 0.0, bias=None, z=None,
             act=None, bias_axis: int = 0) -> np.ndarray:
    """``c = beta * c + sum_t a[t] @ taps[t]`` in place, float32: a (T, M, K) whose a[t] are
    row-major 2-D windows (any row stride; a weight stack, contiguous) or all transposes of
    row-major windows (X.T of an NCHW image, for a channels-last output), taps[t] (K, N) and
    c (M, N) row-major windows (the taps may instead all be transposes of row-major windows, B.T
    of a Gemm's (N, K) weight or of a channels-last image). Cut into two bands of rows, or of
    columns when N is the bigger side, one per thread.

    With ``act`` = (code, lo, hi, alpha) of fk.scalars, the FusedConv epilogue follows on each
    band while it is in cache: ``c = act(c + bias + z)``, bias contiguous or None, one value per
    row (M,) or with ``bias_axis`` 1 per column (N,), z an (M, N) row-major window (or one row
    broadcast to M rows) or None; with a bias per row, the same bits as fk.epilogue afterwards."""
    fn, ilp64 = _blas.sgemm_address()
    t, m, k = a.shape
    n = c.shape[1]
    if (c.shape[0] != m or len(taps) != t or any(v.shape != (k, n) for v in taps)
            or (z is not None and z.shape != c.shape)
            or (bias is not None and (bias.shape != ((m,), (n,))[bias_axis] or not bias.flags.c_contiguous))):
        raise ValueError(f"gemm_sum: {a.shape} @ {[v.shape for v in taps]} -> {c.shape} does not fit")
    if m == 0 or n == 0:
        return c
    code, lo, hi, alpha = act if act is not None else (0, 0.0, 0.0, 0.0)
    if k == 0 or t == 0:  # nothing to multiply: c = beta * c, then the epilogue
        c *= beta
        if act is not None:
            if bias is not None and bias_axis == 1:
                c += bias
            fk._epilogue(c, bias if bias is not None and bias_axis == 0 else np.zeros(0, np.float32),
                         bias is not None and bias_axis == 0, z if z is not None else c, z is not None,
                         code, lo, hi, alpha, 0, m)
        return c
    trans_a, lda = _window_ld(a[0], "a[t]")
    a_tap = a.strides[0] // F32 if t > 1 else 0
    if t > 1 and (a.strides[0] % F32 or a.strides[0] < 0 or _window_ld(a[1], "a[t]")[0] != trans_a):
        raise ValueError("gemm_sum: a[t] must be evenly spaced windows of one kind")
    table = np.empty((t, 2), dtype=np.int64)
    trans_b = _window_ld(taps[0], "taps[t]")[0]
    for i, v in enumerate(taps):
        transposed, ld = _window_ld(v, "taps[t]")
        if transposed != trans_b:
            raise ValueError("gemm_sum: taps must all be row-major windows, or all transposed ones")
        table[i] = _address(v), ld
    axis = 1 if n >= 2 * m else 0
    step, chunks = _split(n if axis else m)
    block = step
    if act is not None:  # a block's output and its input columns (or rows) stay in L2 together
        block = max(BLOCK_MIN, BLOCK_BYTES // (F32 * ((m if axis else n) + k)) // ALIGN * ALIGN)
    bias_mode = 0 if bias is None else 1 + bias_axis
    Job((GEMM, fn, ilp64, m, n, k, _address(a), lda, a_tap, _address(c), _blas.ld(c), t,
         _address(table), axis, step, act is not None, _address(bias if bias is not None else c),
         bias_mode, _address(z if z is not None else c), _ld_or_broadcast(z), z is not None, code,
         block, trans_b, trans_a), (beta, lo, hi, alpha), chunks, (a, *taps, c, bias, z, table), table).post()
    return c


def im2col_gemm(x: np.ndarray, w: np.ndarray, kernel, strides, dilations, pads_begin, out, y: np.ndarray,
                bias=None, z=None, act=None, block=None, axis=None) -> np.ndarray:
    """``y = W @ im2col(x)`` for one image, float32: x (C, H, W) and w (M, C*KH*KW) contiguous, y
    (M, OH*OW) contiguous; with ``act`` (fk.scalars) the FusedConv epilogue ``y = act(y + bias +
    z)`` (bias (M,) contiguous, z an (M, OH*OW) row-major window or None) on each block.

    With at least twice as many output pixels as channels (``axis`` 1, the default then), the
    pixels are cut into two bands, one per thread, each made ``block`` columns at a time from an
    im2col block that stays in cache; else (axis 0) the whole im2col matrix is made once, both
    threads making part of it, and each multiplies a band of W's rows by it (see the job)."""
    fn, ilp64 = _blas.sgemm_address()
    c, h, wd = x.shape
    m, k = w.shape
    p = y.shape[1]
    if (k != c * kernel[0] * kernel[1] or y.shape[0] != m or p != out[0] * out[1] or not x.flags.c_contiguous
            or not w.flags.c_contiguous or not y.flags.c_contiguous or (z is not None and z.shape != y.shape)):
        raise ValueError(f"im2col_gemm: {w.shape} @ im2col{x.shape} -> {y.shape} does not fit")
    code, lo, hi, alpha = act if act is not None else (-1, 0.0, 0.0, 0.0)
    if axis is None:
        axis = 1 if p >= 2 * m else 0
    if axis == 1:
        if block is None:
            block = max(ALIGN, BLOCK_BYTES // (F32 * (m + k)) // ALIGN * ALIGN)
        step, chunks = block, -(-p // block)  # a block per chunk: a helper that starts late still takes its share
    else:
        step, chunks = _split(m)
        block = 0
    values = np.array((IM2COL_GEMM, fn, ilp64, m, k, p, _address(w), _address(x), c, h, wd, kernel[0], kernel[1],
                       strides[0], strides[1], dilations[0], dilations[1], pads_begin[0], pads_begin[1], out[1],
                       _address(y), _address(bias if bias is not None else y), bias is not None,
                       _address(z if z is not None else y), _ld_or_broadcast(z), z is not None, code, step, block,
                       axis, 0, 0, IM2COL_PARTS, _POOL.state[YIELD]), dtype=np.int64)
    scratch = fresh_scratch(values)  # axis 0: the shared matrix and its counters
    Job(values, (0.0, lo, hi, alpha), chunks, (x, w, y, bias, z) + scratch).post()
    return y


WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def winograd_weights(w: np.ndarray) -> np.ndarray:
    """U (16, M, C) float32 for winograd3x3: U[4i + j] = (G g G^T)[i, j] of each 3x3 kernel g of
    w (M, C, 3, 3), worked out in float64."""
    u = np.einsum("ai,mcij,bj->abmc", WINOGRAD_G, w.astype(np.float64), WINOGRAD_G)
    return np.ascontiguousarray(u.reshape(16, w.shape[0], w.shape[1]), dtype=np.float32)


def winograd3x3(x: np.ndarray, u: np.ndarray, pads_begin, out, y: np.ndarray, bias=None, z=None,
                act=None) -> np.ndarray:
    """``y`` = the stride-1, undilated 3x3 convolution of one image by Winograd F(2x2, 3x3),
    float32: x (C, H, W) contiguous, u = winograd_weights(w), y (M, OH*OW) contiguous for ``out``
    = (OH, OW) with ``pads_begin`` (the end pads follow from the sizes); with ``act``
    (fk.scalars) the FusedConv epilogue ``y = act(y + bias + z)`` (bias (M,), z an (M, OH*OW)
    row-major window or None) on each output row. 2.25x fewer multiplications than the direct
    sum; the result differs from it by rounding only (additions in a different order)."""
    fn, ilp64 = _blas.sgemm_address()
    c, h, wd = x.shape
    m = u.shape[1]
    if (u.shape != (16, m, c) or y.shape != (m, out[0] * out[1]) or not x.flags.c_contiguous
            or not u.flags.c_contiguous or not y.flags.c_contiguous or (z is not None and z.shape != y.shape)
            or min(out) < 1):
        raise ValueError(f"winograd3x3: {u.shape} by {x.shape} -> {y.shape} does not fit")
    code, lo, hi, alpha = act if act is not None else (-1, 0.0, 0.0, 0.0)
    th, tw = -(-out[0] // 2), -(-out[1] // 2)
    vs, ms = _winograd_stride(c * th * tw), _winograd_stride(m * th * tw)
    values = np.array((WINOGRAD, fn, ilp64, m, c, h, wd, pads_begin[0], pads_begin[1], out[0], out[1], th, tw,
                       _address(x), _address(u), 0, 0, _address(y), _address(bias if bias is not None else y),
                       bias is not None, _address(z if z is not None else y), _ld_or_broadcast(z), z is not None,
                       code, 0, _POOL.state[YIELD], WINOGRAD_PARTS, vs, ms), dtype=np.int64)
    scratch = fresh_scratch(values)
    Job(values, (0.0, lo, hi, alpha), 2, (x, u, y, bias, z) + scratch).post()
    return y


def _winograd_stride(size: int) -> int:
    """Floats between two of Winograd's 16 matrices: ``size`` rounded up to 4 KiB, plus one cache
    line. Both transforms read or write the 16 at once; 4 KiB apart (64x64 channels, 28x28
    tiles) their streams fell in one set of the L1 cache and the output transform ran 2x slower."""
    return -(-size // 1024) * 1024 + 16


def scratch_slots(values: np.ndarray) -> tuple:
    """Where a job (by its ``values``) holds the addresses of scratch made afresh for each call:
    the shared im2col matrix of im2col_gemm's axis 0, Winograd's transformed tiles, their
    counters. A replay (conv's PreparedConv) makes new ones with ``fresh_scratch``."""
    if values[0] == IM2COL_GEMM and values[IM2COL_AXIS] == 0:
        return IM2COL_COL, IM2COL_SYNC
    if values[0] == WINOGRAD:
        return WINOGRAD_V, WINOGRAD_MO, WINOGRAD_SYNC
    return ()


def fresh_scratch(values: np.ndarray) -> tuple:
    """New scratch for the job of ``values``, its addresses written into ``values``; returns the
    arrays, to keep alive until the job is done."""
    kind = values[0]
    if kind == IM2COL_GEMM and values[IM2COL_AXIS] == 0:
        sizes = (values[IM2COL_K] * values[IM2COL_P],)
    elif kind == WINOGRAD:
        sizes = (16 * values[WINOGRAD_VS], 16 * values[WINOGRAD_MS])
    else:
        return ()
    arrays = tuple(np.empty(n, dtype=np.float32) for n in sizes) + (np.zeros(SYNC_WORDS, dtype=np.int64),)
    for slot, a in zip(scratch_slots(values), arrays):
        values[slot] = _address(a)
    return arrays


def _window_ld(v: np.ndarray, what: str) -> tuple[bool, int]:
    """(transposed, leading dimension) of a 2-D operand v: a row-major window, or (transposed
    True) the transpose of one."""
    try:
        return False, _blas.ld(v)
    except ValueError:
        pass
    try:
        return True, _blas.ld(v.T)
    except ValueError:
        raise ValueError(f"gemm_sum: {what} with strides {v.strides} is not a row-major window "
                         "or its transpose") from None


def _ld_or_broadcast(z) -> int:
    """Leading dimension of the residual z; 0 for one row broadcast over all rows (a Gemm's C)."""
    if z is None:
        return 0
    if z.shape[0] > 1 and z.strides[0] == 0:
        _blas.ld(z[:1])
        return 0
    return _blas.ld(z)


def depthwise(x, fill, taps, w, b, sh, sw, ph, pw, code, lo, hi, alpha, y) -> None:
    """The 3x3 depthwise kernel (fk._depthwise3x3) over all planes, float32, contiguous arrays,
    planes split between the threads."""
    n, c, h, wd = x.shape
    oh, ow = y.shape[2:]
    step, chunks = _split(n * c)
    bias = b if b is not None else y  # any float32 pointer; unused without a bias
    Job((DEPTHWISE, n, c, h, wd, oh, ow, fill.shape[0], sh, sw, ph, pw, b is not None, code, step,
         _address(x), _address(fill), _address(taps), _address(w), _address(bias), _address(y)),
        (lo, hi, alpha), chunks, (x, fill, taps, w, bias, y)).post()


def depthwise_nhwc(x, wt, b, strides, pb, code, lo, hi, alpha, y) -> None:
    """The channels-last 3x3 depthwise kernel (fk._depthwise3x3_nhwc), float32, x (N, H, W, C)
    and y (N, OH, OW, C) contiguous, wt (9, C); output rows split between the threads."""
    n, h, wd, c = x.shape
    oh, ow = y.shape[1:3]
    rows = n * oh
    step = -(-rows // 2)  # rows hold whole vectors already: no alignment needed
    zero = np.zeros(c, dtype=np.float32)
    Job((DEPTHWISE_NHWC, n, c, h, wd, oh, ow, strides[0], strides[1], pb[0], pb[1], b is not None, code, step,
         _address(x), _address(wt), _address(b if b is not None else zero), _address(zero), _address(y)),
        (lo, hi, alpha), -(-rows // step), (x, wt, b, zero, y)).post()


def max_pool(x, fill, taps, sh, sw, ph, pw, y) -> None:
    """The 3x3 MaxPool kernel (fk._max3x3) over all planes, float32, contiguous x and y, planes
    split between the threads."""
    n, c, h, wd = x.shape
    oh, ow = y.shape[2:]
    step, chunks = _split(n * c)
    _POOL.run((MAX_POOL, n, c, h, wd, oh, ow, fill.shape[0], sh, sw, ph, pw, step, _address(x), _address(fill),
               _address(taps), _address(y)), (), chunks)


def epilogue(rows: np.ndarray, b, m: int, z, code, lo, hi, alpha) -> None:
    """fk._epilogue over all rows of rows (R, P), float32 contiguous, rows split between threads."""
    r, p = rows.shape
    step, chunks = _split(r) if r * p >= 4096 else (max(r, 1), 1)
    _POOL.run((EPILOGUE, r, p, m, b is not None, z is not None, code, step, _address(rows),
               _address(b if b is not None else rows), _address(z if z is not None else rows)),
              (lo, hi, alpha), chunks)
