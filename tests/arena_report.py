"""The arena-execution numbers of docs/benchmarks.md: ``python tests/arena_report.py``.

(A script beside the tests, not collected by pytest: ``--models resnet,densenet --repeat 5``.)

Per model of ``course.models`` at batch 1, three ways to hold a run's intermediates:

- ``free``: ``InferenceSession(arena=False)``, the scheme before issue 16: every kernel
  allocates its outputs, and each is dropped after its last read;
- ``arena``: the session's default: the outputs of kernels with destination passing live in one
  arena planned at construction; a kernel that allocates its own output keeps it;
- ``copy``: every intermediate planned in the arena (``plan_arena(into=None)``), and what a
  kernel without destination passing returns is copied into its view.

each for the default providers (the CPU provider, then the reference) and the reference alone.
Measured: ``traced``, tracemalloc's peak during one warm run plus the arena bytes the run uses
(allocated before it, at the first run); ``RSS growth``, in a separate process per scheme, how
far the resident set's high-water mark (VmHWM, reset by /proc/self/clear_refs once the session
is built) rose above the RSS of the built session over six runs, and the minor page faults of
each warm run (fresh memory the kernel hands out); latency, the median of the runs of each
scheme, the schemes taking turns in rounds in one process.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

SCHEMES = ("free", "arena", "copy")
PROVIDERS = {"default": None, "reference": ["ReferenceExecutionProvider"]}
MIB = 2 ** 20


def make_session(model, providers, scheme: str):
    from course import InferenceSession
    from course.runtime.arena import ArenaPool, plan_arena

    if scheme != "copy":
        return InferenceSession(model, providers=providers, arena=scheme == "arena")
    s = InferenceSession(model, providers=providers, arena=False)
    s.plan.arena = plan_arena(s.plan, into=None)  # every slot planned: returned arrays copied in
    s._arenas = ArenaPool(s._bound)  # the session's own hook, set by hand for this comparison
    return s


def feeds(batch: int = 1):
    return {"input": np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)}


def arena_bytes(sess) -> int:
    return sess.plan.arena.arena_bytes if sess._arenas is not None else 0


def traced_peak(sess, x) -> int:
    """Bytes in use at the peak of one warm run: tracemalloc's peak, plus the arena it runs in."""
    sess.run(None, x)
    tracemalloc.start()
    try:
        sess.run(None, x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak + arena_bytes(sess)


def rss_peak(name: str, providers: str, scheme: str) -> tuple[float, float]:
    """(MiB the resident set grew by at its peak over six runs, minor page faults per warm run)
    of a child process that builds the session and then runs it."""
    out = subprocess.run([sys.executable, __file__, "--rss", name, providers, scheme], capture_output=True,
                         text=True, check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    grew, faults = out.stdout.split()[-2:]
    return float(grew), float(faults)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith(field)).split()[1])


def _child_rss(name: str, providers: str, scheme: str) -> None:
    import resource

    from course.models import MODELS

    sess, x = make_session(MODELS[name](), PROVIDERS[providers], scheme), feeds()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current RSS: the session built, not yet run
    base = _status_kib("VmRSS")
    sess.run(None, x)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        sess.run(None, x)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 5
    print((_status_kib("VmHWM") - base) / 1024, faults)


def latencies(sessions: dict, x, repeat: int, rounds: int = 5) -> dict:
    """(median, min) ms per scheme; the schemes take turns, ``repeat // rounds`` runs each per round
    (on a shared machine the minimum is the steadier of the two)."""
    times = {k: [] for k in sessions}
    for s in sessions.values():
        s.run(None, x)
    for r in range(rounds):
        order = list(sessions)[r % len(sessions):] + list(sessions)[:r % len(sessions)]
        for k in order:
            for _ in range(max(1, repeat // rounds)):
                t0 = time.perf_counter()
                sessions[k].run(None, x)
                times[k].append(time.perf_counter() - t0)
    return {k: (1e3 * statistics.median(v), 1e3 * min(v)) for k, v in times.items()}


def measure(name: str, providers: str, repeat: int) -> dict:
    from course.bench import relative_error
    from course.models import MODELS

    model, x = MODELS[name](), feeds()
    sessions = {k: make_session(model, PROVIDERS[providers], k) for k in SCHEMES}
    want = sessions["free"].run(None, x)[0]
    for k, s in sessions.items():
        assert relative_error(s.run(None, x)[0], want) <= 1e-6, (name, providers, k)
    row = {"model": name, "providers": providers, "ms": latencies(sessions, x, repeat)}
    row["traced"] = {k: traced_peak(s, x) / MIB for k, s in sessions.items()}
    rss = {k: rss_peak(name, providers, k) for k in SCHEMES}
    row["rss"], row["faults"] = {k: v[0] for k, v in rss.items()}, {k: v[1] for k, v in rss.items()}
    report = sessions["arena"].memory_report()
    row["arena"] = (report["arena_bytes"] / MIB, report["lower_bound_bytes"] / MIB, len(report["offsets"]))
    row["copy_arena"] = arena_bytes(sessions["copy"]) / MIB
    return row


def table(rows: list) -> str:
    head = ("| model | providers | arena MiB (bound), slots | copy arena MiB | traced peak MiB free / arena / copy "
            "| RSS growth MiB free / arena / copy | page faults per run free / arena / copy "
            "| ms free / arena / copy: median (min) |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        a = r["arena"]
        cells = [r["model"], r["providers"], f"{a[0]:.2f} ({a[1]:.2f}), {a[2]}", f"{r['copy_arena']:.2f}",
                 " / ".join(f"{r['traced'][k]:.1f}" for k in SCHEMES),
                 " / ".join(f"{r['rss'][k]:.1f}" for k in SCHEMES),
                 " / ".join(f"{r['faults'][k]:.0f}" for k in SCHEMES),
                 " / ".join(f"{r['ms'][k][0]:.1f} ({r['ms'][k][1]:.1f})" for k in SCHEMES)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    from course.models import MODEL_NAMES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODEL_NAMES))
    ap.add_argument("--providers", default=",".join(PROVIDERS))
    ap.add_argument("--repeat", type=int, default=10, help="timed runs per scheme (default providers)")
    ap.add_argument("--rss", nargs=3, metavar=("MODEL", "PROVIDERS", "SCHEME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss:
        _child_rss(*args.rss)
        return 0
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}; batch 1, 224x224")
    rows = []
    for providers in args.providers.split(","):
        for name in args.models.split(","):
            repeat = args.repeat if providers == "default" else max(5, args.repeat // 2)
            rows.append(measure(name, providers, repeat))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
