"""Histogram with atomics, privatised per block in shared memory.

``counts[k]`` = how many ``keys[i] == k``, for integer keys in ``[0, bins)`` (e.g. the 4-bit codes
of an int4-quantized tensor, or class ids). Many threads increment the same counter at once, so
a plain ``counts[k] += 1`` loses updates (a read-modify-write race): ``cuda.atomic.add`` makes the
read, add and write one indivisible operation. Atomics on one address serialise, and global ones
travel to the L2 cache, so each block first counts into a **private** histogram in shared memory
(fast atomics, contended only within the block), then adds each bin to the global histogram
once: ``blocks * bins`` global atomics instead of one per key.

The zero-fill and the flush stride over the bins by ``blockDim.x``, so any block size works,
larger or smaller than ``bins``; the keys are covered by a grid-stride loop.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, int32

from kernels.launch import ceil_div, to_device

THREADS = 128
MAX_BLOCKS = 8  # the grid-stride loop covers any n; more blocks mean more flushes
BINS = 16


def make_histogram_kernel(bins: int):
    """The privatised histogram kernel for ``bins`` bins (a compile-time constant)."""

    @cuda.jit
    def histogram_kernel(counts, keys):
        """counts[k] += #{i : keys[i] == k}: shared-memory atomics, then one global atomic per bin per block."""
        hist = cuda.shared.array(bins, int32)
        t = cuda.threadIdx.x
        for b in range(t, bins, cuda.blockDim.x):
            hist[b] = 0
        cuda.syncthreads()  # the private histogram is zero before anyone counts into it
        for i in range(cuda.grid(1), keys.shape[0], cuda.gridsize(1)):
            cuda.atomic.add(hist, keys[i], 1)
        cuda.syncthreads()  # every count of this block is in before the flush reads the bins
        for b in range(t, bins, cuda.blockDim.x):
            cuda.atomic.add(counts, b, hist[b])

    return histogram_kernel


histogram_kernel = make_histogram_kernel(BINS)


def histogram(keys: np.ndarray, bins: int = BINS, kernel=None) -> np.ndarray:
    """int32 counts of each key in ``[0, bins)`` of a 1D integer array, on the device."""
    keys = np.ascontiguousarray(keys, dtype=np.int32).ravel()
    if keys.size and (keys.min() < 0 or keys.max() >= bins):
        raise ValueError(f"histogram: keys must lie in [0, {bins}), got [{keys.min()}, {keys.max()}]")
    kernel = (histogram_kernel if bins == BINS else make_histogram_kernel(bins)) if kernel is None else kernel
    d_counts = cuda.to_device(np.zeros(bins, np.int32))
    if keys.size:
        # Launch configuration: THREADS per block, at most MAX_BLOCKS blocks (grid-stride beyond).
        blocks = max(1, min(MAX_BLOCKS, ceil_div(keys.size, THREADS)))
        kernel[blocks, THREADS](d_counts, to_device(keys))
    return d_counts.copy_to_host()


def reference_histogram(keys: np.ndarray, bins: int = BINS) -> np.ndarray:
    """What :func:`histogram` must return (numpy's bincount in int32)."""
    return np.bincount(np.asarray(keys, dtype=np.int64).ravel(), minlength=bins).astype(np.int32)
