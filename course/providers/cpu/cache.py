"""Keep Numba's on-disk cache of this package's loops from going stale.

numba's ``cache=True`` checks only the timestamp of the file a function is defined in, but the
jobs are compiled together: dispatch.run_chunk (and the pool loops that call it) hold the code
of every job kind and of the helpers they inline from other files. After an edit or a ``git
pull`` of one of those alone, the cached dispatcher would keep running the old loops. So when
the first job runs, ``check()`` compares a stamp of all the package's sources (name, mtime and
size of each .py file) with the one left in numba's cache directory for this package
(``NUMBA_CACHE_DIR`` honoured: the directory numba itself picked), and drops the cached loops
there when it differs. Nothing is written at import.
"""
from __future__ import annotations

import threading
from pathlib import Path

STAMP = "course-cpu-provider.sources"
_checked = False
_lock = threading.Lock()


def sources_stamp(package: Path) -> str:
    """One line per source file of ``package``: name, mtime in ns, size."""
    lines = []
    for f in sorted(package.glob("*.py")):
        st = f.stat()
        lines.append(f"{f.name} {st.st_mtime_ns} {st.st_size}")
    return "\n".join(lines) + "\n"


def drop_if_stale(cache_dir: Path, stamp: str) -> bool:
    """Delete numba's cache files (``*.nbi``, ``*.nbc``) in ``cache_dir`` unless the stamp left
    there equals ``stamp``; then leave ``stamp``. True if it deleted. A directory we cannot
    write (a read-only install) is left alone: numba then caches nothing there either."""
    marker = cache_dir / STAMP
    try:
        if marker.is_file() and marker.read_text() == stamp:
            return False
        for f in (*cache_dir.glob("*.nbi"), *cache_dir.glob("*.nbc")):
            f.unlink(missing_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(stamp)
        return True
    except OSError:
        return False


def check() -> None:
    """Once per process, before the first job runs: drop this package's cached loops if any of
    its source files changed since they were cached."""
    global _checked
    if _checked:
        return
    with _lock:
        if _checked:
            return
        from course.providers.cpu.dispatch import run_chunk

        cache = getattr(run_chunk, "_cache", None)
        path = getattr(cache, "_cache_path", None)
        if path:
            drop_if_stale(Path(path), sources_stamp(Path(__file__).parent))
        _checked = True
