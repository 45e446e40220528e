"""The instrumented stand-in for ``numba.cuda`` that a traced kernel body sees as ``cuda``.

Thread and block indices come from the calling :class:`~kernels.trace.scheduler.CudaThread`;
``shared.array`` / ``local.array`` return :class:`~kernels.trace.memory.TracedArray` objects;
``syncthreads`` goes through the block's barrier; atomics are logged as atomic accesses.
Warp-level primitives (shuffles, votes, ``syncwarp``) are not modelled and raise TraceError.
"""
from __future__ import annotations

import linecache
import math
import re
import sys
import threading

import numpy as np

from kernels.trace.errors import TraceError
from kernels.trace.memory import LOCAL, SHARED, TracedArray, site_of

_current = threading.current_thread
_getframe = sys._getframe
_NAME = re.compile(r"(\w+)\s*=\s*[\w.]*\b(?:shared|local)\.array\s*\(")

WARP_LEVEL = {"syncwarp", "shfl_sync", "shfl_up_sync", "shfl_down_sync", "shfl_xor_sync",
              "all_sync", "any_sync", "eq_sync", "ballot_sync", "match_any_sync", "match_all_sync",
              "activemask", "lanemask_lt"}


def as_dtype(dtype) -> np.dtype:
    """numpy dtype of a numba type (``float32``), a numpy dtype/type, or a name."""
    try:
        return np.dtype(dtype)
    except TypeError:
        pass
    name = getattr(dtype, "name", None) or str(dtype)
    try:
        return np.dtype(name)
    except TypeError:
        raise TraceError(f"unsupported array dtype {dtype!r}") from None


def _shape(shape) -> tuple:
    if isinstance(shape, (tuple, list)):
        return tuple(int(s) for s in shape)
    return (int(shape),)


def _array_name(frame, fallback: str) -> str:
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    m = _NAME.search(line)
    return m.group(1) if m else f"{fallback}@line{frame.f_lineno}"


class _Shared:
    def array(self, shape, dtype, alignment=None):
        """One array per call site per block, like ``__shared__`` declarations."""
        frame = _getframe(1)
        t = _current()
        shape = _shape(shape)
        if shape == (0,):
            raise TraceError("dynamic shared memory (shared.array(0, ...)) is not supported by the tracer")
        blk = t.blk
        key = site_of(frame)
        with blk.lock:
            arr = blk.shared.get(key)
            if arr is None:
                data = np.zeros(shape, dtype=as_dtype(dtype))
                base = blk.space.place(data.nbytes)
                arr = TracedArray(data, SHARED, _array_name(frame, "shared"), base, t.rs.new_uid())
                blk.shared[key] = arr
                blk.shared_arrays.append(arr)
        return arr


class _Local:
    def array(self, shape, dtype, alignment=None):
        """Per-thread scratch: bounds-checked, not counted as memory traffic."""
        data = np.zeros(_shape(shape), dtype=as_dtype(dtype))
        return TracedArray(data, LOCAL, _array_name(_getframe(1), "local"), 0, 0)


class _Const:
    def array_like(self, ary):
        return ary


def _atomic(ary, idx, update, frame):
    if isinstance(ary, TracedArray):
        return ary.atomic(idx, update, frame)
    old = ary[idx]
    ary[idx] = update(old)
    return old


class _Atomic:
    """Atomics: logged as one access of kind 'atomic'; never counted as a race."""

    def add(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: old + val, _getframe(1))

    def sub(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: old - val, _getframe(1))

    def max(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: max(old, val), _getframe(1))

    def min(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: min(old, val), _getframe(1))

    def nanmax(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: np.nanmax([old, val]), _getframe(1))

    def nanmin(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: np.nanmin([old, val]), _getframe(1))

    def exch(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: val, _getframe(1))

    def and_(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: old & val, _getframe(1))

    def or_(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: old | val, _getframe(1))

    def xor(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: old ^ val, _getframe(1))

    def inc(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: 0 if old >= val else old + 1, _getframe(1))

    def dec(self, ary, idx, val):
        return _atomic(ary, idx, lambda old: val if (old == 0 or old > val) else old - 1, _getframe(1))

    def cas(self, ary, idx, old, val):
        return _atomic(ary, idx, lambda cur: val if cur == old else cur, _getframe(1))

    def compare_and_swap(self, ary, old, val):
        return _atomic(ary, (0,) * len(ary.shape), lambda cur: val if cur == old else cur, _getframe(1))


class FakeCuda:
    """Per-trace ``cuda`` module: indices, memory, barriers and the usual intrinsics."""

    warpsize = 32

    def __init__(self, real_cuda, rs):
        from kernels.trace.scheduler import Dim3

        self._real = real_cuda
        self.gridDim = Dim3(*rs.grid)
        self.blockDim = Dim3(*rs.block)
        self._gridsize = tuple(g * b for g, b in zip(rs.grid, rs.block))
        self.shared = _Shared()
        self.local = _Local()
        self.const = _Const()
        self.atomic = _Atomic()

    @property
    def threadIdx(self):
        return _current().threadIdx

    @property
    def blockIdx(self):
        return _current().blockIdx

    @property
    def laneid(self):
        return _current().lane

    def grid(self, n):
        g = _current().gidx
        if n == 1:
            return g[0]
        if n in (2, 3):
            return g[:n]
        raise TraceError(f"cuda.grid({n}): only 1, 2 or 3 dimensions exist")

    def gridsize(self, n):
        if n == 1:
            return self._gridsize[0]
        if n in (2, 3):
            return self._gridsize[:n]
        raise TraceError(f"cuda.gridsize({n}): only 1, 2 or 3 dimensions exist")

    def syncthreads(self):
        f = _getframe(1)
        _current().barrier(site_of(f))

    def syncthreads_count(self, value):
        f = _getframe(1)
        return sum(1 for v in _current().barrier(site_of(f), value) if v)

    def syncthreads_and(self, value):
        f = _getframe(1)
        return int(all(_current().barrier(site_of(f), value)))

    def syncthreads_or(self, value):
        f = _getframe(1)
        return int(any(_current().barrier(site_of(f), value)))

    def threadfence(self):
        pass

    def threadfence_block(self):
        pass

    def threadfence_system(self):
        pass

    def fma(self, a, b, c):
        return a * b + c

    def selp(self, cond, a, b):
        return a if cond else b

    def popc(self, v):
        return bin(int(v) & 0xFFFFFFFFFFFFFFFF).count("1")

    def cbrt(self, a):
        return math.copysign(abs(a) ** (1.0 / 3.0), a)

    def __getattr__(self, name):
        if name in WARP_LEVEL:
            raise TraceError(f"cuda.{name} (warp-level primitive) is not modelled by the tracer")
        return getattr(self._real, name)


class FakeNumba:
    """Stands in for a kernel's global ``numba`` so ``numba.cuda.x`` reaches the fake module."""

    def __init__(self, real_numba, fake_cuda):
        self._real = real_numba
        self.cuda = fake_cuda

    def __getattr__(self, name):
        return getattr(self._real, name)
