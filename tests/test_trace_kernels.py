"""kernels.trace on the course's own kernels: exact traffic formulas, conflicts, coalescing, races."""
import numpy as np
import pytest
from numba import cuda, float32

import kernels.trace as kt
from course.testing import assert_close, random_tensor
from kernels import elementwise, matmul_naive, matmul_padded, matmul_regblock, matmul_tiled, reduce, softmax, transpose
from kernels.launch import ceil_div

F32 = dict(rtol=1e-5, atol=1e-5)


def _trace_matmul(kernel, M, N, K, tile_m, tile_n, block):
    A, B = random_tensor((M, K), seed=1), random_tensor((K, N), seed=2)
    C = np.zeros((M, N), np.float32)
    r = kt.run(kernel, (ceil_div(N, tile_n), ceil_div(M, tile_m)), block, A, B, C)
    assert_close(C, matmul_naive.reference_matmul(A, B), **F32)
    return r


@pytest.mark.parametrize("M,N,K", [(16, 16, 16), (13, 10, 7)])
def test_naive_matmul_reads_2K_per_thread(M, N, K):
    r = _trace_matmul(matmul_naive.matmul_naive_kernel, M, N, K, 16, 16, (16, 16))
    assert r.global_loads == 2 * M * N * K and r.global_stores == M * N
    per = r.per_thread("global_loads")[0, 0, 0, 0]  # block (0,0,0): [thread y, thread x]
    assert np.all(per[:M, :N] == 2 * K) and np.all(per[M:, :] == 0) and np.all(per[:, N:] == 0)
    assert r.shared_loads == 0 and r.races == [] and r.out_of_bounds == []


@pytest.mark.parametrize("M,N,K,tile", [(32, 32, 32, 8), (20, 13, 11, 8), (9, 14, 6, 4)])
def test_tiled_matmul_global_loads_formula(M, N, K, tile):
    r = _trace_matmul(matmul_tiled.make_matmul_tiled(tile), M, N, K, tile, tile, (tile, tile))
    # Each in-bounds element of A is loaded once per block column, each of B once per block row.
    assert r.per_array["A"]["loads"] == M * K * ceil_div(N, tile)
    assert r.per_array["B"]["loads"] == K * N * ceil_div(M, tile)
    assert r.global_loads == matmul_tiled.tiled_global_loads(M, N, K, tile)
    if M % tile == N % tile == K % tile == 0:
        assert r.global_loads == 2 * M * N * K // tile
    # Every thread writes both tiles once per K step and reads 2*tile values from them.
    steps = ceil_div(K, tile)
    threads = r.threads
    assert r.shared_stores == 2 * steps * threads and r.shared_loads == 2 * tile * steps * threads
    assert r.global_stores == M * N and r.barriers == 2 * steps
    assert r.bank_conflicts == 0 and r.races == [] and r.out_of_bounds == []


def test_tiled_matmul_without_second_barrier_races():
    tile = 4

    @cuda.jit
    def tiled_missing_sync(A, B, C):
        sA = cuda.shared.array((tile, tile), float32)
        sB = cuda.shared.array((tile, tile), float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row, col = cuda.blockIdx.y * tile + ty, cuda.blockIdx.x * tile + tx
        acc = float32(0.0)
        for k0 in range(0, A.shape[1], tile):
            sA[ty, tx] = A[row, k0 + tx]
            sB[ty, tx] = B[k0 + ty, col]
            cuda.syncthreads()  # tiles loaded (the barrier after the reads is missing: the bug)
            for k in range(tile):
                acc += sA[ty, k] * sB[k, tx]
        C[row, col] = acc

    A, B = random_tensor((8, 8), seed=3), random_tensor((8, 8), seed=4)
    r = kt.run(tiled_missing_sync, (2, 2), (tile, tile), A, B, np.zeros((8, 8), np.float32))
    assert r.race_count > 0
    assert {x.array for x in r.races} <= {"sA", "sB"} and r.races[0].kind == "read-write"


def test_matmul_transposed_tile_padding_removes_the_32_way_conflict():
    A, B = random_tensor((32, 32), seed=5), random_tensor((32, 32), seed=6)
    degrees = {}
    for pad in (0, 1):
        C = np.zeros((32, 32), np.float32)
        r = kt.run(matmul_padded.make_matmul_transposed_tile(32, pad), (1, 1), (32, 32), A, B, C)
        assert_close(C, matmul_naive.reference_matmul(A, B), **F32)
        degrees[pad] = (r.max_conflict_degree, r.bank_conflicts)
    assert degrees[0] == (32, 32 * 31)  # one transposed store per warp, 31 extra wavefronts each
    assert degrees[1] == (1, 0)


def _trace_transpose(kernel, rows, cols, tile, block_rows):
    a = random_tensor((rows, cols), seed=7)
    out = np.zeros((cols, rows), np.float32)
    r = kt.run(kernel, (ceil_div(cols, tile), ceil_div(rows, tile)), (tile, block_rows), out, a)
    assert_close(out, np.ascontiguousarray(a.T))
    return r


def test_transpose_sectors_and_conflicts():
    naive = _trace_transpose(transpose.make_transpose_naive(32, 8), 32, 64, 32, 8)
    shared = _trace_transpose(transpose.make_transpose_shared(32, 8, 0), 32, 64, 32, 8)
    padded = _trace_transpose(transpose.make_transpose_shared(32, 8, 1), 32, 64, 32, 8)
    n = 32 * 64
    for r in (naive, shared, padded):
        assert r.global_loads == n and r.global_stores == n
        assert r.global_load_sectors == n // 8  # a warp reads 32 consecutive floats: 4 sectors
    assert naive.global_store_sectors == n  # every lane writes its own sector
    assert shared.global_store_sectors == padded.global_store_sectors == n // 8
    assert shared.max_conflict_degree == 32 and shared.bank_conflicts == (n // 32) * 31
    assert padded.max_conflict_degree == 1 and padded.bank_conflicts == 0
    assert naive.shared_loads == 0 and shared.races == [] and padded.races == []


def test_transpose_awkward_shape_has_no_oob_and_no_race():
    r = _trace_transpose(transpose.make_transpose_shared(8, 4, 1), 13, 21, 8, 4)
    assert r.out_of_bounds == [] and r.races == []
    assert r.global_loads == r.global_stores == 13 * 21


def test_regblock_is_conflict_free_and_coalesced():
    M, N, K = 32, 32, 8
    k = matmul_regblock.make_matmul_regblock(32, 32, 8, 4, 4)  # 8 x 8 = 64 threads
    r = _trace_matmul(k, M, N, K, 32, 32, (8, 8))
    assert r.bank_conflicts == 0 and r.max_conflict_degree == 1
    assert r.global_loads == M * K + K * N  # one block: every input element read once
    assert r.global_load_sectors == (M * K + K * N) // 8  # 100% coalesced loads
    # The unpadded transposed A tile puts the 8 stores of a column group in one bank.
    bad = matmul_regblock.make_matmul_regblock(32, 32, 8, 4, 4, apad=0)
    r0 = _trace_matmul(bad, M, N, K, 32, 32, (8, 8))
    assert r0.max_conflict_degree == 8 and r0.bank_conflicts > 0


def test_reduce_and_softmax_are_race_free():
    a = random_tensor(300, seed=8)
    out = np.zeros(2, np.float32)
    r = kt.run(reduce.block_sum_kernel, 2, reduce.THREADS, out, a)
    assert_close(np.float32(out.sum()), reduce.reference_sum(a), **F32)
    assert r.races == [] and r.global_loads == 300 and r.barriers == 1 + 8  # log2(256) levels
    x = random_tensor((2, 50), seed=9, low=-5, high=5)
    y = np.zeros_like(x)
    r = kt.run(softmax.softmax_rows_kernel, 2, softmax.THREADS, y, x)
    assert_close(y, softmax.reference_softmax(x), **F32)
    assert r.races == [] and r.out_of_bounds == []


def test_grid_stride_add_is_fully_coalesced():
    a, b = random_tensor(256, seed=10), random_tensor(256, seed=11)
    out = np.zeros(256, np.float32)
    r = kt.run(elementwise.tensor_add_kernel, 2, 64, out, a, b)  # 128 threads, 2 strides each
    assert_close(out, a + b)
    assert r.global_loads == 512 and r.global_stores == 256
    assert r.coalescing_efficiency == 1.0 and r.global_sectors == 3 * 256 // 8
