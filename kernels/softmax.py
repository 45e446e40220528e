"""Row softmax: one block per row, max and sum reduced in shared memory.

softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m) with m = max_k x_k. Subtracting the row max
keeps every exponent <= 0, so exp never overflows (an unshifted exp(100) is inf in float32).
Rows longer than the block are covered by a block-stride loop.

``softmax_rows_kernel`` reads each row three times (max; exp and sum, storing the exponentials;
rescaling them). ``softmax_online_kernel`` reads it twice and writes it once, with the online
normaliser (Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"): one pass keeps
a running max m and a running sum s of exp(x - m), rescaling s by exp(m_old - m_new) whenever the
max grows, and the pairs (m, s) of two threads combine the same way:
(m, s) = (max(m1, m2), s1 exp(m1 - m) + s2 exp(m2 - m)). The second pass writes exp(x - m) / s.
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


@cuda.jit(device=True)
def _online_step(m, s, v):
    """The running (max, sum of exp(x - max)) after one more value v."""
    if v > m:
        return v, s * math.exp(m - v) + float32(1.0)
    return m, s + math.exp(v - m)


@cuda.jit(device=True)
def _online_combine(m1, s1, m2, s2):
    """Two running (max, sum) pairs merged; an empty pair (s == 0) leaves the other as it is."""
    if s2 == 0:
        return m1, s1
    if s1 == 0:
        return m2, s2
    m = max(m1, m2)
    return m, s1 * math.exp(m1 - m) + s2 * math.exp(m2 - m)


@cuda.jit
def softmax_online_kernel(out, x):
    """out[r, :] = softmax(x[r, :]) reading x twice (online max and sum, then the outputs);
    one block of THREADS threads per row (grid = x.shape[0])."""
    bm = cuda.shared.array(THREADS, float32)
    bs = cuda.shared.array(THREADS, float32)
    row = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    n = x.shape[1]
    m = float32(-math.inf)
    s = float32(0.0)
    for j in range(tid, n, THREADS):  # pass 1 over the row: running max and sum together
        m, s = _online_step(m, s, x[row, j])
    bm[tid] = m
    bs[tid] = s
    cuda.syncthreads()  # every thread's pair is written before the tree reads it
    h = THREADS // 2
    while h > 0:
        if tid < h:
            bm[tid], bs[tid] = _online_combine(bm[tid], bs[tid], bm[tid + h], bs[tid + h])
        cuda.syncthreads()  # this level is complete before the next one reads it
        h //= 2
    row_max = bm[0]
    inv = float32(1.0) / bs[0]
    for j in range(tid, n, THREADS):  # pass 2 over the row: the outputs, each written once
        out[row, j] = math.exp(x[row, j] - row_max) * inv


def softmax_rows_online(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of a 2D float32 array with :func:`softmax_online_kernel`."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"softmax_rows_online: expected a 2D array, got shape {x.shape}")
    d_out = device_empty(x.shape, np.float32)
    # Launch configuration: one block per row, THREADS threads stride along the row.
    if x.shape[0]:
        softmax_online_kernel[x.shape[0], THREADS](d_out, to_device(x))
    return d_out.copy_to_host()
