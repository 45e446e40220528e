"""Latency of each optimisation level in our engine, per model, A/B in one process:
``python tests/passes_latency.py [--repeat 20]`` prints a Markdown table for docs/benchmarks.md.

Every model runs in four sessions of the default providers, one per ``graph_optimization_level``
(disable, basic, extended, all), timed by ``course.bench.interleaved_medians`` (alternating
blocks, so a slow spell of a shared machine lands on all four). What each step adds:
basic = constant folding, algebra, CSE, Conv+BN folding, dead code; extended = + MatMul+Add ->
Gemm, ReduceMean -> GlobalAveragePool, Transpose sinking, Conv+activation, Conv+Add, sibling
convolutions; all = + the channels-last marks for the CPU provider. (Not a test: pytest collects
only test_*.py files.)
"""
from __future__ import annotations

import argparse

import numpy as np

import course
from course.bench import interleaved_medians
from course.models import MODEL_NAMES, build_model

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--models", default=",".join(MODEL_NAMES))
    args = ap.parse_args()
    print("| model | " + " | ".join(f"{lvl}: nodes / ms" for lvl in LEVELS) + " | disable/all |")
    print("|---|" + "---:|" * (len(LEVELS) + 1))
    for name in args.models.split(","):
        print("| " + " | ".join(model_row(name, args.repeat)) + " |", flush=True)


if __name__ == "__main__":
    main()
