"""kernels.scan: the Hillis–Steele block scan and the three-launch device scan, on the simulator
and the tracer, at sizes that are not multiples of the block."""
import numpy as np
import pytest

from kernels import scan, trace


def _keys(n, seed=0):
    return np.random.default_rng(seed).integers(-100, 100, n).astype(np.int32)


@pytest.mark.parametrize("n", [1, 5, 64, 65, 200, 64 * 64])
def test_scan_matches_cumsum(n):
    a = _keys(n, n)
    got = scan.scan(a)
    assert got.dtype == np.int32 and np.array_equal(got, scan.reference_scan(a))


def test_scan_limits():
    assert scan.scan(np.zeros(0, np.int32)).size == 0
    with pytest.raises(ValueError, match="at most"):
        scan.scan(np.zeros(64 * 64 + 1, np.int32))


@pytest.mark.parametrize("n", [1, 63, 64, 150])
def test_block_scan_on_the_tracer(n):
    blocks = -(-n // 64)
    a = _keys(n, 7)
    out, sums = np.zeros(n, np.int32), np.zeros(blocks, np.int32)
    rep = trace.run(scan.scan_block_kernel, blocks, 64, out, sums, a)
    assert rep.out_of_bounds == [] and rep.races == []
    for b in range(blocks):
        seg = a[64 * b: 64 * (b + 1)]
        assert np.array_equal(out[64 * b: 64 * (b + 1)], np.cumsum(seg))
        assert sums[b] == seg.sum()
    assert rep.global_loads == n and rep.global_stores == n + blocks
    # every addition ends in one shared store; the initial copy is one store per thread
    assert rep.shared_stores == blocks * (64 + scan.hillis_steele_additions(64))


def test_hillis_steele_work():
    assert scan.hillis_steele_additions(64) == 6 * 64 - 63 == 321
    assert scan.hillis_steele_additions(1) == 0
    assert [scan.hillis_steele_additions(t) for t in (2, 4, 8)] == [1, 5, 17]


def test_a_scan_without_its_middle_barrier_races():
    """The reason for the first barrier of each step, as the tracer sees it."""
    from numba import cuda, int32

    @cuda.jit
    def racy(out, a):
        buf = cuda.shared.array(32, int32)
        t = cuda.threadIdx.x
        buf[t] = a[t]
        cuda.syncthreads()
        d = 1
        while d < 32:
            if t >= d:
                buf[t] += buf[t - d]  # reads a value its neighbour overwrites in the same step
            cuda.syncthreads()
            d *= 2
        out[t] = buf[t]

    rep = trace.run(racy, 1, 32, np.zeros(32, np.int32), np.ones(32, np.int32))
    assert rep.race_count > 0
