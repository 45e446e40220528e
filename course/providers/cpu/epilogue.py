"""FusedConv's epilogue, ``y = activation(y + bias + z)``, as one compiled pass.

After a GEMM-based convolution numpy would add the bias in one pass, the residual in another and
apply a Clip in two more; ``epilogue_row`` does all of it in one, and the GEMM, im2col and
Winograd jobs run it on each band of their output while the band is still in cache. Where no job
took it, the EPILOGUE job runs it over the rows of a finished output. The order is that of the
separate nodes: bias first, then the residual, then the activation, each rounded to float32.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import carray, njit

from course.ops.fused_conv import activate_inplace  # noqa: F401  (numpy, for outputs no loop takes)
from course.providers.cpu.intrinsics import f32_ptr
from course.providers.cpu.job import EPILOGUE, FLOATS, address, floats, layout, make_job, split

ACT_CODES = {None: 0, "Identity": 0, "Relu": 1, "Clip": 2, "LeakyRelu": 3}
ACT_PARAMS = {"Relu": 0, "Clip": 2, "LeakyRelu": 1, "Identity": 0}  # name -> number of parameters

EPI = layout("EpilogueArgs", "rows cols bias_len has_bias has_z act step y bias z")


@njit(inline="always")
def activate(v, act, lo, hi, alpha):
    """The activation of code ``act`` (ACT_CODES) on one value."""
    if act == 1 or act == 2:  # Relu is Clip(0, +inf); max first, then min
        v = lo if v < lo else v  # NaN stays NaN, as with np.maximum
        if act == 2:
            v = hi if v > hi else v
    elif act == 3:
        v = v * alpha if v < 0 else v
    return v


@njit(inline="always")
def epilogue_row(row, bias, bias_mode, bias_row, zrow, has_z, act, lo, hi, alpha):
    # row = act(row + bias + zrow) element by element; bias_mode 0: no bias, 1: the scalar
    # ``bias``, 2: ``bias_row[o]`` per element (a channels-last output's per-column bias).
    for o in range(row.shape[0]):
        v = row[o]
        if bias_mode == 1:
            v += bias
        elif bias_mode == 2:
            v += bias_row[o]
        if has_z:
            v += zrow[o]
        row[o] = activate(v, act, lo, hi, alpha)


@njit(inline="always")
def epilogue_block(c, ldc, r0, r1, c0, c1, bias, bias_mode, z, ldz, has_z, act, lo, hi, alpha):
    # c[r, c0:c1] = act(c[r, c0:c1] + bias + z[r, c0:c1]) for rows r0..r1 of flat row-major
    # buffers (ldc, ldz: elements between rows); the bias is bias[r] (bias_mode 1), bias[c0:c1]
    # (2) or none (0). An unused operand is an empty slice, never ``row`` itself: the compiler
    # guards its vector loop with an overlap test on every operand, and ``row`` would fail it.
    for r in range(r0, r1):
        row = c[r * ldc + c0:r * ldc + c1]
        epilogue_row(row, bias[r] if bias_mode == 1 else lo, bias_mode,
                     bias[c0:c1] if bias_mode == 2 else bias[0:0],
                     z[r * ldz + c0:r * ldz + c1] if has_z else z[0:0], has_z, act, lo, hi, alpha)


@njit(cache=True, nogil=True)
def epilogue_rows(y, b, has_bias, z, has_z, act, lo, hi, alpha, r0, r1):
    """Rows r0..r1 of y (N*M, P) in place: y = act(y + b[row % M] + z)."""
    m = b.shape[0] if has_bias else 1
    for r in range(r0, r1):
        epilogue_row(y[r], b[r % m] if has_bias else lo, 1 if has_bias else 0, b[0:0], z[r] if has_z else b[0:0],
                     has_z, act, lo, hi, alpha)


@njit(cache=True, nogil=True)
def epilogue_chunk(args, fl, i):
    """Chunk i of an EPILOGUE job: a band of rows."""
    rows, cols = args[EPI.rows], args[EPI.cols]
    y = carray(f32_ptr(args[EPI.y]), (rows, cols))
    b = carray(f32_ptr(args[EPI.bias]), (args[EPI.bias_len],))
    z = carray(f32_ptr(args[EPI.z]), (rows, cols))
    r0 = i * args[EPI.step]
    r1 = min(rows, r0 + args[EPI.step])
    epilogue_rows(y, b, args[EPI.has_bias] != 0, z, args[EPI.has_z] != 0, args[EPI.act],
                  np.float32(fl[FLOATS.lo]), np.float32(fl[FLOATS.hi]), np.float32(fl[FLOATS.alpha]), r0, r1)


def scalars(activation, params):
    """(code, lo, hi, alpha) of an activation for the compiled loops, float32 scalars."""
    return _scalars(activation, tuple(float(p) for p in params))


@lru_cache(maxsize=64)
def _scalars(activation, params):
    t = np.float32
    lo = t(params[0]) if activation == "Clip" else t(0)
    hi = t(params[1]) if activation == "Clip" else t(0)
    alpha = t(params[0]) if activation == "LeakyRelu" else t(0)
    return ACT_CODES[activation], lo, hi, alpha


def epilogue(y: np.ndarray, b, activation, params, z=None) -> np.ndarray:
    """y (N, M, ...) float32 contiguous, in place: y = activation(y + b[m] + z) in one pass,
    rows shared with the helper thread in a run; ``z`` (optional) has y's shape."""
    if y.size == 0:
        return y
    code, lo, hi, alpha = scalars(activation, params)
    rows = y.reshape(y.shape[0] * y.shape[1], -1)
    bias = np.ascontiguousarray(b, dtype=np.float32) if b is not None else rows[:0, 0]
    zrows = np.ascontiguousarray(z, dtype=np.float32).reshape(rows.shape) if z is not None else rows
    r, p = rows.shape
    step, chunks = split(r) if r * p >= 4096 else (max(r, 1), 1)
    make_job(EPI, EPILOGUE, floats(lo=lo, hi=hi, alpha=alpha), chunks, (rows, bias, zrows),
             rows=r, cols=p, bias_len=bias.shape[0], has_bias=b is not None, has_z=z is not None, act=code,
             step=step, y=address(rows), bias=address(bias) if bias.size else address(rows),
             z=address(zrows)).post()
    return y
