"""kernels.histogram: the privatised shared-memory histogram, exact counts and its atomics."""
import numpy as np
import pytest

from kernels import histogram, trace


def _keys(n, bins=16, seed=0):
    return np.random.default_rng(seed).integers(0, bins, n).astype(np.int32)


@pytest.mark.parametrize("n", [0, 1, 100, 1000, 2500])
def test_histogram_matches_bincount(n):
    k = _keys(n, seed=n)
    got = histogram.histogram(k)
    assert got.dtype == np.int32 and np.array_equal(got, histogram.reference_histogram(k))


def test_other_bin_counts_and_range_check():
    k = _keys(300, bins=5, seed=1)
    assert np.array_equal(histogram.histogram(k, bins=5), histogram.reference_histogram(k, 5))
    with pytest.raises(ValueError, match="keys must lie"):
        histogram.histogram(np.array([0, 16], np.int32))


@pytest.mark.parametrize("n,blocks,threads", [(1, 1, 8), (100, 2, 8), (1000, 3, 64), (777, 2, 32)])
def test_one_global_atomic_per_bin_per_block(n, blocks, threads):
    k = _keys(n, seed=n + 1)
    counts = np.zeros(16, np.int32)
    rep = trace.run(histogram.histogram_kernel, blocks, threads, counts, k)
    assert rep.out_of_bounds == [] and rep.races == []
    assert np.array_equal(counts, histogram.reference_histogram(k))
    assert rep.shared_atomics == n and rep.global_atomics == blocks * 16
    assert rep.global_loads == n and rep.global_stores == 0


def test_a_plain_increment_is_a_race_the_tracer_sees():
    from numba import cuda, int32

    @cuda.jit
    def racy(counts, keys):
        hist = cuda.shared.array(16, int32)
        t = cuda.threadIdx.x
        if t < 16:
            hist[t] = 0
        cuda.syncthreads()
        hist[keys[t]] += 1  # two threads with the same key: one update is lost on a GPU
        cuda.syncthreads()
        if t < 16:
            cuda.atomic.add(counts, t, hist[t])

    rep = trace.run(racy, 1, 32, np.zeros(16, np.int32), np.zeros(32, np.int32))
    assert rep.race_count > 0
