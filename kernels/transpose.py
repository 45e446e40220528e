"""Matrix transpose three ways: naive, through shared memory, and through padded shared memory.

All three use blocks of TILE x ROWS threads; a block moves one TILE x TILE tile, each thread
TILE/ROWS elements (fewer threads than elements keeps more loads in flight per thread).

* naive: reads are coalesced (a warp reads one row segment), writes are strided by the row
  length: every lane writes its own 32-byte sector, 8x the traffic of a coalesced write.
* shared: the tile is read coalesced into shared memory and written out coalesced, reading the
  tile by column (``tile[tx, ty]``). With TILE = 32 that column lies in a single bank: 32-way
  bank conflicts.
* padded: the same with ``tile[TILE][TILE + 1]``; row r starts r words later, so a column's 32
  words fall in 32 different banks.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from kernels.launch import ceil_div, device_empty, to_device

TILE = 32
ROWS = 8  # block = (TILE, ROWS) threads: 256


def make_transpose_naive(tile: int = TILE, rows: int = ROWS):
    """out[j, i] = a[i, j] straight from global to global memory."""

    @cuda.jit
    def transpose_naive_kernel(out, a):
        x = cuda.blockIdx.x * tile + cuda.threadIdx.x  # column of a
        y0 = cuda.blockIdx.y * tile + cuda.threadIdx.y
        for dy in range(0, tile, rows):
            y = y0 + dy
            if y < a.shape[0] and x < a.shape[1]:
                out[x, y] = a[y, x]

    transpose_naive_kernel.tiling = (tile, rows)
    return transpose_naive_kernel


def make_transpose_shared(tile: int = TILE, rows: int = ROWS, pad: int = 0):
    """Stage each tile in a (tile, tile + pad) shared array; pad=1 removes the bank conflicts."""
    row_len = tile + pad  # computed here: shared-array shapes must be compile-time literals

    @cuda.jit
    def transpose_shared_kernel(out, a):
        buf = cuda.shared.array((tile, row_len), float32)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        x = cuda.blockIdx.x * tile + tx
        y0 = cuda.blockIdx.y * tile
        for dy in range(0, tile, rows):
            if y0 + ty + dy < a.shape[0] and x < a.shape[1]:
                buf[ty + dy, tx] = a[y0 + ty + dy, x]
        cuda.syncthreads()  # the whole tile is in shared memory before it is read transposed
        ox = y0 + tx  # output column = input row
        oy0 = cuda.blockIdx.x * tile
        for dy in range(0, tile, rows):
            if oy0 + ty + dy < a.shape[1] and ox < a.shape[0]:
                out[oy0 + ty + dy, ox] = buf[tx, ty + dy]

    transpose_shared_kernel.tiling = (tile, rows)
    return transpose_shared_kernel


transpose_naive_kernel = make_transpose_naive()
transpose_shared_kernel = make_transpose_shared(pad=0)
transpose_padded_kernel = make_transpose_shared(pad=1)


def transpose(a: np.ndarray, kernel=None) -> np.ndarray:
    """a.T of a 2D float32 array on the device (default: the padded shared-memory kernel)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"transpose: expected a 2D array, got shape {a.shape}")
    kernel = transpose_padded_kernel if kernel is None else kernel
    tile, block_rows = kernel.tiling
    rows, cols = a.shape
    d_out = device_empty((cols, rows), np.float32)
    if a.size:
        # Launch configuration: (tile, block_rows) threads; one block per tile x tile tile of a.
        grid = (ceil_div(cols, tile), ceil_div(rows, tile))
        kernel[grid, (tile, block_rows)](d_out, to_device(a))
    return d_out.copy_to_host()
