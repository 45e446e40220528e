"""Sliding-window geometry shared by Conv, pooling and the quantized convolutions.

Output size per spatial axis (ONNX): with explicit pads,
``out = floor_or_ceil((in + pad_begin + pad_end - ((k - 1) * d + 1)) / s) + 1``;
``auto_pad=SAME_*`` gives ``out = ceil(in / s)`` and splits the needed padding, the odd pixel
going to the end (SAME_UPPER) or the beginning (SAME_LOWER); ``VALID`` means no padding.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from course.errors import OpAttributeError, ShapeError
from course.ir.types import Dim

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def spatial_attrs(nsp: int, kernel, strides, pads, dilations, auto_pad: str):
    """Fill defaults and check lengths; returns (kernel, strides, pads, dilations) as lists."""
    if auto_pad not in AUTO_PADS:
        raise OpAttributeError(f"auto_pad {auto_pad!r} is not one of {list(AUTO_PADS)}")
    kernel, strides = list(kernel), list(strides or [1] * nsp)
    dilations, pads = list(dilations or [1] * nsp), list(pads or [0] * (2 * nsp))
    for name, v, n in (("kernel_shape", kernel, nsp), ("strides", strides, nsp),
                       ("dilations", dilations, nsp), ("pads", pads, 2 * nsp)):
        if len(v) != n:
            raise OpAttributeError(f"{name} has {len(v)} values, expected {n} for {nsp} spatial dims")
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1 or min(pads) < 0:
        raise OpAttributeError("kernel_shape, strides and dilations must be >= 1 and pads >= 0")
    return kernel, strides, pads, dilations


def out_dim(size: Dim, k: int, s: int, d: int, pb: int, pe: int, auto_pad: str, ceil: bool = False):
    """(output size, pad_begin, pad_end) of one axis; size may be symbolic (output is None then)."""
    ext = (k - 1) * d + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if not isinstance(size, int):
            return (size if s == 1 else None), None, None
        out = -(-size // s)
        total = max(0, (out - 1) * s + ext - size)
        small = total // 2
        return (out, small, total - small) if auto_pad == "SAME_UPPER" else (out, total - small, small)
    if auto_pad == "VALID":
        pb = pe = 0
    if not isinstance(size, int):
        return None, pb, pe
    span = size + pb + pe - ext
    if span < 0:
        raise ShapeError(f"window of extent {ext} does not fit input size {size} with pads ({pb}, {pe})")
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + pb:  # the last window would start in the end padding
        out -= 1
    return out, pb, pe


def geometry(in_dims: Sequence[Dim], kernel, strides, pads, dilations, auto_pad, ceil=False):
    """Per-axis (out_dims, pads_begin, pads_end) for all spatial axes."""
    n = len(in_dims)
    res = [out_dim(in_dims[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + n], auto_pad, ceil)
           for i in range(n)]
    return [r[0] for r in res], [r[1] for r in res], [r[2] for r in res]


def pad_input(x: np.ndarray, begin, end, value=0) -> np.ndarray:
    """x with its trailing len(begin) axes padded by ``value`` (x itself when no padding)."""
    if not any(begin) and not any(end):
        return x
    lead = x.ndim - len(begin)
    shape = x.shape[:lead] + tuple(n + b + e for n, b, e in zip(x.shape[lead:], begin, end))
    out = np.full(shape, value, dtype=x.dtype)
    out[(Ellipsis,) + tuple(slice(b, b + n) for b, n in zip(begin, x.shape[lead:]))] = x
    return out


def tap_view(xp: np.ndarray, tap: Sequence[int], out_dims, strides, dilations) -> np.ndarray:
    """Strided view of xp: for every output position, the input element under kernel tap ``tap``."""
    sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
               for t, o, s, d in zip(tap, out_dims, strides, dilations))
    return xp[(Ellipsis,) + sl]


def _phase_axis(size: int, r: int, s: int, p: int, length: int):
    """Rows a of phase r (padded index r + a*s) that hold real input: (a0, src_start, count)."""
    a0 = max(0, -(-(p - r) // s))
    src = r + a0 * s - p
    count = 0 if src >= size else min(length - a0, -(-(size - src) // s))
    return a0, src, max(0, count)


def flat_taps(x: np.ndarray, kernel, strides, dilations, pads_begin, out, value=0):
    """2-D windows as contiguous 1-D slices (the "shifted flat view" trick).

    The padded input is split into strides[0]*strides[1] phases (padded[r::s]); each phase is a
    zero-filled (N, C, PH, PW) array. Kernel tap (i, j) then reads one phase at a fixed flat
    offset, so every tap is the contiguous slice ``phase[..., off:off + OH*PW]`` and results are
    computed on an (OH, PW) grid whose columns >= OW are junk and cropped by the caller.
    Returns (taps, PW) with taps[t] = the (N, C, OH*PW) view for tap t in row-major order.
    ``value`` fills the padding (MaxPool pads with the lowest value, not 0).
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, strides, dilations, out
    qh, qw = ((kh - 1) * dh) // sh, ((kw - 1) * dw) // sw
    PH, PW = oh + qh + 1, ow + qw
    n, c, h, w = x.shape
    phases = {}
    for i, j in np.ndindex(kh, kw):
        r = ((i * dh) % sh, (j * dw) % sw)
        if r not in phases:
            ph = np.full((n, c, PH, PW), value, dtype=x.dtype)
            a0, ys, ch = _phase_axis(h, r[0], sh, pads_begin[0], PH)
            b0, xs, cw = _phase_axis(w, r[1], sw, pads_begin[1], PW)
            if ch and cw:
                ph[:, :, a0:a0 + ch, b0:b0 + cw] = x[:, :, ys::sh, xs::sw][:, :, :ch, :cw]
            phases[r] = ph.reshape(n, c, PH * PW)
    taps = []
    for i, j in np.ndindex(kh, kw):
        off = ((i * dh) // sh) * PW + (j * dw) // sw
        taps.append(phases[((i * dh) % sh, (j * dw) % sw)][:, :, off:off + oh * PW])
    return taps, PW
