"""What a CUDA provider keeps between kernel calls: a stream per running thread, pinned staging
buffers, and the weights it uploaded once.

* **Streams.** Each thread that runs a plan gets its own stream (created at its first run and
  reused by its later ones), so concurrent requests queue their kernels and copies independently;
  ``running()`` synchronizes the thread's stream when its run ends.
* **Copies.** ``to_device`` stages a host array in a pinned buffer and copies it asynchronously
  on the run's stream; ``to_host`` copies asynchronously into a pinned buffer and waits on an
  event recorded right after the copy, then hands out an ordinary numpy copy (the pinned buffer
  is reused by the thread's next run).
* **Weights.** A constant input (an initializer, given as a host array) is uploaded once, on the
  stream of the run that first needs it; an event recorded after the upload orders every other
  stream behind it (``event.wait(stream)``: the GPU waits, not the host).
* **The simulator** runs one kernel at a time in the whole process, so launches are serialised
  there (on a GPU, streams of different threads really overlap).
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Hashable, Optional

import numpy as np
from numba import cuda

from course._env import simulator_on

# Numba's simulator keeps one global "current kernel" and configures a kernel object in place.
_LAUNCH = threading.Lock() if simulator_on() else contextlib.nullcontext()


class _Thread:
    """One thread's stream, its pinned buffers (by key) and the uploads its stream has waited for."""

    def __init__(self):
        self.stream = cuda.stream()
        self.event = cuda.event()
        self.pinned: dict[Hashable, np.ndarray] = {}
        self.waited: set[Hashable] = set()


class DeviceState:
    def __init__(self):
        self._local = threading.local()
        self._lock = threading.Lock()
        self._constants: dict[Hashable, tuple] = {}

    # --- streams --------------------------------------------------------------------------------
    def thread(self) -> _Thread:
        mine = getattr(self._local, "state", None)
        if mine is None:
            mine = self._local.state = _Thread()
        return mine

    def stream(self):
        """The calling thread's stream: every kernel and copy of its runs is queued there."""
        return self.thread().stream

    @contextlib.contextmanager
    def running(self):
        stream = self.stream()
        try:
            yield
        finally:
            stream.synchronize()  # nothing of this run is still in flight when run() returns

    def launch(self, kernel, grid, block, *args) -> None:
        with _LAUNCH:
            kernel[grid, block, self.stream()](*args)

    def empty(self, shape, dtype=np.float32):
        return cuda.device_array(tuple(int(d) for d in shape), dtype=np.dtype(dtype), stream=self.stream())

    # --- copies ---------------------------------------------------------------------------------
    def _pinned(self, key: Hashable, shape, dtype) -> np.ndarray:
        bufs = self.thread().pinned
        buf = bufs.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            buf = bufs[key] = cuda.pinned_array(tuple(shape), dtype=dtype)
        return buf

    def to_device(self, x: np.ndarray, key: Hashable):
        """A device copy of host array ``x``, staged through this thread's pinned buffer ``key``."""
        x = np.asarray(x)
        out = self.empty(x.shape, x.dtype)
        if x.size:
            buf = self._pinned(key, x.shape, x.dtype)
            np.copyto(buf, x)  # safe: the previous run's copy from buf finished when that run ended
            out.copy_to_device(buf, stream=self.stream())
        return out

    def to_host(self, d, key: Hashable) -> np.ndarray:
        """A host copy of device array ``d``: async into a pinned buffer, then wait for that copy."""
        mine = self.thread()
        buf = self._pinned(key, tuple(d.shape), d.dtype)
        if buf.size:
            d.copy_to_host(buf, stream=mine.stream)
            mine.event.record(mine.stream)
            mine.event.synchronize()  # the copy (and what was queued before it) is done
        return buf.copy()

    # --- weights --------------------------------------------------------------------------------
    def constant(self, arr: np.ndarray, tag: Hashable = None, prepare: Optional[Callable] = None):
        """The device copy of constant ``arr`` (``prepare(arr)`` first, when given: a reshaped or
        transposed weight), uploaded once per ``(arr, tag)``; this thread's stream waits for it."""
        key = (id(arr), tag)
        entry = self._constants.get(key)
        if entry is None:
            with self._lock:
                entry = self._constants.get(key)
                if entry is None:
                    host = np.ascontiguousarray(prepare(arr) if prepare is not None else arr)
                    stream = self.stream()
                    dev = cuda.to_device(host, stream=stream)
                    done = cuda.event()
                    done.record(stream)
                    entry = self._constants[key] = (arr, host, dev, done)  # arr kept: its id stays unique
        mine = self.thread()
        if key not in mine.waited:
            entry[3].wait(mine.stream)  # later work on this stream starts after the upload
            mine.waited.add(key)
        return entry[2]

    def on_device(self, x, tag: Hashable = None, prepare: Optional[Callable] = None):
        """``x`` as a device array: a host array is a constant input, uploaded once (``prepare``
        applies to it only); a device array is returned as it is."""
        if isinstance(x, np.ndarray):
            return self.constant(x, tag, prepare)
        return x
