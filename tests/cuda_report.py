"""The CUDA provider's numbers of docs/benchmarks.md: ``python tests/cuda_report.py [--runs 50]``.

On a GPU: per model (the digits CNN, then every architecture of ``course.models`` at batch 1),
the median latency of ``InferenceSession(providers=["CUDAExecutionProvider",
"CPUExecutionProvider"])`` against onnxruntime's CPU provider (``ORT_ENABLE_ALL``, 2 threads),
the nodes that ran on CUDA and the host<->device copies one run makes. Outputs are checked
against onnxruntime before timing.

Without a GPU the kernels run on Numba's CUDA simulator (one Python thread per CUDA thread): the
script says so, runs the digits CNN once, checks it and prints the copies -- the times there
say nothing about a GPU.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnx

import course
from course import InferenceSession
from course.models import MODEL_NAMES, build_model, digits_model_path
from course.runtime.copies import copy_count

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def _ort(model: onnx.ModelProto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up: compiles the kernels and uploads the weights
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _feeds(model: onnx.ModelProto) -> dict:
    rng = np.random.default_rng(0)
    feeds = {}
    for v in model.graph.input:
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in v.type.tensor_type.shape.dim]
        feeds[v.name] = rng.random(dims, dtype=np.float32)
    return feeds


def measure(name: str, model: onnx.ModelProto, runs: int) -> dict:
    """One model: check against onnxruntime, then time both (runs=0: check only)."""
    s = InferenceSession(model, providers=[CUDA, CPU])
    ort_s = _ort(model)
    feeds = _feeds(model)
    got, want = s.run(None, feeds), ort_s.run(None, feeds)
    err = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
    on_cuda = sum(p == CUDA for n, p in s.assignment().items())
    row = {"model": name, "max_abs_err": err, "copies": copy_count(s), "on_cuda": on_cuda,
           "nodes": len(s.assignment())}
    if runs:
        row["cuda_ms"] = _median_ms(lambda: s.run(None, feeds), runs)
        row["ort_cpu_ms"] = _median_ms(lambda: ort_s.run(None, feeds), runs)
    return row


def _print(rows) -> None:
    print("| model | CUDA provider (ms) | onnxruntime CPU (ms) | CUDA nodes / plan steps | copies per run | max abs err |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cuda_ms = f"{r['cuda_ms']:.3f}" if "cuda_ms" in r else "-"
        ort_ms = f"{r['ort_cpu_ms']:.3f}" if "ort_cpu_ms" in r else "-"
        print(f"| {r['model']} | {cuda_ms} | {ort_ms} | {r['on_cuda']} / {r['nodes']} | {r['copies']} "
              f"| {r['max_abs_err']:.2e} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50, help="timed runs per model (median reported)")
    args = ap.parse_args()
    if course.CUDA_MODE == "simulator":
        print("No GPU: Numba's CUDA simulator runs the kernels (one Python thread per CUDA thread).\n"
              "Small model only, checked against onnxruntime, not timed: GPU numbers need a GPU.\n")
        _print([measure("digits CNN (simulator)", onnx.load(digits_model_path()), runs=0)])
        return
    from numba import cuda

    gpu = cuda.get_current_device().name
    print(f"GPU: {gpu.decode() if isinstance(gpu, bytes) else gpu}\n")
    models = [("digits CNN", onnx.load(digits_model_path()))]
    models += [(n, build_model(n, batch=1)) for n in MODEL_NAMES]
    _print([measure(n, m, args.runs) for n, m in models])


if __name__ == "__main__":
    main()
