"""Row softmax: one block per row, max and sum reduced in shared memory.

softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m) with m = max_k x_k. Subtracting the row max
keeps every exponent <= 0, so exp never overflows (an unshifted exp(100) is inf in float32).
Rows longer than the block are covered by a block-stride loop.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32

from kernels.launch import to_device, device_empty

THREADS = 128  # threads per block (a power of two: the reductions halve it)


@cuda.jit(device=True)
def _block_reduce(buf, tid, op_max):
    """Tree-reduce buf[0:blockDim] in place to buf[0]; max when op_max else sum."""
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            if op_max:
                buf[tid] = max(buf[tid], buf[tid + s])
            else:
                buf[tid] += buf[tid + s]
        cuda.syncthreads()  # level complete before the next (smaller) level reads it
        s //= 2


@cuda.jit
def softmax_rows_kernel(out, x):
    """out[r, :] = softmax(x[r, :]); launch with one block per row (grid = x.shape[0])."""
    buf = cuda.shared.array(THREADS, float32)
    row = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    n = x.shape[1]
    m = float32(-math.inf)
    for j in range(tid, n, cuda.blockDim.x):
        m = max(m, x[row, j])
    buf[tid] = m
    cuda.syncthreads()  # all per-thread maxima written before the tree reads them
    _block_reduce(buf, tid, True)
    row_max = buf[0]
    cuda.syncthreads()  # everyone has read the max before buf is reused for the sum
    acc = float32(0.0)
    for j in range(tid, n, cuda.blockDim.x):
        e = math.exp(x[row, j] - row_max)
        out[row, j] = e
        acc += e
    buf[tid] = acc
    cuda.syncthreads()  # all per-thread sums written before the tree reads them
    _block_reduce(buf, tid, False)
    inv = float32(1.0) / buf[0]
    for j in range(tid, n, cuda.blockDim.x):
        out[row, j] = out[row, j] * inv  # each thread rescales only the entries it wrote


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of a 2D float32 array on the device."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"softmax_rows: expected a 2D array, got shape {x.shape}")
    d_out = device_empty(x.shape, np.float32)
    # Launch configuration: one block per row, THREADS threads stride along the row.
    rows = x.shape[0]
    if rows:
        softmax_rows_kernel[rows, THREADS](d_out, to_device(x))
    return d_out.copy_to_host()


def reference_softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable numpy softmax over the last axis (the oracle for the kernel)."""
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
