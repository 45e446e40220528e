"""The engine-file and tactic numbers of docs/benchmarks.md: ``python tests/engine_report.py``.

    python tests/engine_report.py                          # every model, markdown table
    python tests/engine_report.py --models resnet,digits --repeat 10

Per model of ``course.models`` (the six architectures at 224x224 and the digits CNN), batch 1,
2 threads (the CPU provider's default budget; onnxruntime with ``intra_op_num_threads=2``):

1. Build vs load: ``build_engine`` with tactic tuning, all passes and a fresh timing cache,
   against ``Engine.load`` of the saved file (median of LOADS loads). Goal: load >= 10x faster.
2. Heuristic vs tuned: the same model built with ``tune=False`` and ``tune=True``, and
   onnxruntime ``ORT_ENABLE_ALL``, all three timed in short alternating blocks in one run
   (``alternating``); medians, and in brackets ratios of 10th percentiles. Goals: tuned never
   slower than heuristic and faster on at least two models; tuned within 1.5x of onnxruntime on
   every model, ahead on one.

Outputs are checked: the loaded engine's logits equal the built engine's, and are within 1e-4
(relative) of onnxruntime's.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx

from course.bench import SETTLE_S, _ort_session, machine_info, relative_error
from course.models import MODEL_NAMES, MODELS
from course.models.digits import digits_model_path
from course.runtime import Engine, TimingCache, build_engine

LOADS = 5
BLOCK = 5  # runs per turn in the A/B/C timing
THREADS = 2
COLUMNS = ("model", "build s", "load ms", "build/load", "heuristic ms", "tuned ms", "tuned/heur. (p10)",
           "ORT-all ms", "tuned/ORT (p10)", "tactics changed", "rel err")


def load_model(name: str) -> onnx.ModelProto:
    return onnx.load(digits_model_path()) if name == "digits" else MODELS[name]()


def _feed(model: onnx.ModelProto) -> tuple[dict, dict]:
    """(feed at batch 1, profiles: a dynamic batch from 1 to 64, tuned at 1)."""
    inp = model.graph.input[0]
    dims = [d.dim_value if d.dim_value else None for d in inp.type.tensor_type.shape.dim]
    shape = tuple(d or 1 for d in dims)
    profiles = {}
    if None in dims:
        profiles[inp.name] = {"min": shape, "opt": shape, "max": tuple(d or 64 for d in dims)}
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return {inp.name: x}, profiles


def build_and_load(model, profiles, path) -> tuple[Engine, float, float]:
    """(the tuned engine, build seconds, median load seconds)."""
    t0 = time.perf_counter()
    tuned = build_engine(model, profiles=profiles, timing_cache=TimingCache())
    build_s = time.perf_counter() - t0
    tuned.save(path)
    loads = []
    for _ in range(LOADS):
        t0 = time.perf_counter()
        Engine.load(path)
        loads.append(time.perf_counter() - t0)
    return tuned, build_s, statistics.median(loads)


def report_model(name: str, repeat: int, warmup: int) -> list[str]:
    model = load_model(name)
    feed, profiles = _feed(model)
    with tempfile.TemporaryDirectory() as tmp:
        tuned, build_s, load_s = build_and_load(model, profiles, os.path.join(tmp, f"{name}.engine"))
        loaded = Engine.load(os.path.join(tmp, f"{name}.engine"))
        # the heuristic engine goes through a file too: the A/B differs in the tactics alone
        build_engine(model, profiles=profiles, tune=False).save(os.path.join(tmp, "heuristic.engine"))
        heuristic = Engine.load(os.path.join(tmp, "heuristic.engine"))
    ort_all = _ort_session(model.SerializeToString(), "ORT_ENABLE_ALL", THREADS)
    want = ort_all.run(None, feed)[0]
    got = loaded.run(None, feed)[0]
    assert np.array_equal(got, tuned.run(None, feed)[0]), f"{name}: the loaded engine differs from the built one"
    err = max(relative_error(got, want), relative_error(heuristic.run(None, feed)[0], want))
    times = alternating({"heuristic": lambda: heuristic.run(None, feed), "tuned": lambda: loaded.run(None, feed),
                         "ort": lambda: ort_all.run(None, feed)}, repeat, warmup)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    p10 = {k: 1e3 * float(np.percentile(v, 10)) for k, v in times.items()}
    rows = tuned.tactics_report()
    for r in rows:
        if r.chosen != r.heuristic:
            print(f"  {name} {r.node} {r.shape}: {r.heuristic} -> {r.chosen} "
                  f"({r.times_ms[r.heuristic]:.3f} -> {r.times_ms[r.chosen]:.3f} ms)", file=sys.stderr)
    changed = sum(r.chosen != r.heuristic for r in rows)
    return {"model": name, "build/load": build_s / load_s, "tuned/heur": ms["tuned"] / ms["heuristic"],
            "tuned/ort": ms["tuned"] / ms["ort"], "p10 tuned/heur": p10["tuned"] / p10["heuristic"],
            "p10 tuned/ort": p10["tuned"] / p10["ort"], "cells": [
                name, f"{build_s:.2f}", f"{1e3 * load_s:.1f}", f"{build_s / load_s:.0f}x", f"{ms['heuristic']:.2f}",
                f"{ms['tuned']:.2f}", _ratio(ms, p10, "tuned", "heuristic"), f"{ms['ort']:.2f}",
                _ratio(ms, p10, "tuned", "ort"), f"{changed}/{len(rows)}", f"{err:.1e}"]}


def _ratio(ms, p10, a, b) -> str:
    return f"{ms[a] / ms[b]:.2f}x ({p10[a] / p10[b]:.2f}x)"


def alternating(fns: dict, repeat: int, warmup: int) -> dict[str, list[float]]:
    """Every run's seconds per callable: ``warmup`` untimed runs each, then BLOCK runs of each in
    turn until each has ``repeat``. Short blocks, many turns: on a VM shared with other work the
    slow spells land on all callables alike. (A median of such runs still moves with the load;
    the 10th percentile, closer to a run that was not interrupted, moves less.)"""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    while min(len(v) for v in times.values()) < repeat:
        for k, fn in fns.items():
            time.sleep(SETTLE_S)
            fn()  # one untimed run after the pause: the other runtime's threads have settled
            for _ in range(BLOCK):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return times


def goals(results: list[dict], p: str = "") -> list[str]:
    """One line per goal of the module docstring, on medians (``p=""``) or on 10th percentiles
    (``p="p10 "``): met, or which models miss it."""
    def names(test):
        return [r["model"] for r in results if test(r)]

    def line(what, misses):
        return f"- {what}: " + ("met" if not misses else "MISSED on " + ", ".join(misses))
    faster = names(lambda r: r[p + "tuned/heur"] < 0.97)
    ahead = names(lambda r: r[p + "tuned/ort"] < 1.0)
    return [line("load >= 10x faster than build", names(lambda r: r["build/load"] < 10)),
            line("tuned no slower than heuristic (within 3 %)", names(lambda r: r[p + "tuned/heur"] > 1.03)),
            f"- tuned faster than heuristic (by > 3 %) on >= 2 models: {'met' if len(faster) >= 2 else 'MISSED'} "
            f"({', '.join(faster) or 'none'})",
            line("tuned within 1.5x of ORT-all", names(lambda r: r[p + "tuned/ort"] > 1.5)),
            f"- tuned ahead of ORT-all on >= 1 model: {'met' if ahead else 'MISSED'} ({', '.join(ahead) or 'none'})"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join([*MODEL_NAMES, "digits"]))
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tactics", action="store_true", help="print each model's tactic table too")
    args = ap.parse_args(argv)
    for k, v in machine_info().items():
        print(f"- {k}: {v}")
    print(f"- threads: {os.environ.get('COURSE_NUM_THREADS') or 'default (2)'}; ORT intra-op threads {THREADS}")
    print()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    results = []
    for name in args.models.split(","):
        results.append(report_model(name, args.repeat, args.warmup))
        print("| " + " | ".join(results[-1]["cells"]) + " |", flush=True)
        if args.tactics:
            model = load_model(name)
            print(build_engine(model, profiles=_feed(model)[1]).describe_tactics(), file=sys.stderr)
    for label, p in (("medians", ""), ("10th percentiles", "p10 ")):
        print(f"\nGoals on {label}:")
        print("\n".join(goals(results, p)))


if __name__ == "__main__":
    main()
