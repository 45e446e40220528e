"""The A/B of docs/benchmarks.md "CPU provider: FusedGemm, destination passing, DenseNet (issue 18)":
``python tests/cpu_provider_report.py densenet,resnet 30`` (a script beside the tests, not collected).
In one process per model: the CPU provider as before issue 18's additions (no kernel_into, BN on the
reference), with destination passing, with both; and onnxruntime ORT_ENABLE_ALL on 2 threads, taking
turns in blocks of 5 runs. Prints arena MiB (slots), traced peak + arena, error against onnxruntime,
and median (10th percentile) ms."""
import sys, time, statistics, tracemalloc, numpy as np, onnxruntime as ort
from course import InferenceSession
from course.models import build_model
from course.providers.cpu import CPUExecutionProvider

class Head(CPUExecutionProvider):
    def claims(self, spec):
        return spec.op_type != "BatchNormalization" and super().claims(spec)
    def kernel_into(self, spec):
        return None
class Into(CPUExecutionProvider):
    def claims(self, spec):
        return spec.op_type != "BatchNormalization" and super().claims(spec)

models = sys.argv[1].split(",")
R = int(sys.argv[2]) if len(sys.argv) > 2 else 20
x = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)}
for name in models:
    m = build_model(name)
    sess = {"head": InferenceSession(m, providers=[Head(), "ReferenceExecutionProvider"]),
            "into": InferenceSession(m, providers=[Into(), "ReferenceExecutionProvider"]),
            "new": InferenceSession(m)}
    o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    ob = m.SerializeToString() if hasattr(m, "SerializeToString") else m
    osess = ort.InferenceSession(ob, o, providers=["CPUExecutionProvider"])
    runs = {k: (lambda s=s: s.run(None, x)) for k, s in sess.items()}
    runs["ort"] = lambda: osess.run(None, x)
    want = runs["ort"]()[0]
    info = {}
    for k, s in sess.items():
        y = s.run(None, x)[0]
        err = float(np.abs(y - want).max() / np.abs(want).max())
        rep = s.memory_report()
        tracemalloc.start(); s.run(None, x); peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
        info[k] = (rep["arena_bytes"] / 2**20, len(rep["offsets"]), (peak + rep["arena_bytes"]) / 2**20, err)
    t = {k: [] for k in runs}
    for _ in range(R // 5):
        for k, f in runs.items():
            f(); time.sleep(0.05)
            for _ in range(5):
                t0 = time.perf_counter(); f(); t[k].append((time.perf_counter() - t0) * 1e3)
    med = {k: statistics.median(v) for k, v in t.items()}
    p10 = {k: sorted(v)[len(v) // 10] for k, v in t.items()}
    print(f"{name}: " + " | ".join(f"{k} arena {a:.2f} MiB ({n} slots) peak {p:.1f} MiB err {e:.1e}" for k, (a, n, p, e) in info.items()))
    print(f"{name}: ms median (p10): " + "  ".join(f"{k} {med[k]:.2f} ({p10[k]:.2f})" for k in runs)
          + f"  new/head {med['new']/med['head']:.3f}  new/ort {med['new']/med['ort']:.2f} (p10 {p10['new']/p10['ort']:.2f})", flush=True)
