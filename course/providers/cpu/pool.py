"""Two threads for one inference: the session's thread plus one helper thread that waits inside
compiled code while a run is on and takes chunks of each job.

Why not Python threads or numba's pools: waking a sleeping thread costs about as much as a whole
small layer. So while ``running()`` is on (the session enters it around each run):

- OpenBLAS is set to one thread (each thread's GEMM chunks run on that thread);
- a job is posted by writing its record and a ticket word (job sequence number, chunk count,
  next chunk); both threads claim chunks with a compare-and-swap on the ticket, and the poster
  waits until every chunk is done. The helper is never needed for progress: the poster claims
  whatever is left, so a late or absent helper only costs speed.

A good citizen: the helper starts on the first job with two chunks (not before), parks in
``paused()`` (the session pauses us around a learner's kernel, and BLAS gets its threads back
there), stops at interpreter exit, and is forgotten in a forked child (BLAS threads restored).
``COURSE_NUM_THREADS`` sets the thread budget: 1 means no helper at all.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from collections import namedtuple

import numpy as np
from numba import njit

from course.providers.cpu import blas, cache
from course.providers.cpu.dispatch import run_chunk
from course.providers.cpu.intrinsics import add, call_sleep, call_yield, cas, libc_sleep, libc_yield, load, store

# The pool's shared words, a cache line (8 int64) apart where both threads write them often.
STATE = namedtuple("State", "run ticket done yield_fn helped sleep_fn staying park")(0, 8, 16, 24, 32, 33, 34, 35)
STATE_WORDS = 40
# Between runs the helper stays in compiled code a while (IDLE_*: yields, then naps growing to
# IDLE_NAP_MAX_US, IDLE_NAPS_US in all) before it sleeps on an Event: woken from the Event it
# needs the GIL, which the run's thread may not let go of for milliseconds.
IDLE_YIELDS, IDLE_NAP_MAX_US, IDLE_NAPS_US = 20000, 500, 500_000
MAX_CHUNKS = 1 << 15  # ticket = seq << 32 | chunks << 16 | next chunk: one word, never two jobs mixed
RECORD_WORDS, FLOAT_WORDS = 64, 4


@njit(cache=True, nogil=True)
def _claim_and_run(state, args, fl, seq):
    """Run chunks of job ``seq`` until none is left unclaimed; returns how many this thread ran."""
    ran = 0
    while True:
        t = load(state, STATE.ticket)
        if (t >> 32) != seq or (t & 0xFFFF) >= ((t >> 16) & 0xFFFF):
            return ran
        if cas(state, STATE.ticket, t, t + 1):
            run_chunk(args, fl, t & 0xFFFF)
            add(state, STATE.done, 1)
            ran += 1


@njit(cache=True, nogil=True)
def _post_and_run(state, args, fl, seq, chunks):
    """Publish job ``seq`` (its record already written), work on it, wait until it is done."""
    store(state, STATE.done, 0)
    store(state, STATE.ticket, (seq << 32) | (chunks << 16))
    _claim_and_run(state, args, fl, seq)
    while load(state, STATE.done) < chunks:  # the helper is finishing a chunk it claimed
        call_yield(state[STATE.yield_fn])


@njit(cache=True, nogil=True)
def _run_alone(args, fl, chunks):
    for i in range(chunks):
        run_chunk(args, fl, i)


@njit(cache=True, nogil=True)
def _helper_loop(state, args, fl):
    """The helper while a run is on: watch the ticket, take chunks of each new job."""
    seen = load(state, STATE.ticket) >> 32
    while load(state, STATE.run) != 0:
        seq = load(state, STATE.ticket) >> 32
        if seq != seen:
            seen = seq
            add(state, STATE.helped, _claim_and_run(state, args, fl, seq))
        else:
            call_yield(state[STATE.yield_fn])


@njit(cache=True, nogil=True)
def _helper_stay(state, args, fl, naps_us):
    """The helper from one wake-up on: run jobs while a run is on, and between runs wait for the
    next one here (yields, then naps); returns when idle for ``naps_us`` of naps, or at once
    when parked (``park``), or for a negative ``naps_us`` (how it is compiled beforehand)."""
    if naps_us < 0:
        _helper_loop(state, args, fl)
        return
    store(state, STATE.staying, 1)
    while load(state, STATE.park) == 0:
        _helper_loop(state, args, fl)
        idle, nap, slept = 0, 1, 0
        while load(state, STATE.run) == 0 and load(state, STATE.park) == 0 and slept < naps_us:
            if idle < IDLE_YIELDS:
                idle += 1
                call_yield(state[STATE.yield_fn])
            else:
                call_sleep(state[STATE.sleep_fn], nap)
                slept += nap
                nap = min(2 * nap, IDLE_NAP_MAX_US)
        if slept >= naps_us:
            break
    store(state, STATE.staying, 0)


def thread_budget() -> int:
    """Threads a run may use: ``COURSE_NUM_THREADS``, else min(2, CPUs this process may use).
    Read at each run (cheaply: the CPU count is asked of the OS at most once a second)."""
    value = os.environ.get("COURSE_NUM_THREADS")
    if value is not None:
        value = value.strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return min(2, _usable_cpus())


_CPUS = [-1.0, 1]  # (monotonic time read, CPUs this process may use)


def _usable_cpus() -> int:
    now = time.monotonic()
    if now - _CPUS[0] < 1.0:
        return _CPUS[1]
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        cpus = os.cpu_count() or 1
    _CPUS[:] = [now, cpus]
    return cpus


class _Running:
    """``Pool.running()``: a plain context object (a run enters one; a generator-based context
    manager costs several times more)."""

    __slots__ = ("pool", "shared")

    def __init__(self, pool: "Pool"):
        self.pool, self.shared = pool, False

    def __enter__(self) -> bool:
        self.shared = self.pool._start_run()
        return self.shared

    def __exit__(self, *exc) -> bool:
        if self.shared:
            self.pool._end_run()
        return False


class Pool:
    """The session's thread and one helper, sharing jobs while ``running``."""

    def __init__(self):
        self._reset()

    def _reset(self):
        self.state = np.zeros(STATE_WORDS, dtype=np.int64)
        self.state[STATE.yield_fn] = libc_yield()
        self.state[STATE.sleep_fn] = libc_sleep()
        self.args = np.zeros(RECORD_WORDS, dtype=np.int64)
        self.fl = np.zeros(FLOAT_WORDS, dtype=np.float64)
        self.seq = 0
        self.owner = None  # thread ident of the run that holds the pool
        self.pausing = False
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread = None
        self.stopping = False
        self.blas_before = None

    def enabled(self) -> bool:
        return thread_budget() >= 2 and sys.platform != "win32"

    def helped(self) -> int:
        """Chunks the helper thread has run so far."""
        return int(self.state[STATE.helped])

    def helper_on_cpu(self) -> bool:
        """True while the helper runs or waits in compiled code (not asleep on its Event)."""
        return bool(self.state[STATE.staying])

    def running(self) -> _Running:
        """While on, jobs posted by this thread are shared with the helper; enters as whether so
        (False: a nested run, the pool off, or another thread's run holds it: run alone)."""
        return _Running(self)

    def _start_run(self) -> bool:
        if self.owner == threading.get_ident() or not self.enabled() or not self.lock.acquire(blocking=False):
            return False
        try:
            self.owner = threading.get_ident()
            self.blas_before = blas.set_threads(1)
            self.state[STATE.run] = 1
            if self.thread is not None and not self.state[STATE.staying]:
                self.wake.set()  # asleep on its Event (a helper still in compiled code sees run itself)
        except BaseException:
            self._end_run()
            raise
        return True

    def _end_run(self) -> None:
        self.state[STATE.run] = 0
        if self.blas_before is not None:
            blas.set_threads(self.blas_before)
        self.blas_before = None
        self.owner = None
        self.lock.release()

    @contextlib.contextmanager
    def paused(self):
        """Inside a run: park the helper (off the CPU) and give BLAS its threads back, for
        someone else's kernel; both come back afterwards. Elsewhere: nothing."""
        if self.owner != threading.get_ident() or self.pausing:
            yield
            return
        self.pausing = True
        self.state[STATE.park] = 1
        self.state[STATE.run] = 0
        if self.blas_before is not None:
            blas.set_threads(self.blas_before)
        deadline = time.monotonic() + 1.0
        while self.helper_on_cpu() and time.monotonic() < deadline:
            time.sleep(0)  # the helper leaves compiled code at its next look at the flags
        try:
            yield
        finally:
            if self.blas_before is not None:
                blas.set_threads(1)
            self.state[STATE.park] = 0
            self.state[STATE.run] = 1
            self.pausing = False
            if self.thread is not None:
                self.wake.set()

    def run(self, values: np.ndarray, fl: np.ndarray, chunks: int) -> None:
        """Run a job: ``values`` its int64 record (kind first), ``fl`` its float scalars."""
        cache.check()
        if self.owner == threading.get_ident() and chunks > 1 and not self.pausing:
            self._start_helper()
            self.args[:len(values)] = values
            self.fl[:len(fl)] = fl
            self.seq = self.seq % (1 << 30) + 1
            _post_and_run(self.state, self.args, self.fl, self.seq, min(chunks, MAX_CHUNKS - 1))
        else:  # arrays of its own: the pool's belong to the run that holds it (maybe in another thread)
            _run_alone(values, fl, chunks)

    def _start_helper(self):
        if self.thread is not None:
            return
        # Compile (or load) the helper's loops here, where they return at once (run is 0 for
        # a moment): compiled in the helper, they would leave this thread alone meanwhile, and
        # a script ending during that compilation aborts inside LLVM at exit.
        self.state[STATE.run] = 0
        _helper_stay(self.state, self.args, self.fl, -1)
        self.state[STATE.run] = 1
        self.thread = threading.Thread(target=self._helper, name="course-cpu-helper", daemon=True)
        self.thread.start()
        self.wake.set()

    def _helper(self):
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.stopping:
                return
            _helper_stay(self.state, self.args, self.fl, IDLE_NAPS_US)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the helper thread (at interpreter exit): it leaves compiled code and returns."""
        thread = self.thread
        if thread is None:
            return
        self.stopping = True
        self.state[STATE.park] = 1
        self.state[STATE.run] = 0
        self.wake.set()
        thread.join(timeout)
        self.thread = None

    def after_fork_in_child(self):
        """A forked child has no helper thread: forget it, and give BLAS back its threads if the
        fork came during a run."""
        before = self.blas_before
        self._reset()
        if before is not None:
            blas.set_threads(before)


POOL = Pool()
os.register_at_fork(after_in_child=POOL.after_fork_in_child)
atexit.register(POOL.stop)


def running():
    """Context manager: share this thread's jobs with the helper thread."""
    return POOL.running()


def paused():
    """Context manager: park the helper and restore BLAS threads while someone else's code runs."""
    return POOL.paused()


def compile_loops() -> None:
    """Compile (or load) the pool's own loops without starting the helper (warm.py)."""
    cache.check()
    state = np.zeros(STATE_WORDS, dtype=np.int64)
    args, fl = np.zeros(RECORD_WORDS, dtype=np.int64), np.zeros(FLOAT_WORDS, dtype=np.float64)
    _helper_stay(state, args, fl, -1)  # run is 0: returns at once
    _post_and_run(state, args, fl, 1, 0)  # no chunks: returns at once
