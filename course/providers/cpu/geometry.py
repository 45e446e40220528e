"""Sliding-window geometry for the CPU provider's kernels: output sizes, pads, stride phases.

Output sizes and pads come from the reference's rule (``course.ops._window.out_dim``:
``out = floor((in + pads - extent) / s) + 1``, or ``ceil(in / s)`` for ``auto_pad=SAME_*``), so
the two engines cannot disagree on a geometry. Phases: a stride-s window reads every s-th input element, so
the padded input split by stride phase (``padded[r::s]``) makes every kernel tap a contiguous
run of one phase (the "shifted flat view" the 3x3 kernels and the shifted GEMMs use).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from course.errors import ShapeError
from course.ops._window import out_dim


def _tuple(v) -> Optional[tuple]:
    return None if v is None else tuple(int(i) for i in v)


def _axis(size: int, k: int, s: int, d: int, pb: int, pe: int, auto_pad: str, ceil: bool):
    """(output size, pad_begin, pad_end) of one spatial axis by the reference's rule
    (course.ops._window.out_dim); output 0 when the window does not fit (the caller then hands
    the node to the reference, which raises)."""
    try:
        return out_dim(size, k, s, d, pb, pe, auto_pad, ceil)
    except ShapeError:
        return 0, pb, pe


@dataclass(frozen=True)
class Window:
    """A 2-D window's geometry over one input plane: kernel, strides, dilations, output size and
    the pads before and after, each as (rows, columns)."""

    kernel: tuple
    strides: tuple
    dilations: tuple
    out: tuple
    pads_begin: tuple
    pads_end: tuple

    @property
    def pixels(self) -> int:
        return self.out[0] * self.out[1]

    @property
    def padded(self) -> bool:
        return any(self.pads_begin) or any(self.pads_end)

    @property
    def strided(self) -> bool:
        return self.strides != (1, 1)


@lru_cache(maxsize=1024)
def window(in_hw: tuple, kernel: tuple, strides=None, pads=None, dilations=None, auto_pad="NOTSET",
           ceil=False) -> Window:
    """The Window of a 2-D convolution or pooling from its ONNX attributes (cached: a model runs
    the same few geometries over and over)."""
    s, d = _tuple(strides) or (1, 1), _tuple(dilations) or (1, 1)
    p = _tuple(pads) or (0, 0, 0, 0)
    rows = _axis(in_hw[0], kernel[0], s[0], d[0], p[0], p[2], auto_pad, ceil)
    cols = _axis(in_hw[1], kernel[1], s[1], d[1], p[1], p[3], auto_pad, ceil)
    return Window(tuple(kernel), s, d, (rows[0], cols[0]), (rows[1], cols[1]), (rows[2], cols[2]))


def window_of(in_hw, kernel, attrs: dict, ceil=False) -> Window:
    """``window`` from a node's attribute dict (Conv, FusedConv or MaxPool)."""
    return window(tuple(int(v) for v in in_hw), tuple(int(v) for v in kernel), _tuple(attrs.get("strides")),
                  _tuple(attrs.get("pads")), _tuple(attrs.get("dilations")), attrs.get("auto_pad", "NOTSET"),
                  bool(ceil))


def phase_axis(size: int, r: int, s: int, p: int, length: int):
    """Rows a of phase r (padded index r + a*s) that hold real input: (a0, src_start, count)."""
    a0 = max(0, -(-(p - r) // s))
    src = r + a0 * s - p
    count = 0 if src >= size else min(length - a0, -(-(size - src) // s))
    return a0, src, max(0, count)


def phase_grid(win: Window) -> tuple[int, int, int]:
    """(phases, PH, PW): how many stride phases of the padded input a window's taps read, and
    the shape of each phase plane (flat_taps')."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = win.kernel, win.strides, win.dilations, win.out
    used = {((i * dh) % sh, (j * dw) % sw) for i in range(kh) for j in range(kw)}
    return len(used), oh + ((kh - 1) * dh) // sh + 1, ow + ((kw - 1) * dw) // sw


def flat_taps(x: np.ndarray, win: Window, value=0, planes=None):
    """Every tap of a 2-D window as a contiguous (N, C, OH*PW) slice of one stride phase of the
    padded input (a zero-filled (N, C, PH, PW) copy per phase used: the arrays of ``planes``
    in turn when given, phase_grid's count and shape, else new ones). Results computed on these
    lie on an (OH, PW) grid whose columns >= OW are junk, cropped by the caller. Returns
    (taps in row-major order, PW)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = win.kernel, win.strides, win.dilations, win.out
    ph, pw = oh + ((kh - 1) * dh) // sh + 1, ow + ((kw - 1) * dw) // sw
    n, c, h, w = x.shape
    phases = {}
    for i, j in np.ndindex(kh, kw):
        r = ((i * dh) % sh, (j * dw) % sw)
        if r not in phases:
            if planes is None:
                plane = np.full((n, c, ph, pw), value, dtype=x.dtype)
            else:
                plane = planes[len(phases)]
                plane.fill(value)
            a0, ys, rows = phase_axis(h, r[0], sh, win.pads_begin[0], ph)
            b0, xs, cols = phase_axis(w, r[1], sw, win.pads_begin[1], pw)
            if rows and cols:
                plane[:, :, a0:a0 + rows, b0:b0 + cols] = x[:, :, ys::sh, xs::sw][:, :, :rows, :cols]
            phases[r] = plane.reshape(n, c, ph * pw)
    taps = []
    for i, j in np.ndindex(kh, kw):
        off = ((i * dh) // sh) * pw + (j * dw) // sw
        taps.append(phases[((i * dh) % sh, (j * dw) % sw)][:, :, off:off + oh * pw])
    return taps, pw


@lru_cache(maxsize=256)
def phases3x3(in_hw: tuple, win: Window):
    """A 3x3 window's stride phases for the compiled plane kernels: the phase planes' (PH, PW),
    where each phase's real input goes (``fill``, one row per phase: a0, ys, rows, b0, xs, cols)
    and each tap's (phase, flat offset) (``taps``, row-major). Read-only: shared by every call."""
    (oh, ow), (sh, sw), (dh, dw) = win.out, win.strides, win.dilations
    ph, pw = oh + (2 * dh) // sh + 1, ow + (2 * dw) // sw
    used = sorted({((a * dh) % sh, (q * dw) % sw) for a in range(3) for q in range(3)})
    fill = np.array([phase_axis(in_hw[0], r, sh, win.pads_begin[0], ph)
                     + phase_axis(in_hw[1], q, sw, win.pads_begin[1], pw) for r, q in used],
                    dtype=np.int64).reshape(len(used), 6)
    taps = np.array([(used.index(((a * dh) % sh, (q * dw) % sw)), ((a * dh) // sh) * pw + (q * dw) // sw)
                     for a in range(3) for q in range(3)], dtype=np.int64)
    fill.flags.writeable = taps.flags.writeable = False
    return (ph, pw), fill, taps


def channels_minor(x: np.ndarray) -> bool:
    """True when x (N, C, H, W) is laid out channels last: x.transpose(0, 2, 3, 1) is contiguous
    (what a convolution marked NHWC makes)."""
    return x.ndim == 4 and x.shape[1] > 1 and x.transpose(0, 2, 3, 1).flags.c_contiguous
