"""Gemm: Y = alpha * op(A) @ op(B) + beta * C, op = optional transpose; C broadcasts to (M, N).

A float32 product big enough to pay for it goes through course/ops/_parallel.py (op(B) handed to
BLAS as it lies, transposed or not), so during a session run the two threads each take half of
the columns (for a classifier head: half of the weight rows); C is added inside the same bands.
"""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops import _blas
from course.ops.base import InferContext, Op
from course.ops.registry import register


@register("Gemm", since=7)
class Gemm(Op):
    attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
    num_inputs = (3, 3)  # C became optional in opset 11

    def infer_shape(self, ctx: InferContext):
        a, b = ctx.shape(0), ctx.shape(1)
        for name, s in (("A", a), ("B", b)):
            if s is not None and len(s) != 2:
                raise ShapeError(f"input {name} has rank {len(s)}; Gemm needs 2-D matrices")
        m = None if a is None else a[1 if ctx.attrs["transA"] else 0]
        n = None if b is None else b[0 if ctx.attrs["transB"] else 1]
        ka = None if a is None else a[0 if ctx.attrs["transA"] else 1]
        kb = None if b is None else b[1 if ctx.attrs["transB"] else 0]
        if isinstance(ka, int) and isinstance(kb, int) and ka != kb:
            raise ShapeError(f"inner dims differ: A gives K={ka}, B gives K={kb}")
        return [(m, n)]

    def compute(self, a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
        a = a.T if transA else a
        b = b.T if transB else b
        if a.shape[1] != b.shape[0]:
            raise ShapeError(f"inner dims differ: op(A) is {a.shape}, op(B) is {b.shape}")
        if _poolable(a, b):
            z = _broadcast_c(c, a.shape[0], b.shape[1]) if alpha == 1.0 and beta == 1.0 else None
            y = _pooled(a, b, z)
            if z is not None:
                return y
        else:
            y = np.matmul(a, b)
        if alpha != 1.0:
            y *= y.dtype.type(alpha)
        if c is not None and beta != 0.0:
            y += c if beta == 1.0 else c * c.dtype.type(beta)
        return y


@register("Gemm", since=11)
class Gemm11(Gemm):
    num_inputs = (2, 3)


POOLED_MIN_MACS = 1 << 18  # below this a job costs more than the second thread saves


def _poolable(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.dtype == b.dtype == np.float32 and _blas.available()
            and a.shape[0] * a.shape[1] * b.shape[1] >= POOLED_MIN_MACS)


def _broadcast_c(c, m: int, n: int):
    """C broadcast to Y's (M, N) as a view, when it is float32 and needs no copy, else None."""
    if c is None or c.dtype != np.float32 or c.ndim > 2:
        return None
    try:
        z = np.broadcast_to(c, (m, n))
    except ValueError:
        return None  # the numpy add afterwards raises numpy's message
    # rows of C along Y's columns: one row for all (strides (0, 4)) or a full (M, N) matrix
    return z if z.strides[1] == z.itemsize and (m == 1 or z.strides[0] in (0, z.itemsize * n)) else None


def _pooled(a: np.ndarray, b: np.ndarray, z) -> np.ndarray:
    """a (M, K) @ b (K, N) [+ z] through _parallel.gemm_sum; b may be a row-major (K, N) matrix
    or the transpose of one (a transB=1 weight, passed to BLAS as transposed)."""
    from course.ops import _fused_kernels as fk  # both import numba: only once a big float32 Gemm runs
    from course.ops import _parallel

    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    if not (b.flags.c_contiguous or b.T.flags.c_contiguous):
        b = np.ascontiguousarray(b)
    y = np.empty((m, n), dtype=np.float32)
    act = None if z is None else fk.scalars(np.float32, "Identity", ())  # just the add of C
    _parallel.gemm_sum(np.ascontiguousarray(a).reshape(1, m, k), [b], y, z=z, act=act)
    return y
