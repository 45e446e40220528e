"""Latency of each optimisation level in our engine, per model, A/B in one process:
``python tests/passes_latency.py [--repeat 20]`` prints a Markdown table for docs/benchmarks.md;
``--per-pass`` prints instead each extended pass alone over "basic".

Every model runs in four sessions of the default providers, one per ``graph_optimization_level``
(disable, basic, extended, all), timed by ``course.bench.interleaved_medians`` (alternating
blocks, so a slow spell of a shared machine lands on all four). What each step adds:
basic = constant folding, algebra, CSE, Conv+BN folding, dead code; extended = + MatMul+Add ->
Gemm, ReduceMean -> GlobalAveragePool, Transpose sinking (through elementwise ops, Concat, Split),
Conv+activation, Gemm+activation, Conv+Add, sibling convolutions, Slice forward; all = + the
channels-last marks for the CPU provider. (Not a test: pytest collects
only test_*.py files.)

Per pass (``--per-pass``): every pass "extended" adds, alone over "basic" (inserted before the
dead-code pass), against "basic" itself and all of "extended", timed the same way. Alone over a
fixed baseline rather than left out of "all", because then every cell is one pass's own effect
against the same graph, the "basic" row of the level table, and the cells compare across passes
and models; "all" also carries the session's channels-last marks, which are not a pass and
whose reach depends on what was fused (a convolution read by an unfused activation stays NCHW),
so a fusion left out of "all" would move the layout too and mix two effects. How far the
sum of the single-pass changes is from the "extended" column shows how much the passes interact.
A pass that changes no node of a model is not timed there ("-"). On a shared machine
``--trials`` repeats the whole interleaved timing: each cell is the median over trials, with the
lowest and highest change against "basic" in brackets. ``--clock cpu`` times one thread
instead (no helper thread, one BLAS thread) by its own CPU time (``time.thread_time``), which
other tenants of the machine barely move: the work each graph costs rather than its latency.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import course
from course.bench import interleaved_medians
from course.ir.onnx_import import from_onnx
from course.models import MODEL_NAMES, build_model
from course.passes import PassManager, level_passes

LEVELS = ("disable", "basic", "extended", "all")


def model_row(name: str, repeat: int) -> list[str]:
    model = build_model(name)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    sessions = {lvl: course.InferenceSession(model, graph_optimization_level=lvl) for lvl in LEVELS}
    want = sessions["disable"].run(None, {"input": x})[0]
    for lvl, s in sessions.items():  # every level computes the same logits
        got = s.run(None, {"input": x})[0]
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), (name, lvl)
    runs = {lvl: (lambda s=s: s.run(None, {"input": x})) for lvl, s in sessions.items()}
    ms = {k: 1e3 * v for k, v in interleaved_medians(runs, repeat, 2).items()}
    nodes = {lvl: len(s.graph.nodes) for lvl, s in sessions.items()}
    cells = [f"{nodes[lvl]} / {ms[lvl]:.1f}" for lvl in LEVELS]
    return [name, *cells, f"{ms['disable'] / ms['all']:.2f}x"]


def extended_only() -> list[str]:
    """The names of the passes "extended" adds to "basic", in the order they run."""
    basic = {p.name for p in level_passes("basic")}
    return [p.name for p in level_passes("extended") if p.name not in basic]


def basic_plus(name: str) -> list:
    """The passes of "basic" with the extended pass ``name`` before the closing dead-code pass."""
    basic = level_passes("basic")
    return basic[:-1] + [p for p in level_passes("extended") if p.name == name] + basic[-1:]


def changes_graph(model, name: str) -> bool:
    pm = PassManager(basic_plus(name))
    pm.run(from_onnx(model))
    return any(r.modified for r in pm.report if r.name == name)


def pass_sessions(model) -> dict:
    """"basic", basic + each extended pass that changes ``model``, and "extended": one session each."""
    active = [p for p in extended_only() if changes_graph(model, p)]
    return {"basic": course.InferenceSession(model, graph_optimization_level="basic"),
            **{p: course.InferenceSession(model, passes=basic_plus(p)) for p in active},
            "extended": course.InferenceSession(model, graph_optimization_level="extended")}


def cpu_medians(runs: dict, repeat: int, rounds: int = 5) -> dict[str, float]:
    """Median CPU seconds of this thread per run of each callable, taking turns in ``rounds``
    blocks (after two untimed runs each)."""
    times = {k: [] for k in runs}
    for fn in runs.values():
        fn(), fn()
    for r in range(rounds):
        for k, fn in runs.items():
            for _ in range(repeat // rounds + (r < repeat % rounds)):
                t0 = time.thread_time()
                fn()
                times[k].append(time.thread_time() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def per_pass_row(name: str, repeat: int, trials: int, clock: str = "wall") -> dict[str, str]:
    """One model's cells: nodes / median ms (change against "basic": median [lowest, highest] over
    ``trials`` interleaved timings of all the sessions, each the median of ``repeat`` runs)."""
    model = build_model(name)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    sessions = pass_sessions(model)
    want = sessions["basic"].run(None, {"input": x})[0]
    for key, s in sessions.items():
        got = s.run(None, {"input": x})[0]
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), (name, key)
    runs = {k: (lambda s=s: s.run(None, {"input": x})) for k, s in sessions.items()}
    timer = cpu_medians if clock == "cpu" else (lambda r, n: interleaved_medians(r, n, 2))
    ms = [{k: 1e3 * v for k, v in timer(runs, repeat).items()} for _ in range(trials)]
    cells = {}
    for k, s in sessions.items():
        med = float(np.median([t[k] for t in ms]))
        change = sorted(100 * (t[k] / t["basic"] - 1) for t in ms)
        spread = f" [{change[0]:+.0f}, {change[-1]:+.0f}]" if trials > 1 else ""
        cells[k] = f"{len(s.graph.nodes)} / {med:.1f}" + ("" if k == "basic" else
                                                           f" ({float(np.median(change)):+.0f}%{spread})")
    return cells


def print_per_pass(names: list[str], repeat: int, trials: int, clock: str) -> None:
    """The per-pass table: a column for each pass that changes some model, "-" where it changes none."""
    rows = {name: per_pass_row(name, repeat, trials, clock) for name in names}
    used = [p for p in extended_only() if any(p in r for r in rows.values())]
    cols = ["basic", *used, "extended"]
    print("| model | " + " | ".join(c if c in ("basic", "extended") else f"+{c}" for c in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name, r in rows.items():
        print("| " + " | ".join([name, *(r.get(c, "-") for c in cols)]) + " |")
    print("\nchanging no model:", ", ".join(p for p in extended_only() if p not in used) or "none")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--models", default=",".join(MODEL_NAMES))
    ap.add_argument("--per-pass", action="store_true", help="each extended pass alone over basic")
    ap.add_argument("--trials", type=int, default=3, help="--per-pass: interleaved timings per model")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="--per-pass: wall-clock latency, or one thread's CPU time")
    args = ap.parse_args()
    if args.per_pass and args.clock == "cpu":
        from threadpoolctl import threadpool_limits

        os.environ["COURSE_NUM_THREADS"] = "1"  # read at each run: the CPU provider starts no helper
        with threadpool_limits(limits=1):
            return print_per_pass(args.models.split(","), args.repeat, args.trials, "cpu")
    if args.per_pass:
        return print_per_pass(args.models.split(","), args.repeat, args.trials, "wall")
    print("| model | " + " | ".join(f"{lvl}: nodes / ms" for lvl in LEVELS) + " | disable/all |")
    print("|---|" + "---:|" * (len(LEVELS) + 1))
    for name in args.models.split(","):
        print("| " + " | ".join(model_row(name, args.repeat)) + " |", flush=True)


if __name__ == "__main__":
    main()
