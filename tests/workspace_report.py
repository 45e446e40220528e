"""Workspaces and Concats in place (issue 16's last two pieces): ``python tests/workspace_report.py``.

(A script beside the tests, not collected by pytest: ``--models densenet --repeat 30``.)

Per model of ``course.models`` at batch 1, 224x224, default providers, three sessions:

- ``free``: ``arena=False``: every kernel allocates its outputs and its scratch, each dropped
  after its last use;
- ``old``: the arena as it was before these two pieces: destination-passing outputs in the
  arena, every Concat copying its inputs, every convolution allocating its scratch per call
  (``plan_arena(concat=False)``, no providers asked for workspaces);
- ``new``: the session's default now: the convolutions' scratch planned in the arena
  (``workspace_bytes``) and Concat inputs written in place.

Columns: the arena (MiB) against its lower bound, Concats written in place (of all), chunks,
workspace bytes planned (sum over steps; each lives for its step only) and the largest;
``traced``: tracemalloc's peak during one warm run plus the arena bytes; ``RSS``: in a child
process per scheme, how far the resident set's high-water mark rose over five runs above the
RSS after one warm-up run (what a steady run needs beyond what the process keeps); latency:
medians (and minima) of the schemes taking turns in rounds.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys

import numpy as np

from arena_report import MIB, _status_kib, feeds, latencies, traced_peak

SCHEMES = ("free", "old", "new")


def make_session(model, scheme: str):
    from course import InferenceSession
    from course.runtime.arena import ArenaPool, plan_arena

    if scheme != "old":
        return InferenceSession(model, arena=scheme == "new")
    s = InferenceSession(model, arena=False)
    s.plan.arena = plan_arena(s.plan, into=s._bound.into, concat=False)  # no providers: no workspaces
    s._arenas = ArenaPool(s._bound)  # the session's own hook, set by hand for this comparison
    return s


def rss_growth(name: str, scheme: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--rss", name, scheme], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.abspath(__file__)))
    return float(out.stdout.split()[-1])


def _child_rss(name: str, scheme: str) -> None:
    from course.models import MODELS

    sess, x = make_session(MODELS[name](), scheme), feeds()
    sess.run(None, x)  # compiled loops loaded, replays recorded, the arena made
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the high-water mark back to the current RSS: after one warm-up run
    base = _status_kib("VmRSS")
    for _ in range(5):
        sess.run(None, x)
    print((_status_kib("VmHWM") - base) / 1024)


def layout_row(sess) -> dict:
    r = sess.memory_report()
    concats = sum(st.spec.op_type == "Concat" for st in sess.plan.steps)
    ws = list(r["workspaces"].values()) or [0]
    return {"arena": r["arena_bytes"] / MIB, "bound": r["lower_bound_bytes"] / MIB,
            "concats": f"{r['concats_in_place']}/{concats}", "chunks": len(r["within"]),
            "ws": (sum(ws) / MIB, max(ws) / MIB, len(r["workspaces"]))}


def measure(name: str, repeat: int) -> dict:
    from course.bench import relative_error
    from course.models import MODELS

    model, x = MODELS[name](), feeds()
    sessions = {k: make_session(model, k) for k in SCHEMES}
    want = sessions["free"].run(None, x)[0]
    for k, s in sessions.items():
        got = s.run(None, x)[0]
        assert np.array_equal(got, want) or relative_error(got, want) <= 1e-6, (name, k)
    row = {"model": name, **layout_row(sessions["new"]), "old_arena": sessions["old"].plan.arena.arena_bytes / MIB}
    row["ms"] = latencies(sessions, x, repeat)
    row["traced"] = {k: traced_peak(s, x) / MIB for k, s in sessions.items()}
    row["rss"] = {k: rss_growth(name, k) for k in SCHEMES}
    return row


def table(rows: list) -> str:
    head = ("| model | arena MiB new (bound) / old | Concats in place, chunks | workspaces MiB: sum, largest (steps) "
            "| traced peak MiB free / old / new | RSS growth MiB free / old / new "
            "| ms free / old / new: median (min) |")
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        cells = [r["model"], f"{r['arena']:.2f} ({r['bound']:.2f}) / {r['old_arena']:.2f}",
                 f"{r['concats']}, {r['chunks']}", "{:.1f}, {:.2f} ({})".format(*r["ws"]),
                 " / ".join(f"{r['traced'][k]:.1f}" for k in SCHEMES),
                 " / ".join(f"{r['rss'][k]:.1f}" for k in SCHEMES),
                 " / ".join(f"{r['ms'][k][0]:.1f} ({r['ms'][k][1]:.1f})" for k in SCHEMES)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    from course.models import MODEL_NAMES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODEL_NAMES))
    ap.add_argument("--repeat", type=int, default=20, help="timed runs per scheme")
    ap.add_argument("--rss", nargs=2, metavar=("MODEL", "SCHEME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss:
        _child_rss(*args.rss)
        return 0
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}; batch 1, 224x224, default providers")
    rows = []
    for name in args.models.split(","):
        rows.append(measure(name, args.repeat))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
