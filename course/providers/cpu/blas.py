"""Direct ``cblas_?gemm`` calls into the BLAS numpy itself uses, for what ``np.matmul`` cannot say.

``np.matmul`` always overwrites its output and needs each operand to be one array. A convolution
done as nine shifted GEMMs (course/providers/cpu/conv.py) wants two things more: accumulate into
the output (``beta = 1``) and read the input through a strided 2-D window (a leading dimension
larger than the row length). CBLAS takes both, so this module binds ``cblas_sgemm`` / ``cblas_dgemm`` of the
OpenBLAS shipped inside numpy's wheel (found by threadpoolctl, loaded with ctypes; the library is
already in the process, so nothing new is loaded and its thread pool is numpy's).

``available()`` is False when numpy was built against another BLAS (conda's MKL, Accelerate...);
the CPU provider then claims no node that needs a GEMM, and the reference runs those.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Optional

import numpy as np

_ROW_MAJOR, _NO_TRANS = 101, 111


@lru_cache(maxsize=1)
def _bind() -> Optional[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return None
    for info in threadpool_info():
        if info.get("internal_api") != "openblas" or "numpy" not in info.get("filepath", ""):
            continue
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            return None
        # 64-bit-integer (ILP64) names first: such a build may also export the plain names
        symbol_sets = [("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64),
                       ("scipy_cblas_{}gemm", ctypes.c_int), ("cblas_{}gemm", ctypes.c_int)]
        for pattern, blasint in symbol_sets:
            fns = {}
            for code, ctype in (("s", ctypes.c_float), ("d", ctypes.c_double)):
                fn = getattr(lib, pattern.format(code), None)
                if fn is None:
                    break
                p = ctypes.c_void_p
                fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, blasint, blasint, blasint,
                               ctype, p, blasint, p, blasint, ctype, p, blasint]
                fn.restype = None
                fns[np.dtype(ctype)] = fn
            if len(fns) == 2:
                fns["ilp64"] = blasint is ctypes.c_int64
                fns["threads"] = _thread_setter(lib)
                return fns
    return None


def _thread_setter(lib):
    """OpenBLAS's ``openblas_set_num_threads_local(n) -> previous`` (0.3.27+), else None."""
    fn = getattr(lib, "openblas_set_num_threads_local", None)
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


def set_threads(n: int) -> Optional[int]:
    """Set how many threads OpenBLAS uses (for the whole process, whatever the name of the call
    says); returns the previous count, or None where this BLAS cannot be told."""
    fns = _bind()
    if fns is None or fns["threads"] is None:
        return None
    return int(fns["threads"](int(n)))


@lru_cache(maxsize=1)
def sgemm_address() -> tuple[int, bool]:
    """(address of cblas_sgemm, whether its integers are 64-bit) for compiled callers
    (course/providers/cpu/gemm.py)."""
    fns = _bind()
    if fns is None:
        raise RuntimeError("no CBLAS gemm in numpy's BLAS; check course.providers.cpu.blas.available() first")
    return ctypes.cast(fns[np.dtype(np.float32)], ctypes.c_void_p).value, fns["ilp64"]


def available() -> bool:
    """True when this process's numpy exposes an OpenBLAS ``cblas_?gemm`` we can call."""
    return _bind() is not None


def ld(a: np.ndarray) -> int:
    """Leading dimension of a 2-D row-major operand (rows apart, in elements)."""
    rows, cols = a.shape
    step, col_step = a.strides
    if rows == 1:  # one row: its distance to a next row does not matter
        step = cols * a.itemsize
    if cols == 1:  # one column: the same for columns
        col_step = a.itemsize
    if col_step != a.itemsize or step % a.itemsize or step < cols * a.itemsize:
        raise ValueError(f"operand with strides {a.strides} is not a row-major 2-D window")
    return max(step // a.itemsize, 1)
