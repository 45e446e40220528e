"""Arrays as the traced kernel sees them: every element access is bounds-checked and logged.

Addresses are virtual byte addresses. Each global array gets its own 256-byte aligned range (as
``cudaMalloc`` aligns allocations), each shared array a 16-byte aligned range of its block's
shared space, so sector and bank arithmetic works on real-looking addresses:
sector = address // 32, bank = (address // 4) % 32.
"""
from __future__ import annotations

import bisect
import dis
import operator
import sys
import threading

import numpy as np

from kernels.trace.errors import TraceError

GLOBAL, SHARED, LOCAL = "global", "shared", "local"
LOAD, STORE, ATOMIC = "load", "store", "atomic"

_current = threading.current_thread
_getframe = sys._getframe


_sites: dict = {}
_starts: dict = {}


def site_of(frame) -> tuple:
    """(code, offset of the instruction being executed) for a frame, stable across specialisation.

    CPython 3.11+ may report ``f_lasti`` inside an instruction's inline cache once the
    instruction is specialised (e.g. BINARY_SUBSCR_GETITEM); mapping it back to the
    instruction's first byte keeps all lanes of a warp on the same site.
    """
    code, lasti = frame.f_code, frame.f_lasti
    key = (code, lasti)
    site = _sites.get(key)
    if site is None:
        starts = _starts.get(code)
        if starts is None:
            starts = _starts[code] = [i.offset for i in dis.get_instructions(code)]
        site = _sites[key] = (code, starts[max(0, bisect.bisect_right(starts, lasti) - 1)])
    return site


class TracedArray:
    """A numpy array behind a logging ``[]``; ``shape``/``size``/``ndim``/``dtype`` as numpy's."""

    __slots__ = ("_data", "space", "name", "base", "uid", "shape", "ndim", "size", "dtype",
                 "itemsize", "_strides", "_zero")

    def __init__(self, data: np.ndarray, space: str, name: str, base: int, uid: int):
        self._data = data
        self.space = space
        self.name = name
        self.base = base
        self.uid = uid
        self.shape = data.shape
        self.ndim = data.ndim
        self.size = data.size
        self.dtype = data.dtype
        self.itemsize = data.dtype.itemsize
        self._strides = data.strides
        self._zero = data.dtype.type(0)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"<{self.space} array {self.name!r} {self.dtype}{list(self.shape)}>"

    def _locate(self, idx):
        """Normalise ``idx`` to a tuple of ints; return (index, byte offset or None when out of bounds)."""
        parts = idx if type(idx) is tuple else (idx,)
        if len(parts) != self.ndim:
            raise TraceError(f"array {self.name!r} has {self.ndim} dimension(s) but is indexed with "
                             f"{len(parts)} index(es) {idx!r}; the tracer needs one integer per dimension")
        try:
            parts = tuple(operator.index(p) for p in parts)
        except TypeError:
            raise TraceError(f"array {self.name!r} indexed with {idx!r}: kernels may only index "
                             f"with integers (no slices or floats)") from None
        off = 0
        for p, n, s in zip(parts, self.shape, self._strides):
            if p < 0 or p >= n:
                return parts, None
            off += p * s
        return parts, off

    def _row_view(self, idx, frame):
        """``a[i]`` on a 2D array (as in ``A[row][k]``): a view at the same addresses, not an access."""
        parts = idx if type(idx) is tuple else (idx,)
        try:
            parts = tuple(operator.index(p) for p in parts)
        except TypeError:
            raise TraceError(f"array {self.name!r} indexed with {idx!r}: kernels may only index "
                             f"with integers (no slices or floats)") from None
        off = 0
        for p, n, st in zip(parts, self.shape, self._strides):
            if p < 0 or p >= n:
                t = _current()
                if getattr(t, "is_cuda_thread", False):
                    t.access(self, parts, None, LOAD, frame)
                return TracedArray(np.zeros(self.shape[len(parts):], self.dtype), LOCAL, self.name, 0, 0)
            off += p * st
        return TracedArray(self._data[parts], self.space, self.name, self.base + off, self.uid)

    def __getitem__(self, idx):
        if (len(idx) if type(idx) is tuple else 1) < self.ndim:
            return self._row_view(idx, _getframe(1))
        t = _current()
        parts, off = self._locate(idx)
        if getattr(t, "is_cuda_thread", False):
            t.access(self, parts, off, LOAD, _getframe(1))
        if off is None:
            return self._zero
        return self._data[parts]

    def __setitem__(self, idx, value):
        t = _current()
        parts, off = self._locate(idx)
        if getattr(t, "is_cuda_thread", False):
            t.access(self, parts, off, STORE, _getframe(1))
        if off is not None:
            self._data[parts] = value

    def atomic(self, idx, update, frame):
        """Apply ``update(old) -> new`` atomically; return the old value (0 when out of bounds)."""
        t = _current()
        parts, off = self._locate(idx)
        if getattr(t, "is_cuda_thread", False):
            t.access(self, parts, off, ATOMIC, frame)
        if off is None:
            return self._zero
        with _atomic_lock:
            old = self._data[parts]
            self._data[parts] = update(old)
        return old

    def copy_to_host(self):
        return self._data


_atomic_lock = threading.Lock()


class AddressSpace:
    """Hands out aligned virtual base addresses for one space (the grid's global memory, or a block's shared memory)."""

    def __init__(self, align: int, start: int = 0):
        self.align = align
        self.next = start

    def place(self, nbytes: int) -> int:
        base = -(-self.next // self.align) * self.align
        self.next = base + max(int(nbytes), 1)
        return base
