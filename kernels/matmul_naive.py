"""Naive matmul: one thread per output element, every operand read straight from global memory.

Thread (row, col) reads row ``row`` of A and column ``col`` of B: 2*K global loads per output,
2*M*N*K in total, with no reuse between threads. It is the baseline the tiled kernels beat.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from kernels.launch import ceil_div, device_empty, to_device

BLOCK = 16  # 16 x 16 = 256 threads per block


@cuda.jit
def matmul_naive_kernel(A, B, C):
    """C = A @ B for A (M, K), B (K, N), C (M, N); x indexes columns so a warp reads B coalesced."""
    col, row = cuda.grid(2)
    M, K = A.shape
    N = B.shape[1]
    if row < M and col < N:
        acc = float32(0.0)
        for k in range(K):
            acc += A[row, k] * B[k, col]
        C[row, col] = acc


def check_matmul_shapes(A: np.ndarray, B: np.ndarray, who: str) -> None:
    """Raise a readable ValueError unless A (M, K) and B (K, N) can be multiplied."""
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"{who}: cannot multiply shapes {A.shape} and {B.shape}")


def run_matmul(kernel, A: np.ndarray, B: np.ndarray, block: tuple, tile_m: int, tile_n: int) -> np.ndarray:
    """Launch a matmul kernel whose blocks each cover a tile_m x tile_n tile of C."""
    A = np.ascontiguousarray(A, dtype=np.float32)
    B = np.ascontiguousarray(B, dtype=np.float32)
    M, N = A.shape[0], B.shape[1]
    d_C = device_empty((M, N), np.float32)
    if M and N:
        grid = (ceil_div(N, tile_n), ceil_div(M, tile_m))  # x over columns, y over rows
        kernel[grid, block](to_device(A), to_device(B), d_C)
    return d_C.copy_to_host()


def matmul_naive(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A @ B in float32 with the naive kernel."""
    check_matmul_shapes(A, B, "matmul_naive")
    # Launch configuration: BLOCK x BLOCK threads, one per element of C.
    return run_matmul(matmul_naive_kernel, A, B, (BLOCK, BLOCK), BLOCK, BLOCK)


def reference_matmul(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The oracle: float64 product rounded to float32."""
    return (np.asarray(A, np.float64) @ np.asarray(B, np.float64)).astype(np.float32)
