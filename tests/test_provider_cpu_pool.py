"""The CPU provider as a good citizen: its helper thread starts only when a job has work for two
threads, parks while paused (BLAS gets its threads back), stops at exit, is forgotten by a
forked child (BLAS threads restored there); COURSE_NUM_THREADS=1 means no helper; importing the
package imports no numba and writes no file. Fresh processes where the global pool's history
matters."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from course.providers.cpu import blas

pytestmark = pytest.mark.skipif(not blas.available(), reason="numpy's BLAS is not OpenBLAS")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "course" / "providers" / "cpu"
P = pytest.importorskip("course.providers.cpu.pool")
G = pytest.importorskip("course.providers.cpu.gemm")
two_threads = pytest.mark.skipif(not P.POOL.enabled(), reason="no helper thread (COURSE_NUM_THREADS=1 or one CPU)")


def _python(code: str, **env) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600,
                         cwd=ROOT, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return next(i["num_threads"] for i in threadpool_info()
                if i.get("internal_api") == "openblas" and "numpy" in i.get("filepath", ""))


def _files(root: Path) -> dict:
    """Every source file and folder under ``root`` with its mtime and size. ``__pycache__`` is
    left out: other test workers compiling into numba's default cache may write there meanwhile;
    the child below writes no bytecode, and its numba cache goes to its own NUMBA_CACHE_DIR,
    which the test checks is empty."""
    paths = [p for p in [root, *root.rglob("*")] if "__pycache__" not in p.parts]
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in paths}


def test_import_is_light_and_writes_nothing(tmp_path):
    """No numba at import, none for claims either; no file written or changed in the package."""
    before = _files(PACKAGE)
    out = _python("""
        import sys
        import numpy as np
        from course.providers.cpu import CPUExecutionProvider
        from course.providers.base import NodeSpec
        f = np.dtype(np.float32)
        spec = NodeSpec("c", "Conv", "", 11, {"group": 1}, [(f, (1, 8, 9, 9)), (f, (8, 8, 3, 3))], [(f, (1, 8, 7, 7))])
        CPUExecutionProvider().claims(spec)
        print("numba" in sys.modules)
    """, NUMBA_CACHE_DIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    assert out == "False"
    assert _files(PACKAGE) == before and not any(tmp_path.iterdir())


def test_numba_s_cache_dir_is_where_the_staleness_stamp_goes(tmp_path):
    out = _python("""
        from course.providers.cpu.dispatch import run_chunk
        print(run_chunk._cache._cache_path)
    """, NUMBA_CACHE_DIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    assert Path(out).is_relative_to(tmp_path)


def test_cached_loops_are_dropped_when_any_source_changes(tmp_path):
    from course.providers.cpu import cache

    src = tmp_path / "src"
    src.mkdir()
    (src / "gemm.py").write_text("x = 1\n")
    store = tmp_path / "cache"
    store.mkdir()
    cached = [store / "dispatch.run_chunk-15.py311.nbi", store / "dispatch.run_chunk-15.py311.1.nbc"]
    for f in cached:
        f.write_text("")
    assert cache.drop_if_stale(store, cache.sources_stamp(src))  # no stamp yet: written by an unknown version
    assert not any(f.exists() for f in cached)
    for f in cached:
        f.write_text("")
    assert not cache.drop_if_stale(store, cache.sources_stamp(src))  # unchanged: kept
    assert all(f.exists() for f in cached)
    (src / "gemm.py").write_text("x = 22\n")  # an inlined helper edited: the dispatcher is stale
    assert cache.drop_if_stale(store, cache.sources_stamp(src))
    assert not any(f.exists() for f in cached)


HELPER_LIFE = """
    import numpy as np, threading
    from course.providers.cpu import gemm, pool
    P = pool.POOL
    a, b = np.ones((1, 64, 32), np.float32), np.ones((32, 128), np.float32)
    small = np.ones((1, 8, 8), np.float32), np.ones((8, 8), np.float32)
    with pool.running() as on:
        gemm.gemm_sum(small[0], [small[1]], np.empty((8, 8), np.float32))  # one chunk: no helper
        print(on, P.thread is not None)
        y = gemm.gemm_sum(a, [b], np.empty((64, 128), np.float32))  # two chunks
        print(P.thread is not None and P.thread.is_alive(), float(y.sum()))
    P.stop()
    print(P.thread is None, [t.name for t in threading.enumerate() if t.name.startswith("course")])
"""


def test_the_helper_starts_on_the_first_job_for_two_threads_and_stops():
    lines = _python(HELPER_LIFE, COURSE_NUM_THREADS="2").splitlines()
    assert lines == ["True False", f"True {64 * 128 * 32.0}", "True []"]


def test_no_helper_with_one_thread_in_the_budget():
    lines = _python(HELPER_LIFE, COURSE_NUM_THREADS="1").splitlines()
    assert lines == ["False False", f"False {64 * 128 * 32.0}", "True []"]


@two_threads
def test_paused_parks_the_helper_and_gives_blas_its_threads_back():
    a = np.ones((1, 64, 48), np.float32)
    b = np.ones((48, 256), np.float32)
    before = _blas_threads()
    with P.running():
        G.gemm_sum(a, [b], np.empty((64, 256), np.float32))
        assert P.POOL.thread is not None and _blas_threads() == 1
        with P.paused():
            assert not P.POOL.helper_on_cpu(), "the helper still runs while paused"
            assert _blas_threads() == before
            helped = P.POOL.helped()
            y = G.gemm_sum(a, [b], np.empty((64, 256), np.float32))  # run alone meanwhile
            time.sleep(0.05)
            assert P.POOL.helped() == helped and not P.POOL.helper_on_cpu()
            assert np.all(y == 48)
        assert _blas_threads() == 1
        deadline = time.monotonic() + 30
        while P.POOL.helped() == helped and time.monotonic() < deadline:  # and it comes back
            G.gemm_sum(a, [b], np.empty((64, 256), np.float32))
        assert P.POOL.helped() > helped
    assert _blas_threads() == before


@two_threads
def test_blas_threads_restored_and_pool_released_after_a_failing_run():
    before = _blas_threads()
    with pytest.raises(RuntimeError, match="learner"):
        with P.running():
            G.gemm_sum(np.ones((1, 64, 8), np.float32), [np.ones((8, 64), np.float32)], np.empty((64, 64), np.float32))
            raise RuntimeError("learner's kernel failed")
    assert not P.POOL.lock.locked() and P.POOL.owner is None and _blas_threads() == before


@two_threads
def test_nested_and_concurrent_runs_do_not_share_the_pool():
    r = np.random.default_rng(4)
    a = r.standard_normal((1, 64, 48)).astype(np.float32)
    b = r.standard_normal((48, 256)).astype(np.float32)
    seen = {}

    def other_thread():
        with P.running() as on:  # the main thread holds the pool: this one runs alone
            seen["on"] = on
            seen["y"] = G.gemm_sum(a, [b], np.empty((64, 256), np.float32))
    with P.running() as outer:
        with P.running() as inner:
            assert outer and not inner
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert seen["on"] is False
    np.testing.assert_allclose(seen["y"], a[0].astype(np.float64) @ b, rtol=1e-5, atol=1e-4)


def _child():
    with P.running():
        y = G.gemm_sum(np.ones((1, 64, 32), np.float32), [np.ones((32, 128), np.float32)],
                       np.empty((64, 128), np.float32))
    return float(y.sum()), _blas_threads(), P.POOL.owner


@two_threads
def test_a_child_forked_during_a_run_gets_a_fresh_pool_and_its_blas_threads():
    before = _blas_threads()
    with P.running():  # the parent's helper exists and may be mid-loop at fork time
        G.gemm_sum(np.ones((1, 64, 32), np.float32), [np.ones((32, 128), np.float32)],
                   np.empty((64, 128), np.float32))
        with multiprocessing.get_context("fork").Pool(1) as pool:
            total, threads, owner = pool.apply(_child)
    assert total == 64 * 128 * 32 and threads == before and owner is None
