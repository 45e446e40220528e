"""Register-blocked (2D block-tiled) matmul: each thread computes a TM x TN micro-tile of C.

A block of (BN/TN) x (BM/TM) threads owns a BM x BN tile of C. Per step of BK along K it copies
a BM x BK tile of A and a BK x BN tile of B into shared memory (several elements per thread,
consecutive threads on consecutive addresses: coalesced), then each thread loops over the BK
slices: it loads TM values of A and TN values of B into registers and does TM*TN multiply-adds.
Per shared-memory load that is TM*TN/(TM+TN) FMAs (4 for 8x8) instead of 1/2 for the tiled
kernel, which is what lets the kernel approach the FMA throughput of the GPU.

Layout choices (each one checked with ``kernels.trace``):
* thread (ty, tx) owns rows ``ty + i*TY`` and columns ``tx + j*TX`` (strided, not contiguous):
  a warp's reads of ``sB[k, tx + j*TX]`` are consecutive words (no bank conflict) and its
  reads of the A tile are two broadcast words;
* the A tile is stored transposed, ``sAT[k, m]``, so the inner loop reads it along a row; its
  rows are padded by APAD = 4 words: the transposed store of lane ``l`` hits bank
  ``4*(l % BK) + l // BK``, all different, where an unpadded row of 128 words would put all BK
  stores of a row group in one bank (an 8-way conflict).
Out-of-range loads store zeros, so any M, N, K works; stores of C are guarded.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from kernels.matmul_naive import check_matmul_shapes, run_matmul

BM, BN, BK, TM, TN = 128, 128, 8, 8, 8  # the GPU configuration: 256 threads, 64 outputs each
APAD = 4


def make_matmul_regblock(bm: int, bn: int, bk: int, tm: int, tn: int, apad: int = APAD):
    """Compile the register-blocked kernel for one tiling; launch with block (bn//tn, bm//tm)."""
    tx_n, ty_n = bn // tn, bm // tm
    nthreads = tx_n * ty_n
    if bm % tm or bn % tn or (bm * bk) % nthreads or (bk * bn) % nthreads:
        raise ValueError(f"make_matmul_regblock: tiling {(bm, bn, bk, tm, tn)} does not split evenly over {nthreads} threads")
    a_loads = bm * bk // nthreads
    a_row = bm + apad  # computed here: shared-array shapes must be compile-time literals
    b_loads = bk * bn // nthreads

    @cuda.jit
    def matmul_regblock_kernel(A, B, C):
        sAT = cuda.shared.array((bk, a_row), float32)
        sB = cuda.shared.array((bk, bn), float32)
        acc = cuda.local.array((tm, tn), float32)
        regA = cuda.local.array(tm, float32)
        regB = cuda.local.array(tn, float32)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * tx_n + tx
        row0 = cuda.blockIdx.y * bm
        col0 = cuda.blockIdx.x * bn
        M, K = A.shape
        N = B.shape[1]
        for i in range(tm):
            for j in range(tn):
                acc[i, j] = 0.0
        for k0 in range(0, K, bk):
            for l in range(a_loads):
                idx = tid + l * nthreads
                r = idx // bk
                c = idx % bk
                v = float32(0.0)
                if row0 + r < M and k0 + c < K:
                    v = A[row0 + r, k0 + c]
                sAT[c, r] = v
            for l in range(b_loads):
                idx = tid + l * nthreads
                r = idx // bn
                c = idx % bn
                v = float32(0.0)
                if k0 + r < K and col0 + c < N:
                    v = B[k0 + r, col0 + c]
                sB[r, c] = v
            cuda.syncthreads()  # the A and B tiles are complete before the FMA loop reads them
            for k in range(bk):
                for i in range(tm):
                    regA[i] = sAT[k, ty + i * ty_n]
                for j in range(tn):
                    regB[j] = sB[k, tx + j * tx_n]
                for i in range(tm):
                    for j in range(tn):
                        acc[i, j] += regA[i] * regB[j]
            cuda.syncthreads()  # all reads of this step finish before the next step's copies
        for i in range(tm):
            r = row0 + ty + i * ty_n
            for j in range(tn):
                c = col0 + tx + j * tx_n
                if r < M and c < N:
                    C[r, c] = acc[i, j]

    matmul_regblock_kernel.tiling = (bm, bn, bk, tm, tn)
    return matmul_regblock_kernel


matmul_regblock_kernel = make_matmul_regblock(BM, BN, BK, TM, TN)


def matmul_regblock(A: np.ndarray, B: np.ndarray, kernel=None) -> np.ndarray:
    """A @ B in float32 with a register-blocked kernel (default: the 128x128x8, 8x8 tiling)."""
    check_matmul_shapes(A, B, "matmul_regblock")
    kernel = matmul_regblock_kernel if kernel is None else kernel
    bm, bn, _, tm, tn = kernel.tiling
    # Launch configuration: (bn/tn) x (bm/tm) threads per block, one block per bm x bn tile of C.
    return run_matmul(kernel, A, B, (bn // tn, bm // tm), bm, bn)
