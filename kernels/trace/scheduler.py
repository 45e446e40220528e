"""Run a kernel body block by block, one Python thread per CUDA thread.

Threads of a block run concurrently (under the GIL) and meet at ``syncthreads()`` through
:class:`BlockSync`. Blocks run one after another, as Numba's own simulator does. A thread that
finishes while others wait at a barrier, or threads waiting at two different barriers, is
barrier divergence: the trace stops with :class:`BarrierDivergenceError` instead of hanging.
A wall-clock ``timeout`` and a per-thread ``max_steps`` (memory accesses + barriers) stop
endless loops; a thread stuck in pure computation is interrupted with an asynchronous exception.
"""
from __future__ import annotations

import ctypes
import threading
import time

from kernels.trace.errors import BarrierDivergenceError, KernelFault, TraceTimeout
from kernels.trace.memory import LOCAL, AddressSpace, site_of


class Abort(BaseException):
    """Unwinds a kernel thread when the trace is stopped (a BaseException: kernel code cannot catch it)."""


class Dim3:
    __slots__ = ("x", "y", "z")

    def __init__(self, x, y, z):
        self.x, self.y, self.z = x, y, z

    def __iter__(self):
        return iter((self.x, self.y, self.z))

    def __repr__(self):
        return f"Dim3({self.x}, {self.y}, {self.z})"


class RunState:
    """What every thread of one trace shares: limits, the abort flag, the first error."""

    def __init__(self, grid, block, timeout, max_steps):
        self.grid = grid
        self.block = block
        self.deadline = time.monotonic() + timeout if timeout else None
        self.timeout = timeout
        self.max_steps = max_steps if max_steps else float("inf")
        self.abort = False
        self.error = None
        self.lock = threading.Lock()
        self.sync = None  # the running block's BlockSync
        self.next_uid = 0

    def new_uid(self) -> int:
        with self.lock:
            self.next_uid += 1
            return self.next_uid

    def fail(self, err: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = err
            self.abort = True
        sync = self.sync
        if sync is not None:
            with sync.cond:
                sync.cond.notify_all()

    def check(self, t) -> None:
        if t.steps > self.max_steps:
            self.fail(TraceTimeout(f"thread {t.threadIdx_t} of block {t.blockIdx_t} exceeded "
                                   f"max_steps={self.max_steps} memory accesses + barriers (endless loop?)"))
            raise Abort
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.fail(TraceTimeout(f"the kernel ran longer than timeout={self.timeout} s (endless loop?)"))
            raise Abort


class BlockSync:
    """The barrier of one block; detects divergence instead of deadlocking."""

    def __init__(self, n: int, rs: RunState, block_idx):
        self.cond = threading.Condition(threading.RLock())
        self.live = n
        self.exited = []
        self.arrived = []
        self.gen = 0
        self.result = None
        self.rs = rs
        self.block_idx = block_idx

    def wait(self, t, site, value=None):
        with self.cond:
            if self.rs.abort:
                raise Abort
            self.arrived.append((t, site, value))
            gen = self.gen
            self._maybe_release()
            while self.gen == gen and not self.rs.abort:
                self.cond.wait()
            if self.rs.abort:
                raise Abort
            return self.result

    def exit(self, t, normal: bool):
        with self.cond:
            self.live -= 1
            if normal:
                self.exited.append(t)
            self._maybe_release()

    def _maybe_release(self):
        if not self.arrived or len(self.arrived) != self.live:
            return
        sites = {s for _, s, _ in self.arrived}
        if self.exited:
            self.rs.fail(BarrierDivergenceError(self._exited_message()))
        elif len(sites) > 1:
            where = ", ".join(sorted(f"line {_line(s)}" for s in sites))
            self.rs.fail(BarrierDivergenceError(
                f"block {self.block_idx}: threads wait at different syncthreads() calls ({where}); "
                f"every thread of a block must reach the same barrier"))
        else:
            self.result = [v for _, _, v in self.arrived]
            self.gen += 1
            self.arrived = []
        self.cond.notify_all()

    def _exited_message(self) -> str:
        gone = [t.threadIdx_t for t in self.exited]
        site = self.arrived[0][1]
        shown = ", ".join(str(g) for g in gone[:4]) + (" ..." if len(gone) > 4 else "")
        return (f"barrier divergence in block {self.block_idx}: {len(gone)} thread(s) ({shown}) "
                f"finished without reaching the syncthreads() at line {_line(site)} where "
                f"{len(self.arrived)} other thread(s) wait. On a GPU this hangs or corrupts shared "
                f"memory; an early `return` before a barrier is the usual cause (guard the work "
                f"with `if` instead)")


def _line(site) -> int:
    code, lasti = site
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line
    return code.co_firstlineno


class CudaThread(threading.Thread):
    """One CUDA thread: its indices, its access log and its position among the barriers."""

    is_cuda_thread = True

    def __init__(self, fn, args, rs: RunState, blk, block_idx, thread_idx, linear: int):
        super().__init__(daemon=True)
        self.fn, self.args, self.rs, self.blk = fn, args, rs, blk
        self.blockIdx_t = block_idx
        self.threadIdx_t = thread_idx
        self.blockIdx = Dim3(*block_idx)
        self.threadIdx = Dim3(*thread_idx)
        self.gidx = tuple(b * d + t for b, d, t in zip(block_idx, rs.block, thread_idx))
        self.linear = linear
        self.warp, self.lane = divmod(linear, 32)
        self.log = []
        self.oob = []
        self.occ = {}
        self.epoch = 0
        self.steps = 0

    def run(self):
        normal = False
        try:
            self.fn(*self.args)
            normal = True
        except Abort:
            pass
        except BaseException as e:  # noqa: BLE001 - any error in the learner's kernel is reported
            err = KernelFault(f"block {self.blockIdx_t}, thread {self.threadIdx_t}: "
                              f"{type(e).__name__}: {e}")
            err.__cause__ = e
            self.rs.fail(err)
        finally:
            self.blk.sync.exit(self, normal)

    def access(self, arr, parts, off, kind, frame):
        """Log one element access (called by TracedArray)."""
        rs = self.rs
        if rs.abort:
            raise Abort
        self.steps += 1
        if self.steps > rs.max_steps or (self.steps & 255) == 0:
            rs.check(self)
        site = site_of(frame)
        occ = self.occ.get(site, 0)
        self.occ[site] = occ + 1
        if off is None:
            self.oob.append((arr.space, arr.name, parts, kind, frame.f_lineno))
        elif arr.space != LOCAL:
            self.log.append((arr.space, arr.uid, arr.base + off, arr.itemsize, kind, site, occ,
                             self.epoch, frame.f_lineno))

    def barrier(self, site, value=None):
        rs = self.rs
        if rs.abort:
            raise Abort
        self.steps += 1
        rs.check(self)
        result = self.blk.sync.wait(self, site, value)
        self.epoch += 1
        return result


class BlockState:
    """Per-block shared memory and barrier."""

    def __init__(self, n, rs, block_idx):
        self.sync = BlockSync(n, rs, block_idx)
        self.shared = {}
        self.shared_arrays = []
        self.space = AddressSpace(16)
        self.lock = threading.Lock()


def run_block(fn, args, rs: RunState, block_idx) -> tuple[list, BlockState]:
    """Run every thread of one block to completion; raise the first error any of them hit."""
    bx, by, bz = rs.block
    blk = BlockState(bx * by * bz, rs, block_idx)
    rs.sync = blk.sync
    threads = []
    for z in range(bz):
        for y in range(by):
            for x in range(bx):
                threads.append(CudaThread(fn, args, rs, blk, block_idx, (x, y, z), x + bx * (y + by * z)))
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.05)
            if rs.deadline is not None and time.monotonic() > rs.deadline and not rs.abort:
                rs.fail(TraceTimeout(f"the kernel ran longer than timeout={rs.timeout} s (endless loop?)"))
            if rs.abort:
                _interrupt(threads)
                break
    rs.sync = None
    if rs.error is not None:
        raise rs.error
    return threads, blk


def _interrupt(threads) -> None:
    """Stop threads stuck in pure computation by raising Abort inside them; wait briefly."""
    end = time.monotonic() + 5.0
    for t in threads:
        if t.is_alive() and t.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident), ctypes.py_object(Abort))
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))


def block_indices(grid):
    """Block indices in launch order (x fastest)."""
    gx, gy, gz = grid
    return [(x, y, z) for z in range(gz) for y in range(gy) for x in range(gx)]
