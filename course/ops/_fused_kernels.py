"""Compiled loops behind FusedConv: bias + residual + activation in one pass, and a 3x3
depthwise convolution with the bias and activation fused into its inner loop.

After a GEMM-based convolution numpy would add the bias in one pass, the residual in another and
apply a Clip in two more; ``_epilogue`` does all of it in one pass. numpy's depthwise Conv makes
a multiply and an add pass over the whole output per kernel tap (18 passes for 3x3), which is
memory-bound; ``_depthwise3x3`` finishes each output element in a register (nine products, bias,
activation, one store). Each input plane is first split by stride phase into a small buffer
that stays in cache, so every tap is a contiguous run and the inner loop vectorizes. The
arithmetic follows ``conv.conv_core``'s depthwise path exactly (taps row-major, each product
rounded then added, bias last; numba does not contract ``v += x * w`` into an FMA without
fastmath), so results are bit for bit those of Conv then the activation.

``_depthwise3x3_nhwc`` is the same convolution for an input laid out channels last (what the
plan asks MobileNet's 1x1 convolutions to write, conv.channels_last_hints): one loop over the
channels per output pixel, so the SIMD lanes are full however small the plane, and the same bits.

The loops take a range (planes k0..k1, rows r0..r1) and have no threads of their own: in a
session run, float32 calls are cut in two and shared with the helper thread of
course/ops/_parallel.py (Python threads or numba's workqueue / OpenMP layers cost ~50 us per
wake-up, as much as a small layer).

This module imports numba: course/ops/fused_conv.py imports it on first use, so ``import course``
stays light. The loops are compiled on first call and cached on disk (``cache=True``).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

from course.ops import _window as win

VECTOR_BLOCK = 64  # see _depthwise3x3
ACT_CODES = {None: 0, "Identity": 0, "Relu": 1, "Clip": 2, "LeakyRelu": 3}


def _pointer_from(element):
    """An intrinsic turning an int64 address into a pointer to ``element`` (for numba.carray:
    an array over raw memory has no reference count to update, unlike a view)."""
    @intrinsic
    def cast(typingctx, addr):
        sig = types.CPointer(element)(types.int64)

        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(sig.return_type))
        return sig, codegen
    return cast


f32_ptr = _pointer_from(types.float32)
i64_ptr = _pointer_from(types.int64)


@njit(inline="always")
def _activate(v, act, lo, hi, alpha):
    if act == 1 or act == 2:  # Relu is Clip(0, +inf); max first, then min
        v = lo if v < lo else v  # NaN stays NaN, as with np.maximum
        if act == 2:
            v = hi if v > hi else v
    elif act == 3:
        v = v * alpha if v < 0 else v
    return v


@njit(inline="always")
def _gather_row(dst, src, cols, step):
    # dst[q] = src[q * step]
    _gather_at(dst, 0, src, 0, cols, step)


@njit(inline="always")
def _gather_at(dst, d, src, s, cols, step):
    # dst[d + q] = src[s + q * step]; the common steps get loops of their own (a constant step
    # lets the copy vectorize). Unsigned indices spare numba's negative-index wraparound check;
    # offsets into whole arrays instead of slices spare building a slice per run (~20 % on
    # im2col's runs of 28-56 elements).
    if step == 1:
        for q in range(cols):
            dst[np.uintp(d + q)] = src[np.uintp(s + q)]
    elif step == 2:
        for q in range(cols):
            dst[np.uintp(d + q)] = src[np.uintp(s + 2 * q)]
    else:
        for q in range(cols):
            dst[np.uintp(d + q)] = src[np.uintp(s + q * step)]


@njit(inline="always")
def _deinterleave(even, odd, src, n_even, n_odd):
    # even[q] = src[2q], odd[q] = src[2q + 1]: one pass over src that the compiler vectorizes
    # (two stride-2 gathers would each read the whole row).
    both = min(n_even, n_odd)
    for q in range(both):
        even[q] = src[np.uintp(2 * q)]
        odd[q] = src[np.uintp(2 * q + 1)]
    for q in range(both, n_even):
        even[q] = src[np.uintp(2 * q)]
    for q in range(both, n_odd):
        odd[q] = src[np.uintp(2 * q + 1)]


@njit(inline="always")
def im2col_block(x, c0, c1, h, w, kh, kw, sh, sw, dh, dw, pt, pl, ow_, b0, b1, col):
    # The im2col matrix of one image x (C*H*W, flat), columns b0..b1 only (output pixels in
    # row-major (OH, OW) order), into col (C*KH*KW rows of b1 - b0, flat): row (c, i, j) holds
    # x[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw] for each of those pixels, 0 outside x; only the
    # rows of channels c0..c1 are written (the others are another caller's part). Each
    # output row's stretch of a tap is a strided run of one input row between two zero runs; the
    # run's bounds depend on the output row and j only, so they are worked out once for all c, i.
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
                    _gather_at(col, d + lo - o0, x, (c * h + ih) * w + lo * sw + off, hi - lo, sw)
                    for q in range(hi - o0, o1 - o0):
                        col[np.uintp(d + q)] = 0.0
        p += o1 - o0


# ---- Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
# 2016): a 2x2 block of a stride-1 3x3 convolution's output from a 4x4 tile of its input with 16
# multiplications per input channel instead of 36, Y = A^T [(G g G^T) * (B^T d B)] A, with
#   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
#   A^T = [1 1 1 0; 0 1 -1 -1].
# The products over the channels are 16 GEMMs, one per element e = 4 * i + j of the 4x4 tiles:
# M[e] (M, T) = U[e] (M, C) @ V[e] (C, T) for T tiles; U = G g G^T is made once per weight.


@njit(inline="always")
def winograd_input(x, c0, c1, h, w, pt, pl, th_n, tw_n, vs, v, rows, ev, od):
    # V[e, c, t] = (B^T d B)[e] for channels c0..c1 of one image x (C*H*W, flat), d the 4x4 tile
    # of the zero-padded input at row 2*th - pt, column 2*tw - pl, t = th * tw_n + tw; v flat,
    # element e's (C, th_n * tw_n) matrix at e * vs. Per tile row: the 4 input rows (padded, 2 * tw_n + 2 wide, in
    # ``rows``), their B^T combinations split into even and odd columns (``ev``, ``od``: 4 rows
    # of tw_n + 1), then each of the 16 outputs is a contiguous run over the tiles of the row.
    wp = 2 * tw_n + 2
    nt = th_n * tw_n
    lo = min(wp, max(0, pl))
    hi = max(lo, min(wp, w + pl))
    for c in range(c0, c1):
        for th in range(th_n):
            for a in range(4):
                ih = 2 * th - pt + a
                if ih < 0 or ih >= h:
                    for q in range(wp):
                        rows[a, q] = 0.0
                    continue
                for q in range(lo):
                    rows[a, q] = 0.0
                src = (c * h + ih) * w - pl
                for q in range(lo, hi):
                    rows[a, q] = x[np.uintp(src + q)]
                for q in range(hi, wp):
                    rows[a, q] = 0.0
            for q in range(tw_n + 1):
                e, o = 2 * q, 2 * q + 1
                ev[0, q] = rows[0, e] - rows[2, e]
                od[0, q] = rows[0, o] - rows[2, o]
                ev[1, q] = rows[1, e] + rows[2, e]
                od[1, q] = rows[1, o] + rows[2, o]
                ev[2, q] = rows[2, e] - rows[1, e]
                od[2, q] = rows[2, o] - rows[1, o]
                ev[3, q] = rows[1, e] - rows[3, e]
                od[3, q] = rows[1, o] - rows[3, o]
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
def winograd_output(mo, m0, m1, st, th_n, tw_n, oh_, ow_, y, out, bias, has_bias, z, ldz, has_z, act,
                    lo, hi, alpha, epi):
    # Y[m, 2*th + a, 2*tw + b] = (A^T M A)[a, b] for channels m0..m1, from mo flat: element e's
    # (M, T) matrix at e * st;
    # y flat (mt, oh_, ow_); the FusedConv epilogue (with ``epi``) on each output row, z flat
    # with ldz between channels. ``out``: 2 scratch rows of 2 * tw_n.
    nt = th_n * tw_n
    for m in range(m0, m1):
        for th in range(th_n):
            b0 = m * nt + th * tw_n
            for q in range(tw_n):
                p = np.uintp(b0 + q)
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
            for a in range(2):
                oh = 2 * th + a
                if oh >= oh_:
                    break
                d = (m * oh_ + oh) * ow_
                row = y[d:d + ow_]
                for q in range(ow_):
                    row[q] = out[a, q]
                if epi:
                    zs = m * ldz + oh * ow_
                    epilogue_row(row, bias[m] if has_bias else lo, 1 if has_bias else 0, bias[0:0],
                                 z[zs:zs + ow_] if has_z else z[0:0], has_z, act, lo, hi, alpha)


@njit(cache=True, nogil=True)
def _epilogue(y, b, has_bias, z, has_z, act, lo, hi, alpha, r0, r1):
    # y: (N*M, P) contiguous, rows r0..r1 updated in place: y = act(y + b[row % M] + z).
    # Bias first, then the residual: the order of Conv (y += B), then Add(z, y).
    # Unused operands are empty slices, not y[r]: see _parallel._epilogue_block.
    m = b.shape[0] if has_bias else 1
    for r in range(r0, r1):
        epilogue_row(y[r], b[r % m] if has_bias else lo, 1 if has_bias else 0, b[0:0], z[r] if has_z else b[0:0],
                     has_z, act, lo, hi, alpha)


@njit(inline="always")
def epilogue_row(row, bias, bias_mode, bias_row, zrow, has_z, act, lo, hi, alpha):
    # row = act(row + bias + zrow), element by element; bias_mode 0: no bias, 1: the scalar
    # ``bias``, 2: ``bias_row[o]`` per element (a channels-last output's per-column bias). zrow is
    # unused without has_z. Also the epilogue that course/ops/_parallel.py runs in each GEMM band.
    for o in range(row.shape[0]):
        v = row[o]
        if bias_mode == 1:
            v += bias
        elif bias_mode == 2:
            v += bias_row[o]
        if has_z:
            v += zrow[o]
        row[o] = _activate(v, act, lo, hi, alpha)


@njit(inline="always")
def _fill_plane(buf, plane, fill, sh, sw, pw):
    # Phase p of the zero-padded plane, flattened into buf[p]: fill[p] = (a0, ys, rows, b0, xs,
    # cols) says that rows a0.. and columns b0.. of the phase hold plane[ys::sh, xs::sw].
    p = 0
    while p < fill.shape[0]:
        a0, ys, rows, b0, xs, cols = fill[p, 0], fill[p, 1], fill[p, 2], fill[p, 3], fill[p, 4], fill[p, 5]
        if sw == 2 and p + 1 < fill.shape[0] and fill[p + 1, 1] == ys and xs + fill[p + 1, 4] == 1:
            # the two column phases of one row phase: split each input row in one pass
            e, o = (p, p + 1) if xs == 0 else (p + 1, p)
            for a in range(rows):
                _deinterleave(buf[e, (a0 + a) * pw + fill[e, 3]:], buf[o, (a0 + a) * pw + fill[o, 3]:],
                              plane[ys + a * sh], fill[e, 5], fill[o, 5])
            p += 2
        else:
            for a in range(rows):
                _gather_row(buf[p, (a0 + a) * pw + b0:], plane[ys + a * sh, xs:], cols, sw)
            p += 1


@njit(inline="always")
def _tap_runs(buf, taps, size):
    # The nine taps of a 3x3 window as contiguous runs of the phase buffer (see _depthwise3x3).
    return (buf[taps[0, 0], taps[0, 1]:taps[0, 1] + size], buf[taps[1, 0], taps[1, 1]:taps[1, 1] + size],
            buf[taps[2, 0], taps[2, 1]:taps[2, 1] + size], buf[taps[3, 0], taps[3, 1]:taps[3, 1] + size],
            buf[taps[4, 0], taps[4, 1]:taps[4, 1] + size], buf[taps[5, 0], taps[5, 1]:taps[5, 1] + size],
            buf[taps[6, 0], taps[6, 1]:taps[6, 1] + size], buf[taps[7, 0], taps[7, 1]:taps[7, 1] + size],
            buf[taps[8, 0], taps[8, 1]:taps[8, 1] + size])


@njit(inline="always")
def _crop(grid, plane, pw):
    # plane (OH, OW) = the first OW columns of each row of the (OH, PW) result grid.
    oh, ow = plane.shape
    for r in range(oh):
        src, dst = grid[r * pw:r * pw + ow], plane[r]
        for o in range(ow):
            dst[o] = src[o]


@njit(cache=True, nogil=True)
def _depthwise3x3(x, fill, taps, w, b, has_bias, sh, sw, ph, pw, act, lo, hi, alpha, y, k0, k1):
    # Plane by plane: the zero-padded input plane is split by stride phase into a small buffer
    # (_fill_plane), so tap t is the contiguous run buf[taps[t, 0], taps[t, 1]:][:oh * pw] (the
    # "shifted flat view" of _window.flat_taps). Results land on an (oh, pw) grid whose columns
    # >= ow are junk, so a plane is one long vectorizable loop, then a crop. The buffer holds one
    # plane and stays in cache (splitting the whole tensor first would write it all out and read
    # it back); its padding cells are zeroed once and never written, so they stay zero.
    # Planes k0..k1 (of N*C) only: course/ops/_parallel.py gives each thread its own range.
    n, c, oh, ow = y.shape
    # The tap loop runs over whole blocks of VECTOR_BLOCK elements: the compiler's vector loop
    # handles a multiple of its (unrolled) width and leaves the rest to a scalar loop, which for
    # small planes (7x7 gives a 63-element grid) would be the whole plane. The extra elements
    # read zeros past the end of the buffer and land in the junk part of the grid.
    size = -(-oh * pw // VECTOR_BLOCK) * VECTOR_BLOCK
    buf = np.zeros((fill.shape[0], ph * pw + size - oh * pw), dtype=x.dtype)
    grid = np.empty(size, dtype=y.dtype)
    for k in range(k0, k1):
        i, ch = k // c, k % c
        _fill_plane(buf, x[i, ch], fill, sh, sw, pw)
        w0, w1, w2 = w[ch, 0, 0, 0], w[ch, 0, 0, 1], w[ch, 0, 0, 2]
        w3, w4, w5 = w[ch, 0, 1, 0], w[ch, 0, 1, 1], w[ch, 0, 1, 2]
        w6, w7, w8 = w[ch, 0, 2, 0], w[ch, 0, 2, 1], w[ch, 0, 2, 2]
        bias = b[ch] if has_bias else w0  # unused without a bias
        t0, t1, t2, t3, t4, t5, t6, t7, t8 = _tap_runs(buf, taps, size)
        for j in range(size):  # taps in row-major order, as numpy's Conv adds them
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
            grid[j] = _activate(v, act, lo, hi, alpha)
        _crop(grid, y[i, ch], pw)


@njit(inline="always")
def _max(a, b):
    # np.maximum's rule: a NaN on either side wins; otherwise the larger (of equal values, +0.0
    # and -0.0, either may come back: numpy's own loops differ there).
    return a if a >= b or a != a else b


@njit(cache=True, nogil=True)
def _max3x3(x, fill, taps, sh, sw, ph, pw, lowest, y, k0, k1):
    # MaxPool over a 3x3 window, planes k0..k1 of N*C, as _depthwise3x3 walks them: each plane
    # split by stride phase into a buffer whose padding holds ``lowest`` (so a padding cell never
    # wins), every tap a contiguous run, results on an (oh, pw) grid then cropped. Taps are taken
    # in row-major order with np.maximum's rule, so the result is _window.flat_taps + np.maximum's.
    n, c, oh, ow = y.shape
    size = -(-oh * pw // VECTOR_BLOCK) * VECTOR_BLOCK
    buf = np.full((fill.shape[0], ph * pw + size - oh * pw), lowest, dtype=x.dtype)
    grid = np.empty(size, dtype=y.dtype)
    for k in range(k0, k1):
        i, ch = k // c, k % c
        _fill_plane(buf, x[i, ch], fill, sh, sw, pw)
        t0, t1, t2, t3, t4, t5, t6, t7, t8 = _tap_runs(buf, taps, size)
        for j in range(size):
            v = _max(t0[j], t1[j])
            v = _max(v, t2[j])
            v = _max(v, t3[j])
            v = _max(v, t4[j])
            v = _max(v, t5[j])
            v = _max(v, t6[j])
            v = _max(v, t7[j])
            grid[j] = _max(v, t8[j])
        _crop(grid, y[i, ch], pw)


@njit(inline="always")
def _vector(addr, n):
    return carray(f32_ptr(addr), (n,))


@njit(cache=True, nogil=True)
def _depthwise3x3_nhwc(x, wt, b, has_bias, sh, sw, pt, pl, act, lo, hi, alpha, zero, y, r0, r1):
    # Channels last: x (N, H, W, C) -> y (N, OH, OW, C), float32, contiguous; output rows r0..r1
    # of all N*OH. Each output position is one loop over the channels: nine source vectors
    # (an input pixel's C channels, or ``zero``, C zeros, where the tap falls in the padding),
    # nine weight vectors wt[t] (wt is (9, C)), one output vector: the channels fill the SIMD
    # lanes whatever the plane size, and no plane is copied or cropped. Same sums in the same
    # order as _depthwise3x3 (a padding tap adds 0 * w there too), so the same bits.
    # The sources are arrays over raw addresses (_vector): views would update reference counts
    # nine times per position, which costs as much as the arithmetic of a 144-channel position.
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
            for ch in range(c):  # taps in row-major order, as numpy's Conv adds them
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
                dst[ch] = _activate(v, act, lo, hi, alpha)


def scalars(dtype, activation, params):
    """(code, lo, hi, alpha) for the kernels; typed scalars keep their arithmetic in x's dtype."""
    return _scalars(np.dtype(dtype), activation, tuple(params))


@lru_cache(maxsize=64)
def _scalars(dtype, activation, params):
    t = dtype.type
    lo = t(params[0]) if activation == "Clip" else t(0)
    hi = t(params[1]) if activation == "Clip" else t(0)
    alpha = t(params[0]) if activation == "LeakyRelu" else t(0)
    return ACT_CODES[activation], lo, hi, alpha


def supports_dtype(y: np.ndarray) -> bool:
    return y.dtype in (np.float32, np.float64)


def epilogue(y: np.ndarray, b, activation, params, z=None) -> np.ndarray:
    """y (N, M, ...) contiguous, in place: y = activation(y + b[m] + z) in one pass. ``z``
    (optional) is a residual of y's shape and dtype."""
    if y.size == 0:
        return y
    code, lo, hi, alpha = scalars(y.dtype, activation, params)
    bias = np.ascontiguousarray(b, dtype=y.dtype) if b is not None else np.zeros(0, y.dtype)
    rows = y.reshape(y.shape[0] * y.shape[1], -1)
    zrows = np.ascontiguousarray(z).reshape(rows.shape) if z is not None else rows
    if y.dtype == np.float32:  # rows shared with the helper thread during a run
        from course.ops import _parallel

        _parallel.epilogue(rows, bias if b is not None else None, bias.shape[0],
                           zrows if z is not None else None, code, lo, hi, alpha)
    else:
        _epilogue(rows, bias, b is not None, zrows, z is not None, code, lo, hi, alpha, 0, rows.shape[0])
    return y


@lru_cache(maxsize=256)
def _plan(in_hw, strides, pads, dilations, auto_pad):
    """Geometry of a 3x3 depthwise conv, computed once per shape: output (OH, OW), stride, the
    phase planes' (PH, PW), ``fill`` and ``taps`` (see _phases), pads at the start, dilations."""
    k, s, p, d = win.spatial_attrs(2, (3, 3), strides, pads, dilations, auto_pad)
    (oh, ow), pb, _ = win.geometry(in_hw, k, s, p, d, auto_pad)
    return ((oh, ow), tuple(s), *_phases(in_hw, (oh, ow), tuple(s), tuple(pb), tuple(d)), tuple(pb), tuple(d))


@lru_cache(maxsize=256)
def _phases(in_hw, out, strides, pads_begin, dilations):
    """A 3x3 window's stride phases: the phase planes' (PH, PW), where each phase's real input
    goes (``fill``, one row per phase: a0, ys, rows, b0, xs, cols, as in _window._phase_axis) and
    each tap's (phase, flat offset) (``taps``, row-major)."""
    (oh, ow), (sh, sw), (dh, dw) = out, strides, dilations
    ph, pw = oh + (2 * dh) // sh + 1, ow + (2 * dw) // sw
    used = sorted({((a * dh) % sh, (q * dw) % sw) for a in range(3) for q in range(3)})
    fill = np.array([win._phase_axis(in_hw[0], r, sh, pads_begin[0], ph)
                     + win._phase_axis(in_hw[1], q, sw, pads_begin[1], pw) for r, q in used],
                    dtype=np.int64).reshape(len(used), 6)
    taps = np.array([(used.index(((a * dh) % sh, (q * dw) % sw)), ((a * dh) // sh) * pw + (q * dw) // sw)
                     for a in range(3) for q in range(3)], dtype=np.int64)
    fill.flags.writeable = taps.flags.writeable = False  # shared by every call with this geometry
    return (ph, pw), fill, taps


def _key(v):
    return None if v is None else tuple(int(i) for i in v)


def depthwise_conv2d(x, w, b, strides, pads, dilations, auto_pad, activation=None, params=()):
    """3x3 depthwise conv of x (N, C, H, W) with w (C, 1, 3, 3), + b, then the activation."""
    (oh, ow), (sh, sw), (ph, pw), fill, taps, pb, dil = _plan(x.shape[2:], _key(strides), _key(pads),
                                                              _key(dilations), auto_pad)
    if x.dtype == np.float32 and dil == (1, 1) and channels_minor(x):
        return _depthwise_nhwc(x, w, b, (oh, ow), (sh, sw), pb, activation, params)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    y = np.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
    code, lo, hi, alpha = scalars(x.dtype, activation, params)
    bias = np.ascontiguousarray(b, dtype=x.dtype) if b is not None else np.zeros(0, x.dtype)
    if x.dtype == np.float32:  # planes shared with the helper thread during a run
        from course.ops import _parallel

        _parallel.depthwise(x, fill, taps, w, bias if b is not None else None, sh, sw, ph, pw, code, lo,
                            hi, alpha, y)
    else:
        _depthwise3x3(x, fill, taps, w, bias, b is not None, sh, sw, ph, pw, code, lo, hi, alpha, y, 0,
                      x.shape[0] * x.shape[1])
    return y


def max_pool3x3(x, out, strides, pads_begin, dilations):
    """MaxPool with a 3x3 window of x (N, C, H, W) float32 (contiguous or not) to ``out``
    (OH, OW), planes shared with the helper thread during a run (_max3x3). ``out`` may come from
    ceil_mode: a window hanging past the padding sees only ``lowest`` there."""
    from course.ops import _parallel

    x = np.ascontiguousarray(x)
    (ph, pw), fill, taps = _phases(x.shape[2:], tuple(out), tuple(strides), tuple(pads_begin), tuple(dilations))
    y = np.empty(x.shape[:2] + tuple(out), dtype=x.dtype)
    if y.size:
        _parallel.max_pool(x, fill, taps, strides[0], strides[1], ph, pw, y)
    return y


def channels_minor(x: np.ndarray) -> bool:
    """True when x (N, C, H, W) is laid out channels last: x.transpose(0, 2, 3, 1) is contiguous
    (what a 1x1 convolution makes for a depthwise one, conv.conv_core's ``channels_last``)."""
    return x.ndim == 4 and x.shape[1] > 1 and x.transpose(0, 2, 3, 1).flags.c_contiguous


def _depthwise_nhwc(x, w, b, out, strides, pb, activation, params):
    """The channels-last 3x3 depthwise conv (_depthwise3x3_nhwc), float32: x channels last in,
    y channels last out (an (N, C, OH, OW) view of an (N, OH, OW, C) array), rows shared with
    the helper thread during a run."""
    from course.ops import _parallel
    from course.ops.conv import _tap_major

    n, c = x.shape[:2]
    wt = _tap_major(w).reshape(9, c)  # (9, C): tap t's weight for every channel, contiguous
    y = np.empty((n,) + tuple(out) + (c,), dtype=x.dtype)
    if y.size == 0:
        return y.transpose(0, 3, 1, 2)
    code, lo, hi, alpha = scalars(x.dtype, activation, params)
    bias = np.ascontiguousarray(b, dtype=x.dtype) if b is not None else None
    _parallel.depthwise_nhwc(x.transpose(0, 2, 3, 1), wt, bias, strides, pb, code, lo, hi, alpha, y)
    return y.transpose(0, 3, 1, 2)
