"""A job: one kernel call cut into chunks that the session's thread and the helper share.

A job is a kind (which compiled loop runs it), its arguments as one int64 record plus a few
float scalars, and a number of chunks. The record's fields are named (``layout``: a namedtuple
of offsets, readable as constants inside compiled code, ``args[GEMM.m]``), and ``pack`` fills it
by name, so neither side counts slots. Chunks are the same whether or not the helper runs and
whichever thread takes them, so results never depend on timing.
"""
from __future__ import annotations

import contextlib
import threading
from collections import namedtuple
from functools import lru_cache
from typing import Optional

import numpy as np
from numba import njit

from course.providers.cpu.scratch import carve

# Job kinds: the dispatcher (dispatch.py) picks the compiled loop by this number.
GEMM, DEPTHWISE, EPILOGUE, DEPTHWISE_NHWC, MAX_POOL, IM2COL_GEMM, WINOGRAD, SCALE_SHIFT = 1, 2, 3, 4, 5, 6, 7, 8

# The float scalars every kind may use: a GEMM's beta and the epilogue's activation constants.
FLOATS = namedtuple("Floats", "beta lo hi alpha")(0, 1, 2, 3)

ALIGN = 16  # chunk boundaries on whole SIMD vectors / GEMM micro-tiles
F32 = 4  # bytes per float32
# A job's own counters for parts of its work (claimed, then made), a cache line (8 words) apart.
SYNC_WORDS, SYNC_DONE = 40, 8


def layout(typename: str, fields: str):
    """The named offsets of a kind's int64 record: ``kind`` first, then ``fields`` in order."""
    names = ("kind",) + tuple(fields.split())
    return namedtuple(typename, names)(*range(len(names)))


def pack(lay, kind: int, **values) -> np.ndarray:
    """The int64 record of ``lay`` with every field given by name (a missing or unknown name is
    an error: a job must never run with a field left at zero by mistake)."""
    names, wanted = _names(type(lay))
    if values.keys() != wanted:
        raise TypeError(f"{type(lay).__name__}: missing {sorted(wanted - set(values))}, "
                        f"unknown {sorted(set(values) - wanted)}")
    return np.array([kind] + [values[name] for name in names], dtype=np.int64)


@lru_cache(maxsize=None)
def _names(cls) -> tuple:
    names = cls._fields[1:]  # after ``kind``
    return names, frozenset(names)


def floats(beta=0.0, lo=0.0, hi=0.0, alpha=0.0) -> np.ndarray:
    """The float scalars of a job, by name (see FLOATS)."""
    return np.array((beta, lo, hi, alpha), dtype=np.float64)


@njit(nogil=True, cache=True)
def address(a):
    """The address of a's first element (5x quicker than ``a.ctypes.data`` from Python)."""
    return a.ctypes.data


def split(total: int, parts: int = 2) -> tuple[int, int]:
    """(step, chunks) cutting ``total`` into ``parts`` bands aligned to ALIGN (one if too small)."""
    if total < parts * ALIGN:
        return max(total, 1), 1
    step = -(-total // parts)
    step = -(-step // ALIGN) * ALIGN
    return step, -(-total // step)


class Job:
    """A job's arguments, worked out once: ``post()`` runs it (shared with the helper in a run).

    ``keep`` holds every array whose address the record (or ``table``, a GEMM's B operands)
    holds, so none is freed while the job may still run. ``scratch`` lists (field, floats) of
    buffers made afresh for each run (``fresh_scratch``: carved from the workspace the session
    planned for the step when there is one, see scratch.py); a job's counters (the ``sync``
    field) are always fresh and zeroed too. A prepared convolution (prepared.py) posts a kept job
    again with new operand addresses (and that run's workspace)."""
    __slots__ = ("layout", "values", "floats", "chunks", "keep", "table", "scratch")

    def __init__(self, lay, values: np.ndarray, fl: np.ndarray, chunks: int, keep: tuple,
                 table: Optional[np.ndarray] = None, scratch: tuple = ()):
        self.layout, self.values, self.floats, self.chunks = lay, values, fl, chunks
        self.keep, self.table, self.scratch = keep, table, scratch

    def fresh_scratch(self, values: np.ndarray, workspace: Optional[np.ndarray] = None) -> tuple:
        """Scratch buffers (and zeroed counters) for one run, from ``workspace`` when it holds them
        all, their addresses written into ``values``; returns them, to keep alive until the job
        is done."""
        arrays = carve(workspace, scratch_pieces(self.scratch))
        for (field, _), a in zip(self.scratch, arrays):
            if field == "sync":
                a[:] = 0
            values[getattr(self.layout, field)] = address(a)
        return tuple(arrays)

    def scratch_fields(self) -> tuple:
        return tuple(getattr(self.layout, field) for field, _ in self.scratch)

    def post_fresh(self, workspace: Optional[np.ndarray] = None) -> None:
        """Post with scratch of its own (a replayed record: the last run's scratch may be gone, or
        belong to another run's arena)."""
        self.keep = self.keep + self.fresh_scratch(self.values, workspace)
        self.post()

    def post(self) -> None:
        jobs = getattr(_RECORDING, "jobs", None)
        if jobs is not None:
            jobs.append(self)
        from course.providers.cpu.pool import POOL

        POOL.run(self.values, self.floats, self.chunks)


def scratch_pieces(scratch) -> list:
    """The (dtype, shape) pieces of a job's ``scratch`` fields: float32 buffers, int64 counters."""
    return [(np.int64, (SYNC_WORDS,)) if field == "sync" else (np.float32, (size,)) for field, size in scratch]


def make_job(lay, kind: int, fl: np.ndarray, chunks: int, keep: tuple, b_table=None, scratch=(),
             workspace: Optional[np.ndarray] = None, **values) -> Job:
    """A Job of ``kind`` whose record is ``values`` by name; the ``scratch`` fields get their
    buffers from ``fresh_scratch`` (from ``workspace`` when it holds them; kept in the job's
    ``keep``)."""
    record = pack(lay, kind, **values)
    job = Job(lay, record, fl, chunks, keep, b_table, tuple(scratch))
    job.keep = keep + job.fresh_scratch(record, workspace)
    return job


_RECORDING = threading.local()


@contextlib.contextmanager
def recording():
    """Collect (in a list) the jobs this thread posts meanwhile."""
    before = getattr(_RECORDING, "jobs", None)
    _RECORDING.jobs = jobs = []
    try:
        yield jobs
    finally:
        _RECORDING.jobs = before
