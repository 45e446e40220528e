"""Sum reduction: each block reduces its slice in shared memory, a second pass reduces the partials.

Pass 1 launches ``blocks`` blocks of ``THREADS`` threads. Each thread first accumulates a
grid-stride slice into a register (so any ``n`` works with a bounded grid), then the block halves
the active range in shared memory (``s`` = THREADS/2, THREADS/4, ... 1) and thread 0 writes the
block's partial sum. Pass 2 runs the same kernel with one block over the partials.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from kernels.launch import THREADS, ceil_div, device_empty, to_device

MAX_BLOCKS = 256  # partial sums of pass 1; pass 2 reduces them with one block


@cuda.jit
def block_sum_kernel(out, a):
    """out[blockIdx.x] = sum of the elements of ``a`` this block's threads visit (grid-stride)."""
    buf = cuda.shared.array(THREADS, float32)
    tid = cuda.threadIdx.x
    acc = float32(0.0)
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        acc += a[i]
    buf[tid] = acc
    cuda.syncthreads()  # every thread's partial is in buf before anyone reads a neighbour's
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            buf[tid] += buf[tid + s]
        cuda.syncthreads()  # this level's sums are written before the next level reads them
        s //= 2
    if tid == 0:
        out[cuda.blockIdx.x] = buf[0]


def reduce_sum(a: np.ndarray, max_blocks: int = MAX_BLOCKS) -> np.float32:
    """Sum of a 1D float32 array on the device (two passes, no atomics: deterministic).

    ``max_blocks`` (<= THREADS) caps pass 1; each thread then strides over several elements.
    """
    if not 1 <= max_blocks <= THREADS:
        raise ValueError(f"reduce_sum: max_blocks must be in [1, {THREADS}], got {max_blocks}")
    a = np.ascontiguousarray(a, dtype=np.float32).ravel()
    if a.size == 0:
        return np.float32(0.0)
    # Pass 1: THREADS per block (a power of two: the tree halves it), at most max_blocks blocks.
    blocks = max(1, min(max_blocks, ceil_div(a.size, THREADS)))
    d_partial = device_empty(blocks, np.float32)
    block_sum_kernel[blocks, THREADS](d_partial, to_device(a))
    # Pass 2: one block folds the partial sums (blocks <= THREADS, one per thread at most).
    d_total = device_empty(1, np.float32)
    block_sum_kernel[1, THREADS](d_total, d_partial)
    return d_total.copy_to_host()[0]


def reference_sum(a: np.ndarray) -> np.float32:
    """What :func:`reduce_sum` must return (accumulated in float64, rounded to float32)."""
    return np.float32(np.asarray(a, dtype=np.float64).sum())
