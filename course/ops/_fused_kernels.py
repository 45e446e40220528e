"""Compiled loops behind FusedConv: bias + activation in one pass, and a 3x3 depthwise
convolution with the bias and activation fused into its inner loop.

After a GEMM-based convolution numpy would add the bias in one pass and apply a Clip in two
more; ``_bias_activation`` does all of it in one pass. numpy's depthwise Conv makes a multiply
and an add pass over the whole output per kernel tap (18 passes for 3x3), which is memory-bound;
``_depthwise3x3`` finishes each output element in a register (nine products, bias, activation,
one store). The input is first split by stride phase so every tap is a contiguous run and the
inner loop vectorizes. The arithmetic follows ``conv.conv_core``'s depthwise path exactly (taps
row-major, each product rounded then added, bias last; numba does not contract ``v += x * w``
into an FMA without fastmath), so results are bit for bit those of Conv then the activation.

This module imports numba: course/ops/fused_conv.py imports it on first use, so ``import course``
stays light. The loops are compiled on first call and cached on disk (``cache=True``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from course.ops import _window as win

ACT_CODES = {None: 0, "Relu": 1, "Clip": 2, "LeakyRelu": 3}


@njit(inline="always")
def _activate(v, act, lo, hi, alpha):
    if act == 1 or act == 2:  # Relu is Clip(0, +inf); max first, then min
        v = lo if v < lo else v  # NaN stays NaN, as with np.maximum
        if act == 2:
            v = hi if v > hi else v
    elif act == 3:
        v = v * alpha if v < 0 else v
    return v


@njit(cache=True, nogil=True)
def _bias_activation(y, b, has_bias, act, lo, hi, alpha):
    # y: (N, M, P) contiguous, updated in place: y = act(y + b[m]).
    n, m, p = y.shape
    for i in range(n):
        for ch in range(m):
            row = y[i, ch]
            bias = b[ch] if has_bias else lo  # unused without a bias
            for o in range(p):
                v = row[o]
                if has_bias:
                    v += bias
                row[o] = _activate(v, act, lo, hi, alpha)
    return y


@njit(cache=True, nogil=True)
def _depthwise3x3(phases, taps, w, b, has_bias, pw, act, lo, hi, alpha, y):
    # Tap t of channel ch is the contiguous run phases[taps[t, 0], i, ch, taps[t, 1]:][:oh * pw]
    # (the "shifted flat view" of _window.flat_taps): results land on an (oh, pw) grid whose
    # columns >= ow are junk, so a channel is one long vectorizable loop, then a crop.
    n, c, oh, ow = y.shape
    size = oh * pw
    grid = np.empty(size, dtype=y.dtype)
    for i in range(n):
        for ch in range(c):
            w0, w1, w2 = w[ch, 0, 0, 0], w[ch, 0, 0, 1], w[ch, 0, 0, 2]
            w3, w4, w5 = w[ch, 0, 1, 0], w[ch, 0, 1, 1], w[ch, 0, 1, 2]
            w6, w7, w8 = w[ch, 0, 2, 0], w[ch, 0, 2, 1], w[ch, 0, 2, 2]
            bias = b[ch] if has_bias else w0  # unused without a bias
            t0 = phases[taps[0, 0], i, ch, taps[0, 1]:taps[0, 1] + size]
            t1 = phases[taps[1, 0], i, ch, taps[1, 1]:taps[1, 1] + size]
            t2 = phases[taps[2, 0], i, ch, taps[2, 1]:taps[2, 1] + size]
            t3 = phases[taps[3, 0], i, ch, taps[3, 1]:taps[3, 1] + size]
            t4 = phases[taps[4, 0], i, ch, taps[4, 1]:taps[4, 1] + size]
            t5 = phases[taps[5, 0], i, ch, taps[5, 1]:taps[5, 1] + size]
            t6 = phases[taps[6, 0], i, ch, taps[6, 1]:taps[6, 1] + size]
            t7 = phases[taps[7, 0], i, ch, taps[7, 1]:taps[7, 1] + size]
            t8 = phases[taps[8, 0], i, ch, taps[8, 1]:taps[8, 1] + size]
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
            for r in range(oh):
                src, dst = grid[r * pw:r * pw + ow], y[i, ch, r]
                for o in range(ow):
                    dst[o] = src[o]
    return y


def scalars(dtype, activation, params):
    """(code, lo, hi, alpha) for the kernels; typed scalars keep their arithmetic in x's dtype."""
    t = np.dtype(dtype).type
    lo = t(params[0]) if activation == "Clip" else t(0)
    hi = t(params[1]) if activation == "Clip" else t(0)
    alpha = t(params[0]) if activation == "LeakyRelu" else t(0)
    return ACT_CODES[activation], lo, hi, alpha


def supports_dtype(y: np.ndarray) -> bool:
    return y.dtype in (np.float32, np.float64)


def bias_activation(y: np.ndarray, b, activation, params) -> np.ndarray:
    """y (N, M, ...) contiguous, in place: y = activation(y + b[m]) in one pass."""
    code, lo, hi, alpha = scalars(y.dtype, activation, params)
    bias = b.astype(y.dtype, copy=False) if b is not None else np.zeros(0, y.dtype)
    _bias_activation(y.reshape(y.shape[0], y.shape[1], -1), bias, b is not None, code, lo, hi, alpha)
    return y


def supports_depthwise(x: np.ndarray, w: np.ndarray, group: int) -> bool:
    """True for a 2-D 3x3 depthwise convolution (group == C == M) in float32 or float64."""
    return (x.ndim == 4 and w.shape[1:] == (1, 3, 3) and group == x.shape[1] == w.shape[0]
            and x.dtype == w.dtype and x.dtype in (np.float32, np.float64))


def _phases(x: np.ndarray, k, s, d, pb, out) -> tuple[np.ndarray, np.ndarray, int]:
    """The zero-padded input split by stride phase, each phase's (PH, PW) plane flattened, in one
    copy; plus each tap's (phase, flat offset) and the grid width PW (as in _window.flat_taps)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = k, s, d, out
    ph_h, pw = oh + ((kh - 1) * dh) // sh + 1, ow + ((kw - 1) * dw) // sw
    n, c, h, w = x.shape
    used = sorted({((a * dh) % sh, (q * dw) % sw) for a in range(kh) for q in range(kw)})
    phases = np.zeros((len(used), n, c, ph_h, pw), dtype=x.dtype)
    for idx, (r, q) in enumerate(used):
        a0, ys, rows = win._phase_axis(h, r, sh, pb[0], ph_h)
        b0, xs, cols = win._phase_axis(w, q, sw, pb[1], pw)
        if rows and cols:
            phases[idx, :, :, a0:a0 + rows, b0:b0 + cols] = x[:, :, ys::sh, xs::sw][:, :, :rows, :cols]
    taps = np.array([(used.index(((a * dh) % sh, (q * dw) % sw)), ((a * dh) // sh) * pw + (q * dw) // sw)
                     for a in range(kh) for q in range(kw)], dtype=np.int64)
    return phases.reshape(len(used), n, c, -1), taps, pw


def depthwise_conv2d(x, w, b, strides, pads, dilations, auto_pad, activation=None, params=()):
    """3x3 depthwise conv of x (N, C, H, W) with w (C, 1, 3, 3), + b, then the activation."""
    k, s, p, d = win.spatial_attrs(2, w.shape[2:], strides, pads, dilations, auto_pad)
    out, pb, pe = win.geometry(x.shape[2:], k, s, p, d, auto_pad)
    phases, taps, pw = _phases(x, k, s, d, pb, out)
    y = np.empty(x.shape[:2] + tuple(out), dtype=x.dtype)
    code, lo, hi, alpha = scalars(x.dtype, activation, params)
    bias = b.astype(x.dtype, copy=False) if b is not None else np.zeros(0, x.dtype)
    return _depthwise3x3(phases, taps, np.ascontiguousarray(w), bias, b is not None, pw, code, lo, hi, alpha, y)
