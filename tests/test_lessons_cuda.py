"""Lessons 04 and 05 (CUDA model, shared memory), beyond the shared rules in
tests/test_lesson_format.py: the setup silences Numba's small-grid warnings, the plug-it-in cell
runs the learner's kernel in the engine, and the graded kernels meet the tracer's structural bars
(the numbers the hidden tests grade) at one more awkward size."""
from functools import lru_cache
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.authoring import cell_kind
from autograder.inproc import run_notebook

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ("04_cuda_model", "05_shared_memory")


def _nb(lesson):
    return ROOT / "solutions" / lesson / f"{lesson}.ipynb"


@lru_cache(maxsize=None)
def _namespace(lesson):
    res = run_notebook(_nb(lesson))
    assert not res.errors and not res.failed(), (res.errors, res.failed())
    return res.namespace


@pytest.mark.parametrize("lesson", LESSONS)
def test_setup_and_plug_in(lesson):
    cells = nbformat.read(str(_nb(lesson)), as_version=4).cells
    setup = "\n".join(c.source for c in cells if cell_kind(c) == "setup")
    assert "NumbaPerformanceWarning" in setup, "the setup must silence Numba's small-grid warnings"
    sources = "\n".join(c.source for c in cells)
    assert "providers=[KernelProvider(" in sources or "mine = KernelProvider(" in sources, \
        "the plug-it-in cell must run the learner's kernel in the engine through a KernelProvider"


def _trace(kernel, grid, block, *args):
    import kernels.trace as kt

    rep = kt.run(kernel, grid, block, *args, timeout=30)
    assert rep.out_of_bounds == [] and rep.races == []
    return rep


def test_lesson05_tiled_and_regblock_solutions_meet_the_exact_counts():
    """The reference answers are graded on exact counts: check them here at one more awkward shape."""
    ns = _namespace("05_shared_memory")
    from course.testing import assert_close, random_tensor
    from kernels.matmul_naive import reference_matmul

    M, N, K = 11, 19, 21
    A, B = random_tensor((M, K), seed=1), random_tensor((K, N), seed=2)
    C = np.zeros((M, N), np.float32)
    rep = _trace(ns["matmul_tiled_kernel"], (3, 2), (8, 8), A, B, C)
    assert_close(C, reference_matmul(A, B), rtol=1e-5, atol=1e-5)
    assert (rep.per_array["A"]["loads"], rep.per_array["B"]["loads"]) == ns["tiled_loads"](M, N, K, 8)
    C = np.zeros((M, N), np.float32)
    rep = _trace(ns["matmul_regblock_kernel"], (1, 1), (8, 8), A, B, C)
    assert_close(C, reference_matmul(A, B), rtol=1e-5, atol=1e-5)
    assert rep.shared_loads == 64 * 3 * 8 * (4 + 4)  # 64 threads, ceil(21/8) = 3 steps, BK*(TM+TN)
    a = random_tensor((45, 7), seed=3)
    out = np.zeros((7, 45), np.float32)
    rep = _trace(ns["transpose_kernel"], (1, 2), (32, 8), out, a)
    assert np.array_equal(out, a.T) and rep.max_conflict_degree == 1


def test_lesson04_timeline_overlap_never_loses_to_serial():
    ns = _namespace("04_cuda_model")
    tl = ns["chunk_timeline"]
    g = np.random.default_rng(0)
    for _ in range(50):
        n = int(g.integers(1, 10))
        d = g.uniform(0, 5, 3)
        serial = tl(n, *d, overlap=False)[:, :, 1].max()
        over = tl(n, *d, overlap=True)[:, :, 1].max()
        assert over <= serial + 1e-12
        assert over >= n * d.max() - 1e-9  # the busiest engine is a lower bound
        assert np.isclose(serial, n * d.sum())


def test_lesson04_scan_and_histogram_solutions_at_more_awkward_sizes():
    ns = _namespace("04_cuda_model")
    a = np.random.default_rng(9).integers(-99, 99, 191).astype(np.int32)
    out, sums = np.zeros(191, np.int32), np.zeros(3, np.int32)
    rep = _trace(ns["scan_block_kernel"], 3, 64, out, sums, a)
    assert np.array_equal(out[128:], np.cumsum(a[128:])) and sums.tolist() == [a[:64].sum(), a[64:128].sum(), a[128:].sum()]
    assert rep.global_loads == 191 and rep.global_stores == 194
    keys = np.random.default_rng(10).integers(0, 16, 901).astype(np.int32)
    counts = np.zeros(16, np.int32)
    rep = _trace(ns["histogram_kernel"], 5, 24, counts, keys)  # 24 threads: a partial warp
    assert np.array_equal(counts, np.bincount(keys, minlength=16))
    assert rep.shared_atomics == 901 and rep.global_atomics == 5 * 16
    from kernels.occupancy import A100, occupancy
    assert ns["sm_occupancy"](192, 48, 20000, A100) == occupancy(192, 48, 20000, A100)


def test_lesson05_softmax_solution_reads_twice_at_another_shape():
    ns = _namespace("05_shared_memory")
    from course.testing import assert_close
    from kernels.softmax import reference_softmax

    x = (np.random.default_rng(11).standard_normal((3, 333)) * 80).astype(np.float32)
    out = np.zeros_like(x)
    rep = _trace(ns["softmax_kernel"], 3, 64, out, x)
    assert_close(out, reference_softmax(x), rtol=1e-5, atol=1e-6)
    assert rep.global_loads == 2 * x.size and rep.global_stores == x.size and rep.max_conflict_degree == 1
