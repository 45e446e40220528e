"""Inclusive prefix sum (scan): out[i] = a[0] + a[1] + ... + a[i], on int32 data, for any n.

Three launches, scan-then-propagate (Harris, Sengupta & Owens, GPU Gems 3 ch. 39):

1. ``scan_block_kernel``: each block scans its own segment of ``blockDim.x`` elements in shared
   memory and writes the segment's total to ``block_sums[blockIdx.x]``;
2. the same kernel with one block scans the block totals (so n <= THREADS**2 here);
3. ``add_offsets_kernel``: every element of block b > 0 adds the scanned total of blocks 0..b-1.

The block scan is **Hillis–Steele** (1986): in step d = 1, 2, 4, ..., every element t >= d adds the
element d places before it. log2(T) steps, but T*log2(T) - (T - 1) additions against T - 1 for a
sequential loop: not work-efficient. Blelloch's (1990) up-sweep/down-sweep does 2(T - 1) additions
in 2*log2(T) steps. Each step reads before anyone writes, so it needs two barriers: after the reads
(nobody overwrites a value another thread still has to read) and after the writes (the step is
complete before the next one reads it). int32 makes the result exact, whatever the order of the
additions (as for CSR's row pointers or a stream compaction's output offsets).
"""
from __future__ import annotations

import numpy as np
from numba import cuda, int32

from kernels.launch import ceil_div, device_empty, to_device

THREADS = 64  # threads per block = elements per block segment (a power of two)


def make_scan_block(threads: int):
    """The block-scan kernel for blocks of ``threads`` threads (the shared size is a compile-time constant)."""

    @cuda.jit
    def scan_block_kernel(out, block_sums, a):
        """Inclusive scan of each block's segment of a; block_sums[blockIdx.x] = the segment's total."""
        buf = cuda.shared.array(threads, int32)
        t = cuda.threadIdx.x
        i = cuda.blockIdx.x * threads + t
        buf[t] = a[i] if i < a.shape[0] else 0  # past the end: 0 adds nothing
        cuda.syncthreads()  # the segment is in shared memory before step 1 reads it
        d = 1
        while d < threads:
            v = 0
            if t >= d:
                v = buf[t - d]
            cuda.syncthreads()  # every read of this step is done before anyone overwrites
            if t >= d:
                buf[t] += v
            cuda.syncthreads()  # this step's sums are written before the next step reads them
            d *= 2
        if i < out.shape[0]:
            out[i] = buf[t]
        if t == threads - 1:
            block_sums[cuda.blockIdx.x] = buf[t]

    return scan_block_kernel


scan_block_kernel = make_scan_block(THREADS)


@cuda.jit
def add_offsets_kernel(out, scanned_sums):
    """out[i] += scanned_sums[b - 1] for the elements i of block b >= 1 (blockDim.x per block)."""
    b = cuda.blockIdx.x
    i = cuda.grid(1)
    if b > 0 and i < out.shape[0]:
        out[i] += scanned_sums[b - 1]


def scan(a: np.ndarray) -> np.ndarray:
    """Inclusive prefix sum of a 1D int32 array of at most THREADS**2 elements, on the device."""
    a = np.ascontiguousarray(a, dtype=np.int32).ravel()
    n = a.size
    if n > THREADS * THREADS:
        raise ValueError(f"scan: at most {THREADS * THREADS} elements (one block scans the block totals), got {n}")
    if n == 0:
        return a.copy()
    # Launch configuration: one block of THREADS threads per THREADS elements.
    blocks = ceil_div(n, THREADS)
    d_out = device_empty(n, np.int32)
    d_sums = device_empty(blocks, np.int32)
    scan_block_kernel[blocks, THREADS](d_out, d_sums, to_device(a))
    if blocks > 1:
        d_scanned = device_empty(blocks, np.int32)
        scan_block_kernel[1, THREADS](d_scanned, device_empty(1, np.int32), d_sums)
        add_offsets_kernel[blocks, THREADS](d_out, d_scanned)
    return d_out.copy_to_host()


def hillis_steele_additions(threads: int) -> int:
    """Additions of one Hillis–Steele block scan: sum over d = 1, 2, 4, ... < T of (T - d)."""
    total, d = 0, 1
    while d < threads:
        total += threads - d
        d *= 2
    return total


def reference_scan(a: np.ndarray) -> np.ndarray:
    """What :func:`scan` must return: numpy's cumulative sum in int32."""
    return np.cumsum(np.asarray(a, dtype=np.int32), dtype=np.int32)
