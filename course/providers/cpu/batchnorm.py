"""BatchNormalization in inference mode, float32: one compiled pass, rows shared between threads.

A BN that no convolution absorbed (DenseNet's, before each layer's ReLU and convolution over
the concatenated features) is, per channel, ``y = x * a + shift`` with ``a = scale /
sqrt(var + eps)`` and ``shift = B - mean * a`` (the reference's folding, course/ops/batchnorm.py,
made once per set of weights). numpy spends one pass over the tensor on the multiply and one on
the add; here each element is read once and written once, the (N*C, H*W) rows split between
the session's thread and the helper. Each product is rounded then added, as numpy does, so the
bits are the reference's.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from course.providers.cpu.intrinsics import f32_ptr
from course.providers.cpu.job import SCALE_SHIFT, address, floats, layout, make_job, split

SS = layout("ScaleShiftArgs", "rows cols channels step x a shift y")


@njit(cache=True, nogil=True)
def scale_shift_rows(x, a, shift, y, r0, r1):
    """Rows r0..r1 of y (N*C, P) = x * a[row % C] + shift[row % C]; y may be x itself."""
    c = a.shape[0]
    for r in range(r0, r1):
        ar, sr = a[r % c], shift[r % c]
        xr, yr = x[r], y[r]
        for j in range(xr.shape[0]):
            yr[j] = xr[j] * ar + sr


@njit(cache=True, nogil=True)
def scale_shift_chunk(args, fl, i):
    """Chunk i of a SCALE_SHIFT job: a band of rows."""
    rows, cols, c = args[SS.rows], args[SS.cols], args[SS.channels]
    r0 = i * args[SS.step]
    r1 = min(rows, r0 + args[SS.step])
    scale_shift_rows(carray(f32_ptr(args[SS.x]), (rows, cols)), carray(f32_ptr(args[SS.a]), (c,)),
                     carray(f32_ptr(args[SS.shift]), (c,)), carray(f32_ptr(args[SS.y]), (rows, cols)), r0, r1)


def folded(scale, b, mean, var, epsilon):
    """(a, shift) float32 contiguous, exactly as the reference op folds them."""
    a = scale / np.sqrt(var + var.dtype.type(epsilon))
    shift = b - mean * a
    return np.ascontiguousarray(a, dtype=np.float32), np.ascontiguousarray(shift, dtype=np.float32)


class BatchNormKernel:
    """One node's kernel: the folded weights kept while the weight arrays are the same
    read-only ones (a session's), so a run only posts the job."""

    def __init__(self, epsilon: float, reference):
        self.epsilon, self.reference = epsilon, reference
        self.weights, self.ab = None, None

    def __call__(self, x, scale, b, mean, var, out=None):
        c = x.shape[1] if x.ndim >= 2 else -1
        if (x.dtype != np.float32 or x.ndim < 2 or not x.flags.c_contiguous
                or any(v.dtype != np.float32 or v.shape != (c,) for v in (scale, b, mean, var))):
            return self.reference(x, scale, b, mean, var)
        ab = self._folded((scale, b, mean, var))
        fits = out is not None and out.shape == x.shape and out.dtype == np.float32 and out.flags.c_contiguous
        y = out if fits else np.empty_like(x)
        if x.size:
            scale_shift(x, ab[0], ab[1], y)
        return y

    def _folded(self, weights):
        same = self.weights is not None and all(u is v for u, v in zip(weights, self.weights))
        if same:
            return self.ab
        ab = folded(*weights, self.epsilon)
        if not any(w.flags.writeable for w in weights):  # a session's weights: kept for later calls
            self.weights, self.ab = weights, ab
        return ab


def scale_shift(x: np.ndarray, a: np.ndarray, shift: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y = x * a[c] + shift[c] per channel c of x (N, C, ...) float32 C-contiguous; y likewise
    (may be x)."""
    rows = x.shape[0] * x.shape[1]
    cols = x.size // rows
    step, chunks = split(rows) if x.size >= 4096 else (rows, 1)
    make_job(SS, SCALE_SHIFT, floats(), chunks, (x, a, shift, y), rows=rows, cols=cols, channels=a.shape[0],
             step=step, x=address(x), a=address(a), shift=address(shift), y=address(y)).post()
    return y
