"""The ToNHWC numbers of docs/benchmarks.md "ToNHWC on the CPU provider's channels-last kernels":
``python tests/nhwc_report.py [mobilenetv2,shufflenet] [runs]``.

Batch 1, three sessions alternated in one process: level "all" (MarkChannelsLast), ToNHWC with
its course.nhwc convs on the CPU provider's channels-last kernels, and the same graph with those
convs left to the reference nhwc kernels (what ran before the provider claimed them). Prints the
median and min ms of each and the largest difference between their outputs.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import course
from course.models import build_model
from course.passes.pipeline import level_passes
from course.passes.to_nhwc import ToNHWC
from course.providers.cpu import CPUExecutionProvider


class WithoutNhwc(CPUExecutionProvider):
    """The CPU provider as it was before it claimed course.nhwc nodes."""

    def claims(self, spec):
        return spec.domain != "course.nhwc" and super().claims(spec)


def sessions(model) -> dict:
    return {"all": course.InferenceSession(model),
            "ToNHWC": course.InferenceSession(model, passes=level_passes("extended") + [ToNHWC()]),
            "ToNHWC, ref": course.InferenceSession(model, passes=level_passes("extended") + [ToNHWC()],
                                                   providers=[WithoutNhwc(), "ReferenceExecutionProvider"])}


def measure(name: str, runs: int) -> None:
    model = build_model(name)
    feed = {model.graph.input[0].name: np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)}
    ss = sessions(model)
    outs = {k: s.run(None, feed)[0] for k, s in ss.items()}
    times: dict[str, list[float]] = {k: [] for k in ss}
    for _ in range(3):  # warm-up
        for s in ss.values():
            s.run(None, feed)
    for _ in range(runs):
        for k, s in ss.items():  # alternate A/B/C
            t = time.perf_counter()
            s.run(None, feed)
            times[k].append(time.perf_counter() - t)
    diff = max(float(np.abs(o - outs["all"]).max()) for o in outs.values())
    cells = " | ".join(f"{1e3 * statistics.median(v):.1f} ({1e3 * min(v):.1f})" for v in times.values())
    print(f"| {name} | {cells} |   max |diff| {diff:.1e}", flush=True)


if __name__ == "__main__":
    names = sys.argv[1] if len(sys.argv) > 1 else "mobilenetv2,shufflenet"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    print("| model | all (ms) | ToNHWC (ms) | ToNHWC, ref (ms) |")
    for n in names.split(","):
        measure(n, runs)
