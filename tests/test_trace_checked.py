"""kernels.trace.checked_run: a learner's faulty kernel fails a test readably, never crashes it."""
import numpy as np
import pytest
from numba import cuda

from kernels.trace import checked_run


@cuda.jit
def _copy(src, dst):
    i = cuda.grid(1)
    if i < dst.size:
        dst[i] = src[i]


@cuda.jit
def _copy_unguarded(src, dst):
    i = cuda.grid(1)
    dst[i] = src[i]


@cuda.jit
def _reverse_no_barrier(a):
    tile = cuda.shared.array(32, dtype=np.float32)
    t = cuda.threadIdx.x
    tile[t] = a[t]
    a[t] = tile[31 - t]  # reads a neighbour's write with no syncthreads between


@cuda.jit
def _spin(a):
    while True:
        a[0] += 1.0


def test_good_kernel_returns_counts_per_array():
    src, dst = np.arange(40, dtype=np.float32), np.zeros(40, np.float32)
    rep = checked_run(_copy, 2, 32, src, dst)
    assert np.array_equal(dst, src)
    assert rep["global_loads"] == 40 and rep["global_stores"] == 40
    assert rep["per_array"]["src"]["loads"] == 40


def test_out_of_bounds_is_an_assertion():
    with pytest.raises(AssertionError, match="out-of-bounds"):
        checked_run(_copy_unguarded, 2, 32, np.zeros(40, np.float32), np.zeros(40, np.float32))


def test_race_is_an_assertion():
    with pytest.raises(AssertionError, match="race"):
        checked_run(_reverse_no_barrier, 1, 32, np.arange(32, dtype=np.float32))


def test_endless_loop_is_an_assertion():
    with pytest.raises(AssertionError, match="did not finish"):
        checked_run(_spin, 1, 1, np.zeros(1, np.float32), timeout=2, max_steps=5_000)
