"""Compiled helpers for kernels that walk an image plane by plane (3x3 depthwise, 3x3 max pool)
and for gathering strided runs (im2col).

A plane is first split by stride phase into a small buffer that stays in cache
(``fill_plane``), so every tap of a 3x3 window is a contiguous run of it (``tap_runs``) and the
inner loop vectorizes; results land on an (OH, PW) grid whose columns >= OW are junk, and
``crop`` keeps the first OW of each row. The phases' geometry is geometry.phases3x3.
"""
from __future__ import annotations

import numpy as np
from numba import njit

VECTOR_BLOCK = 64  # a plane's tap loop runs over whole blocks of this many elements (see grid_size)


@njit(inline="always")
def grid_size(oh, pw):
    # The tap loop runs over whole blocks of VECTOR_BLOCK elements: the compiler's vector loop
    # handles a multiple of its (unrolled) width and leaves the rest to a scalar loop, which for
    # small planes (7x7 gives a 63-element grid) would be the whole plane. The extra elements
    # read the buffer's spare tail and land in the junk part of the grid.
    return -(-oh * pw // VECTOR_BLOCK) * VECTOR_BLOCK


@njit(inline="always")
def gather_at(dst, d, src, s, cols, step):
    # dst[d + q] = src[s + q * step]; the common steps get loops of their own (a constant step
    # lets the copy vectorize). Unsigned indices spare numba's negative-index wraparound check;
    # offsets into whole arrays instead of slices spare building a slice per run.
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
def fill_plane(buf, plane, fill, sh, sw, pw):
    # Phase p of the padded plane, flattened into buf[p]: fill[p] = (a0, ys, rows, b0, xs, cols)
    # says that rows a0.. and columns b0.. of the phase hold plane[ys::sh, xs::sw]. The padding
    # cells are never written: the caller fills them once.
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
                gather_at(buf[p, (a0 + a) * pw + b0:], 0, plane[ys + a * sh, xs:], 0, cols, sw)
            p += 1


@njit(inline="always")
def tap_runs(buf, taps, size):
    # The nine taps of a 3x3 window as contiguous runs of the phase buffer.
    return (buf[taps[0, 0], taps[0, 1]:taps[0, 1] + size], buf[taps[1, 0], taps[1, 1]:taps[1, 1] + size],
            buf[taps[2, 0], taps[2, 1]:taps[2, 1] + size], buf[taps[3, 0], taps[3, 1]:taps[3, 1] + size],
            buf[taps[4, 0], taps[4, 1]:taps[4, 1] + size], buf[taps[5, 0], taps[5, 1]:taps[5, 1] + size],
            buf[taps[6, 0], taps[6, 1]:taps[6, 1] + size], buf[taps[7, 0], taps[7, 1]:taps[7, 1] + size],
            buf[taps[8, 0], taps[8, 1]:taps[8, 1] + size])


@njit(inline="always")
def crop(grid, plane, pw):
    # plane (OH, OW) = the first OW columns of each row of the (OH, PW) result grid.
    oh, ow = plane.shape
    for r in range(oh):
        src, dst = grid[r * pw:r * pw + ow], plane[r]
        for o in range(ow):
            dst[o] = src[o]
