"""``python -m course.passes.report model.onnx ...``: node counts after our levels against
onnxruntime's, and whether the optimised graph still computes onnxruntime's outputs.

onnxruntime saves the graph it would run (``SessionOptions.optimized_model_filepath``) at
``ORT_ENABLE_EXTENDED``: the level with its fusions (Conv+activation, Conv+BN, Gemm...) and
without the hardware-specific NCHWc layout of ``ORT_ENABLE_ALL``. Our graph runs on the
reference ops (``run_graph``), so the check does not depend on any fast kernel. onnxruntime is
imported only here, for the comparison.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Optional

import numpy as np

from course.ir.onnx_import import from_onnx
from course.passes.base import PassManager
from course.passes.evaluate import run_graph
from course.passes.pipeline import level_passes

ORT_TOL = 1e-4  # max|ours - ort| / max|ort| on the logits


@dataclass
class ModelRow:
    name: str
    nodes: int  # as built
    ours: dict[str, int]  # level -> node count
    ort_extended: int
    ort_ops: Counter
    our_ops: Counter
    error: Optional[float]  # relative error of our "all" graph against onnxruntime, if run
    seconds: float  # our "all" passes


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max|got - want| / max|want|, in float64."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))


def ort_optimized(model, level: str = "ORT_ENABLE_EXTENDED"):
    """The ONNX graph onnxruntime runs at ``level`` (loaded back from the file it saves)."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    with tempfile.TemporaryDirectory() as d:
        so.optimized_model_filepath = os.path.join(d, "optimized.onnx")
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return onnx.load(so.optimized_model_filepath), sess


def compare(model, name: str = "", check_outputs: bool = True, seed: int = 0) -> ModelRow:
    """Node counts of ``model`` (an ``onnx.ModelProto`` with one float input) at each of our levels
    and at onnxruntime's extended level; with ``check_outputs``, the relative error of our "all"
    graph's first output against onnxruntime's on seeded normal data (symbolic dims taken as 1)."""
    ours: dict[str, int] = {}
    graph, seconds = None, 0.0
    for level in ("basic", "extended", "all"):
        graph = from_onnx(model)
        start = time.perf_counter()
        PassManager(level_passes(level)).run(graph)
        seconds = time.perf_counter() - start
        ours[level] = len(graph.nodes)
    opt, sess = ort_optimized(model)
    error = None
    if check_outputs:
        inp = model.graph.input[0]
        shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        error = relative_error(run_graph(graph, {inp.name: x})[0], sess.run(None, {inp.name: x})[0])
    return ModelRow(name or model.graph.name, len(model.graph.node), ours, len(opt.graph.node),
                    Counter(n.op_type for n in opt.graph.node), Counter(n.op_type for n in graph.nodes), error,
                    seconds)


def markdown(rows: list[ModelRow]) -> str:
    lines = ["| model | nodes as built | basic | extended | all | onnxruntime extended | all vs ORT | logits vs ORT |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        err = "not run" if r.error is None else f"{r.error:.1e}"
        lines.append(f"| {r.name} | {r.nodes} | {r.ours['basic']} | {r.ours['extended']} | {r.ours['all']} | "
                     f"{r.ort_extended} | {r.ours['all'] - r.ort_extended:+d} | {err} |")
    return "\n".join(lines)


def machine() -> str:
    import onnxruntime as ort

    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"onnxruntime {ort.__version__}")


def print_report(rows: list[ModelRow], ops: bool = False) -> int:
    """Print the table (and op types left, with ``ops``); 1 if we leave more nodes than
    onnxruntime on some model or an output drifts past ORT_TOL, else 0."""
    print(f"machine: {machine()}\n")
    print(markdown(rows))
    if ops:
        for r in rows:
            print(f"\n{r.name}\n  ours: {dict(sorted(r.our_ops.items()))}\n  ORT:  {dict(sorted(r.ort_ops.items()))}")
    worse = [r for r in rows if r.ours["all"] > r.ort_extended]
    bad = [r for r in rows if r.error is not None and not r.error <= ORT_TOL]
    return 1 if worse or bad else 0


def main(argv=None) -> int:
    """``python -m course.passes.report model.onnx ...``; the course's own models are compared by
    ``python tests/test_passes_vs_ort.py`` (course.passes sits below course.models)."""
    import onnx

    ap = argparse.ArgumentParser(prog="python -m course.passes.report", description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="ONNX files")
    ap.add_argument("--no-outputs", action="store_true", help="count nodes only (skip running the graphs)")
    ap.add_argument("--ops", action="store_true", help="also list the op types left, ours and onnxruntime's")
    args = ap.parse_args(argv)
    rows = [compare(onnx.load(p), os.path.basename(p), check_outputs=not args.no_outputs) for p in args.models]
    return print_report(rows, args.ops)


if __name__ == "__main__":
    raise SystemExit(main())
