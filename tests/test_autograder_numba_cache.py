"""The sandbox's private NUMBA_CACHE_DIR starts with a copy of the course's compiled loops, so a
lesson that runs the CPU provider (lesson 12's capstone) does not compile it again per grade
(measured: lesson 12's solution graded in 12 s with the copy, 88 s without, on 2 busy cores)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from autograder.sandbox import PACKAGE_ROOT, numba_cache_subpath
from autograder import sandbox

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys, course
from numba.core.registry import CPUDispatcher
from course.providers.cpu import warm
warm.warm()  # every job kind once, as make install does
loops = [f for name, m in list(sys.modules.items()) if name.startswith("course.providers.cpu")
         for f in vars(m).values() if isinstance(f, CPUDispatcher)]
print(json.dumps({"hits": sum(sum(f.stats.cache_hits.values()) for f in loops),
                  "misses": sum(sum(f.stats.cache_misses.values()) for f in loops),
                  "file": course.__file__}))
"""


def test_the_cache_folder_is_where_numba_looks(tmp_path):
    from numba.core.caching import _CacheLocator

    for folder in (tmp_path / "pkgs" / "course" / "providers" / "cpu", ROOT / "course" / "ops"):
        assert numba_cache_subpath(folder) == _CacheLocator.get_suitable_cache_subpath(str(folder / "x.py"))


def test_a_sandbox_starts_with_the_compiled_loops(tmp_path, monkeypatch):
    # warm the in-tree cache as `make install` does (quick when it is warm already)
    subprocess.run([sys.executable, "-m", "course.providers.cpu.warm"], cwd=ROOT, check=True,
                   capture_output=True, env={k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"})
    monkeypatch.setattr(sandbox.tempfile, "gettempdir", lambda: str(tmp_path))
    limits = type("L", (), {"memory_mb": 0, "cpu_limit": 0, "processes": 0, "open_files": 0, "file_mb": 0})()
    box = sandbox.Sandbox.create(limits, hide=[])
    try:
        scratch = box.spec.path
        seeded = scratch / "tmp" / "numba" / numba_cache_subpath(scratch / "pkgs" / "course" / "providers" / "cpu")
        assert sorted(f.name for f in seeded.glob("*.nbi")), "no index copied"
        env = {**os.environ, "PYTHONPATH": str(scratch / "pkgs"), "NUMBA_CACHE_DIR": str(scratch / "tmp" / "numba")}
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, check=True,
                             capture_output=True, text=True).stdout
        got = json.loads(out.strip().splitlines()[-1])
        assert got["file"].startswith(str(scratch / "pkgs")), got  # the sandbox's copy of the package ran
        assert got["hits"] >= 1 and got["misses"] == 0, got  # loaded from the copy, nothing compiled
    finally:
        box.close()
    assert PACKAGE_ROOT == ROOT
