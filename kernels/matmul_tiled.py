"""Shared-memory tiled matmul for any M, N, K.

Each block computes a TILE x TILE tile of C. It walks the K dimension one tile at a time:
the block's threads cooperatively copy a TILE x TILE tile of A and of B into shared memory
(one element each), then every thread reads a row of the A tile and a column of the B tile from
shared memory. Each element of A is therefore loaded from global memory once per block column,
N/TILE times in all instead of N times: total loads 2*M*N*K/TILE when TILE divides everything.

Loads outside A or B store a zero in the tile (a zero adds nothing to the dot product), so the
kernel needs no assumption that M, N or K is a multiple of TILE; only the final store is guarded.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from kernels.matmul_naive import check_matmul_shapes, run_matmul

TILE = 16


def make_matmul_tiled(tile: int):
    """Return the tiled matmul kernel for a given tile size (a compile-time constant)."""

    @cuda.jit
    def matmul_tiled_kernel(A, B, C):
        sA = cuda.shared.array((tile, tile), float32)
        sB = cuda.shared.array((tile, tile), float32)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        M, K = A.shape
        N = B.shape[1]
        acc = float32(0.0)
        for k0 in range(0, K, tile):
            # Guarded loads: outside the matrix, the tile holds zeros.
            if row < M and k0 + tx < K:
                sA[ty, tx] = A[row, k0 + tx]
            else:
                sA[ty, tx] = 0.0
            if k0 + ty < K and col < N:
                sB[ty, tx] = B[k0 + ty, col]
            else:
                sB[ty, tx] = 0.0
            cuda.syncthreads()  # both tiles are complete before any thread reads them
            for k in range(tile):
                acc += sA[ty, k] * sB[k, tx]
            cuda.syncthreads()  # everyone is done reading before the next tile overwrites them
        if row < M and col < N:
            C[row, col] = acc

    return matmul_tiled_kernel


matmul_tiled_kernel = make_matmul_tiled(TILE)


def matmul_tiled(A: np.ndarray, B: np.ndarray, kernel=None, tile: int = TILE) -> np.ndarray:
    """A @ B in float32 with the tiled kernel (``kernel`` from ``make_matmul_tiled(tile)``)."""
    check_matmul_shapes(A, B, "matmul_tiled")
    kernel = matmul_tiled_kernel if kernel is None else kernel
    # Launch configuration: tile x tile threads per block, one block per tile of C.
    return run_matmul(kernel, A, B, (tile, tile), tile, tile)


def tiled_global_loads(M: int, N: int, K: int, tile: int) -> int:
    """Exact global loads of the tiled kernel: A is read once per block column, B once per block row.

    With guarded loads, only in-bounds elements are loaded: M*K elements of A, each read by
    ceil(N/tile) block columns, and K*N elements of B, each by ceil(M/tile) block rows.
    """
    return M * K * (-(-N // tile)) + K * N * (-(-M // tile))
