"""Per-run overhead on small and real models against onnxruntime: ``python tests/overhead_report.py``.

    python tests/overhead_report.py                          # digits + the six CNNs, markdown table
    python tests/overhead_report.py --models digits --repeat 2000
    python tests/overhead_report.py --image-size 32          # the six CNNs at 32x32 (overhead-bound)
    python tests/overhead_report.py --steps digits           # per-step times of one model too

Per model, batch 1: the default session (CPUExecutionProvider + the reference fallback, all
passes, arena) against onnxruntime ``ORT_ENABLE_ALL`` with ``intra_op_num_threads=2``, the two
timed in alternating blocks in one process (``alternating``);
medians, and the 10th percentiles in brackets. On the digits CNN (six steps, microseconds of
arithmetic) the ratio is almost all Python bookkeeping per run and per step; on the 224x224
models it is mostly the kernels. Outputs are checked against onnxruntime (1e-4 relative).

``--steps`` also prints, per step of the named models, the median time of its bound kernel
called on its own (the inputs of one real run), and what is left for session.run and the
execute loop: the whole run's median minus the sum of the kernels'.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import onnx

import course
from course.bench import SETTLE_S, _ort_session, machine_info, relative_error
from course.models import MODEL_NAMES, build_model
from course.models.digits import digits_model_path

THREADS = 2
ROUNDS = 10  # turns each engine takes
COLUMNS = ("model", "steps", "ours ms", "ORT-all ms", "ours/ORT (p10)", "ours - ORT ms", "rel err")


def load_model(name: str, image_size: int) -> onnx.ModelProto:
    if name == "digits":
        return onnx.load(digits_model_path())
    return build_model(name, image_size=image_size) if image_size else build_model(name)


def feed_of(model: onnx.ModelProto) -> dict:
    inp = model.graph.input[0]
    shape = tuple(d.dim_value or 1 for d in inp.type.tensor_type.shape.dim)
    return {inp.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}


def alternating(fns: dict, repeat: int, warmup: int) -> dict[str, list[float]]:
    """Every run's seconds per callable: ``warmup`` untimed runs each, then ROUNDS turns in which
    each runs ``repeat / ROUNDS`` times, after a pause and one untimed run (the other runtime's
    spinning threads settle: course.bench.SETTLE_S). tests/engine_report.py's scheme, with blocks
    sized for runs of a tenth of a millisecond."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    block = -(-repeat // ROUNDS)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(ROUNDS):
        for k, fn in fns.items():
            time.sleep(SETTLE_S)
            fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return times


def repeats_for(fn, repeat: int) -> int:
    """``repeat`` runs, or fewer for a slow model: about two seconds of runs each, at least 20."""
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    return max(20, min(repeat, int(2.0 / max(one, 1e-6))))


def report_model(name: str, repeat: int, warmup: int, image_size: int) -> dict:
    model = load_model(name, image_size)
    feed = feed_of(model)
    ours = course.InferenceSession(model)
    ort = _ort_session(model.SerializeToString(), "ORT_ENABLE_ALL", THREADS)
    err = relative_error(ours.run(None, feed)[0], ort.run(None, feed)[0])
    assert err < 1e-4, f"{name}: ours differs from onnxruntime by {err:.1e}"
    fns = {"ours": lambda: ours.run(None, feed), "ort": lambda: ort.run(None, feed)}
    times = alternating(fns, repeats_for(fns["ours"], repeat), warmup)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    p10 = {k: 1e3 * float(np.percentile(v, 10)) for k, v in times.items()}
    ratio = ms["ours"] / ms["ort"]
    return {"model": name, "ratio": ratio, "session": ours, "feed": feed, "ms": ms["ours"], "cells": [
        name, str(len(ours.plan.steps)), _ms(ms["ours"]), _ms(ms["ort"]),
        f"{ratio:.2f}x ({p10['ours'] / p10['ort']:.2f}x)", _ms(ms["ours"] - ms["ort"]), f"{err:.1e}"]}


def _ms(v: float) -> str:
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"


def step_times(session, feed: dict, repeat: int) -> list[tuple[str, str, str, float]]:
    """(node, op, provider, median us) of each bound kernel called alone on a real run's inputs."""
    plan, bound = session.plan, session._bound
    slots: list = [None] * plan.num_slots
    for s, arr in plan.constants.items():
        slots[s] = arr
    for k, arr in feed.items():
        slots[plan.slot_of[k]] = arr
    with _running(bound.providers):  # one plain run that keeps every slot: the steps' inputs
        for st, fn in zip(plan.steps, bound.kernels):
            out = fn(*[slots[i] if i >= 0 else None for i in st.ins])
            for s, arr in zip(st.outs, out if type(out) is tuple else (out,)):
                if s >= 0:
                    slots[s] = arr
    rows = []
    with _running(bound.providers):
        for st, fn in zip(plan.steps, bound.kernels):
            args = [slots[i] if i >= 0 else None for i in st.ins]
            for _ in range(3):
                fn(*args)
            t = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn(*args)
                t.append(time.perf_counter() - t0)
            rows.append((st.spec.name, st.spec.op_type, st.provider, 1e6 * statistics.median(t)))
    return rows


class _running:
    """Every provider's ``running()`` context entered, as a run enters them."""

    def __init__(self, providers):
        import contextlib

        self.stack = contextlib.ExitStack()
        self.providers = providers

    def __enter__(self):
        for p in self.providers:
            self.stack.enter_context(p.running())

    def __exit__(self, *exc):
        return self.stack.__exit__(*exc)


def print_steps(result: dict, repeat: int) -> None:
    rows = step_times(result["session"], result["feed"], repeat)
    print(f"\nSteps of {result['model']} (each bound kernel alone, median us):")
    for name, op, provider, us in rows:
        print(f"- {name} ({op}, {provider.replace('ExecutionProvider', '')}): {us:.1f}")
    kernels = sum(r[3] for r in rows)
    print(f"- kernels {kernels:.1f} us of a {1e3 * result['ms']:.1f} us run: "
          f"{1e3 * result['ms'] - kernels:.1f} us of session.run, execute loop and running() contexts")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(["digits", *MODEL_NAMES]))
    ap.add_argument("--repeat", type=int, default=1000, help="most runs per engine (fewer on slow models)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=0, help="the six CNNs at this size (default 224)")
    ap.add_argument("--steps", default="", help="models whose per-step kernel times to print")
    args = ap.parse_args(argv)
    for k, v in machine_info().items():
        print(f"- {k}: {v}")
    print(f"- threads: {os.environ.get('COURSE_NUM_THREADS') or 'default (2)'}; ORT intra-op threads {THREADS}")
    print()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    results = []
    for name in args.models.split(","):
        results.append(report_model(name, args.repeat, args.warmup, args.image_size))
        print("| " + " | ".join(results[-1]["cells"]) + " |", flush=True)
    for r in results:
        if r["model"] in args.steps.split(","):
            print_steps(r, 200)
    worst = max(results, key=lambda r: r["ratio"])
    print(f"\nWorst ratio: {worst['model']} {worst['ratio']:.2f}x", file=sys.stderr)


if __name__ == "__main__":
    main()
