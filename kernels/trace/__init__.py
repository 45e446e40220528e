"""``kernels.trace``: run a CUDA kernel on an instrumented simulator and measure its memory behaviour.

    report = kernels.trace.run(kernel, grid, block, *args, timeout=60, max_steps=None)
    report.as_dict()   # global_loads, global_stores, shared_loads, shared_stores, global_sectors,
                       # bank_conflicts, max_conflict_degree, out_of_bounds, races, ...
    print(report)      # a readable table; notebooks render report._repr_html_()

``kernel`` is a ``@cuda.jit`` kernel (on the simulator or a GPU: its ``.py_func`` is traced) or
a plain Python function written against ``numba.cuda``. Its body runs on the CPU with ``cuda``
replaced by an instrumented module (:mod:`kernels.trace.fake_cuda`); numpy array arguments are
wrapped so every element access is logged (they are modified in place, as a launch would);
device arrays are copied to the host, traced, and copied back. One Python thread runs each CUDA
thread of a block; blocks run one after another. What the numbers mean is documented in
:mod:`kernels.trace.analysis`. Out-of-bounds accesses (negative indices included) are recorded,
not performed: a load returns 0, a store is dropped, and they are not counted as loads/stores.
``accesses(kernel, grid, block, *args)`` runs the same trace and returns every access as a record
(:mod:`kernels.trace.accesses`), for per-warp pictures.
"""
from __future__ import annotations

import sys
import types

import kernels  # noqa: F401  (course decides simulator vs GPU before numba loads)
import numba
import numpy as np
from numba import cuda as _real_cuda

from kernels.trace.analysis import OutOfBounds, Race, Totals, bank_cost, sector_count
from kernels.trace.errors import BarrierDivergenceError, KernelFault, TraceError, TraceTimeout
from kernels.trace.fake_cuda import FakeCuda, FakeNumba
from kernels.trace.memory import GLOBAL, AddressSpace, TracedArray
from kernels.trace.report import Report
from kernels.trace.scheduler import RunState, block_indices, run_block
from kernels.trace.checked import checked_run
from kernels.trace.accesses import Access, accesses, warp_requests

__all__ = ["run", "checked_run", "accesses", "warp_requests", "Access", "Report", "TraceError", "KernelFault",
           "BarrierDivergenceError", "TraceTimeout", "OutOfBounds", "Race", "bank_cost", "sector_count"]

MAX_THREADS_PER_BLOCK = 1024


def _dims(d, what: str) -> tuple[int, int, int]:
    parts = tuple(d) if isinstance(d, (tuple, list)) else (d,)
    if not 1 <= len(parts) <= 3:
        raise TraceError(f"{what} must have 1 to 3 dimensions, got {d!r}")
    try:
        parts = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise TraceError(f"{what} must be integers, got {d!r}") from None
    if any(p < 1 for p in parts):
        raise TraceError(f"{what} dimensions must be >= 1, got {d!r}")
    return parts + (1,) * (3 - len(parts))


def _python_body(kernel):
    fn = getattr(kernel, "py_func", kernel)
    if not isinstance(fn, types.FunctionType):
        raise TraceError(f"cannot trace {kernel!r}: expected a @cuda.jit kernel or a Python function")
    return fn


def _names_used(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_used(const)
    return names


class _Instrumenter:
    """Rebuilds functions with ``cuda``/``numba`` globals (and device functions) swapped out."""

    def __init__(self, fake_cuda):
        self.fake_cuda = fake_cuda
        self.fake_numba = FakeNumba(numba, fake_cuda)
        self.done = {}

    def swap(self, value):
        if value is _real_cuda or value is sys.modules.get("numba.cuda"):
            return self.fake_cuda
        if value is numba:
            return self.fake_numba
        py = getattr(value, "py_func", None)
        if isinstance(py, types.FunctionType) and not isinstance(value, types.FunctionType):
            return self.function(py)  # a device function (or kernel) called from the kernel
        return value

    def function(self, fn):
        if id(fn) in self.done:
            return self.done[id(fn)]
        g = dict(fn.__globals__)
        self.done[id(fn)] = fn  # guards against recursion while this one is being built
        for name in _names_used(fn.__code__):
            if name in g:
                g[name] = self.swap(g[name])
        cells = None
        if fn.__closure__:
            cells = []
            for cell in fn.__closure__:
                try:
                    cells.append(types.CellType(self.swap(cell.cell_contents)))
                except ValueError:  # an empty cell
                    cells.append(types.CellType())
            cells = tuple(cells)
        new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, cells)
        new.__kwdefaults__ = fn.__kwdefaults__
        self.done[id(fn)] = new
        return new


def _wrap_args(fn, args, rs):
    """Global arrays become TracedArrays named after the kernel's parameters; returns (args, write-backs)."""
    names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    space = AddressSpace(256, start=1 << 20)
    wrapped, arrays, writebacks = [], {}, []
    for i, a in enumerate(args):
        name = names[i] if i < len(names) else f"arg{i}"
        host = None
        if isinstance(a, np.ndarray) and a.ndim > 0:
            host = a
        elif hasattr(a, "copy_to_host") and hasattr(a, "shape") and not isinstance(a, TracedArray):
            host = np.asarray(a.copy_to_host())
            if hasattr(a, "copy_to_device"):
                writebacks.append((a, host))
        if host is None:
            wrapped.append(a)
            continue
        arr = TracedArray(host, GLOBAL, name, space.place(host.nbytes), rs.new_uid())
        arrays[arr.uid] = arr
        wrapped.append(arr)
    return wrapped, arrays, writebacks


def run(kernel, grid, block, *args, timeout: float | None = 60.0, max_steps: int | None = None) -> Report:
    """Trace one launch ``kernel[grid, block](*args)`` and return its :class:`Report`.

    ``timeout``: wall-clock seconds for the whole trace (None: no limit); ``max_steps``: memory
    accesses + barriers allowed per thread. Either raises :class:`TraceTimeout`. A Python error in
    the kernel raises :class:`KernelFault`; threads skipping a barrier raise
    :class:`BarrierDivergenceError`. All are ``course.KernelError``s.
    """
    fn = _python_body(kernel)
    grid3, block3 = _dims(grid, "grid"), _dims(block, "block")
    if int(np.prod(block3)) > MAX_THREADS_PER_BLOCK:
        raise TraceError(f"block {block!r} has {int(np.prod(block3))} threads; CUDA allows at most {MAX_THREADS_PER_BLOCK}")
    rs = RunState(grid3, block3, timeout, max_steps)
    fake = FakeCuda(_real_cuda, rs)
    body = _Instrumenter(fake).function(fn)
    wrapped, arrays, writebacks = _wrap_args(fn, args, rs)
    totals = Totals(arrays)
    for b in block_indices(grid3):
        threads, blk = run_block(body, wrapped, rs, b)
        totals.add_block(b, threads, blk)
    for dev, host in writebacks:
        dev.copy_to_device(host)
    return Report(fn.__name__, grid3, block3, totals, totals.arrays)
