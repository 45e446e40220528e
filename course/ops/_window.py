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
from course.ops.types import Dim

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


def windows(xp: np.ndarray, kernel, strides, dilations, out_dims) -> np.ndarray:
    """(N, C, *out_dims, *kernel) strided view of the padded input xp (no copy): element
    ``[n, c, o, t]`` is ``xp[n, c, o * strides + t * dilations]``, kernel tap t of output position o."""
    nsp = len(kernel)
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    view = np.lib.stride_tricks.sliding_window_view(xp, extent, axis=tuple(range(xp.ndim - nsp, xp.ndim)))
    every = tuple(slice(0, o * s, s) for o, s in zip(out_dims, strides))  # window starts
    taps = tuple(slice(None, None, d) for d in dilations)  # the taps inside each window
    return view[(Ellipsis,) + every + taps]
