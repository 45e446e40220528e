"""Tiled matmul that keeps the A tile transposed in shared memory, with and without padding.

Register-blocked kernels store the A tile transposed (``sAT[k, m]``) so their inner loop reads
it along a row. The copy into it is where banks bite: in a warp, lanes with consecutive ``tx``
write ``sAT[tx, ty]``, i.e. words ``tx*TILE + ty``. With TILE = 32 every one of those words lies
in the same bank (32 words per row = one full trip around the 32 banks): a 32-way conflict.
Declaring the array ``[TILE][TILE + 1]`` shifts each row by one bank, so the same 32 writes hit
32 different banks. The extra column is never read.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from kernels.matmul_naive import check_matmul_shapes, run_matmul

TILE = 16


def make_matmul_transposed_tile(tile: int, pad: int = 1):
    """Tiled matmul storing A's tile transposed in a (tile, tile + pad) shared array."""
    row_len = tile + pad  # computed here: shared-array shapes must be compile-time literals

    @cuda.jit
    def matmul_padded_kernel(A, B, C):
        sAT = cuda.shared.array((tile, row_len), float32)
        sB = cuda.shared.array((tile, tile), float32)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        M, K = A.shape
        N = B.shape[1]
        acc = float32(0.0)
        for k0 in range(0, K, tile):
            value = float32(0.0)
            if row < M and k0 + tx < K:
                value = A[row, k0 + tx]
            sAT[tx, ty] = value  # transposed store: the padding spreads these over all banks
            value = float32(0.0)
            if k0 + ty < K and col < N:
                value = B[k0 + ty, col]
            sB[ty, tx] = value
            cuda.syncthreads()  # both tiles are complete before any thread reads them
            for k in range(tile):
                acc += sAT[k, ty] * sB[k, tx]
            cuda.syncthreads()  # all reads done before the next iteration overwrites the tiles
        if row < M and col < N:
            C[row, col] = acc

    return matmul_padded_kernel


matmul_padded_kernel = make_matmul_transposed_tile(TILE, 1)


def matmul_padded(A: np.ndarray, B: np.ndarray, kernel=None, tile: int = TILE) -> np.ndarray:
    """A @ B in float32 with the padded transposed-tile kernel."""
    check_matmul_shapes(A, B, "matmul_padded")
    kernel = matmul_padded_kernel if kernel is None else kernel
    # Launch configuration: tile x tile threads per block, one block per tile of C.
    return run_matmul(kernel, A, B, (tile, tile), tile, tile)
