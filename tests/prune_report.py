"""The pruning numbers of docs/benchmarks.md: ``python tests/prune_report.py`` (about a minute).

(A script beside the tests: it reads the digits model and training loop of ``course.models``,
which ``course.prune`` does not import.)

1. Channel pruning: L1 filter ranking keeps half the filters of conv1 (16 -> 8) and conv2
   (32 -> 16), ``prune_channels`` removes them from the ONNX graph (BN and the next layer's input
   channels with them), then fine-tuning with hard labels, and with distillation from the float
   model (T = 4, alpha = 0.9). Test accuracy against the float model, FLOPs, and latency in our
   engine (reference provider and the default CPU provider) and onnxruntime, A/B interleaved.
2. Unstructured magnitude pruning to 80% of every weight tensor (in three rounds, 50 -> 70 -> 80%,
   five epochs of fine-tuning after each, Han et al. 2015), accuracy and dense-kernel latency; CSR bytes.
3. 2:4 on every layer whose input dimension is a multiple of 4 (conv1 has one input channel) +
   fine-tuning; the 2:4 compressed bytes.
4. Accuracy against sparsity per method (``course.prune.sparsity_curves``: magnitude per layer and
   global, 2:4, L1 filters), right after the cut and after one epoch of fine-tuning.
   ``python tests/prune_report.py curves [figure.png]`` prints this table alone (about 10 s) and
   draws ``course.viz.prune.draw_sparsity_curves`` into the file when one is named.
"""
from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

import course
from course import prune as P
from course.models import digits_model_path, load_digits_split, train_digits
from course.quant import qat

SPLIT = load_digits_split()
DIGITS = onnx.load(str(digits_model_path()))


def layers_of(model):
    return qat.load_onnx_weights(train_digits.build_network(0), model)


def acc(layers):
    return P.accuracy(layers, SPLIT.x_test, SPLIT.y_test)


def adam(lr):
    return lambda ls: train_digits.Adam(ls, lr)


def channel_pruning(epochs=8):
    w = {t.name: onnx.numpy_helper.to_array(t) for t in DIGITS.graph.initializer}
    keep = {c: P.filters_to_keep(w[f"{c}.W"], 0.5) for c in ("conv1", "conv2")}
    pruned = P.prune_channels(DIGITS, keep)
    teacher = train_digits.forward(layers_of(DIGITS), SPLIT.x_train.astype(np.float64))
    out = {"cut": acc(layers_of(pruned))}
    hard = P.finetune(layers_of(pruned), SPLIT.x_train, SPLIT.y_train, adam(1e-3), train_digits.softmax_xent,
                      epochs=epochs, lr=1e-3)
    out["fine-tuned"] = acc(hard)
    kd = P.finetune(layers_of(pruned), SPLIT.x_train, SPLIT.y_train, adam(1e-3), train_digits.softmax_xent,
                    epochs=epochs, lr=1e-3, teacher=teacher, T=4.0, alpha=0.9)
    out["fine-tuned + distilled"] = acc(kd)
    return out, train_digits.to_onnx(kd)


def machine() -> str:
    """The CPU's model name (lscpu's "Model name"), the core count and onnxruntime's version."""
    try:
        with open("/proc/cpuinfo") as f:
            name = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores, onnxruntime {ort.__version__}"


def latency(models: dict, repeats=40, x=None):
    """Median ms per run of the batch ``x`` (default: the 450 test images) for each model in our
    engine (reference provider, default providers) and onnxruntime (one thread), A/B interleaved."""
    feeds = {"input": SPLIT.x_test if x is None else x}
    quiet = ort.SessionOptions(); quiet.log_severity_level = 3
    quiet.intra_op_num_threads = 1  # one thread: the two shared cores make threaded timings noisy
    sessions = {}
    for label, m in models.items():
        sessions[label, "ours (reference)"] = course.InferenceSession(m, providers=["ReferenceExecutionProvider"])
        sessions[label, "ours (default)"] = course.InferenceSession(m)
        sessions[label, "onnxruntime"] = ort.InferenceSession(m.SerializeToString(), quiet,
                                                              providers=["CPUExecutionProvider"])
    for s in sessions.values():
        s.run(None, feeds)
    times = {k: [] for k in sessions}
    for _ in range(repeats):  # A/B interleaved
        for k, s in sessions.items():
            t0 = time.perf_counter(); s.run(None, feeds); times[k].append(time.perf_counter() - t0)
    return {k: 1e3 * float(np.median(t)) for k, t in times.items()}


def unstructured(schedule=(0.5, 0.7, 0.8), epochs=5):
    layers = layers_of(DIGITS)
    no_ft = layers_of(DIGITS)
    P.apply_masks(no_ft, P.layer_masks(no_ft, lambda w: P.magnitude_mask(w, schedule[-1])))
    for s in schedule:
        masks = P.layer_masks(layers, lambda w, s=s: P.magnitude_mask(w, s))
        P.finetune(layers, SPLIT.x_train, SPLIT.y_train, adam(1e-3), train_digits.softmax_xent, masks=masks,
                   epochs=epochs, lr=1e-3)
    return acc(no_ft), acc(layers), layers, masks


def two_four(epochs=4):
    layers = layers_of(DIGITS)
    masks = P.layer_masks(layers, P.mask_2_4, skip=(0,))
    P.apply_masks(layers, masks)
    cut = acc(layers)
    P.finetune(layers, SPLIT.x_train, SPLIT.y_train, adam(5e-4), train_digits.softmax_xent, masks=masks,
               epochs=epochs, lr=5e-4)
    return cut, acc(layers), layers


def sparsity_table(budget=P.Budget()) -> dict:
    """Print (and return) accuracy against sparsity per method, before / after fine-tuning."""
    curves = P.sparsity_curves(DIGITS, layers_of, SPLIT, adam(budget.lr), train_digits.softmax_xent, budget=budget)
    print(f"\naccuracy against sparsity ({budget.epochs} epoch(s) of fine-tuning per point, lr {budget.lr:g})\n")
    print("| method | level | sparsity reached | no fine-tuning | fine-tuned |\n|---|---|---|---|---|")
    for method, points in curves.items():
        for p in points:
            print(f"| {method} | {p.level:.2f} | {p.sparsity:.1%} | {p.pruned:.2%} | {p.finetuned:.2%} |")
    return curves


def curves_main(figure=None) -> None:
    t0 = time.time()
    print(f"# machine: {machine()}")
    curves = sparsity_table()
    if figure:
        import matplotlib
        matplotlib.use("Agg")
        from course.viz.prune import draw_sparsity_curves
        ax = draw_sparsity_curves(curves, float_accuracy=acc(layers_of(DIGITS)))
        ax.figure.savefig(figure, dpi=120, bbox_inches="tight")
    print(f"\n({time.time() - t0:.0f} s)")


def main() -> None:
    t0 = time.time()
    print(f"# machine: {machine()}")
    float_acc = acc(layers_of(DIGITS))
    ch, pruned = channel_pruning()
    u_cut, u_ft, u_layers, u_masks = unstructured()
    s_cut, s_ft, s_layers = two_four()
    sparse80 = train_digits.to_onnx(u_layers)
    lat = latency({"float": DIGITS, "half channels": pruned, "80% unstructured": sparse80})
    print(f"\nfloat test accuracy {float_acc:.2%}\n")
    print("| model | accuracy | MFLOP/image | ours ref (ms) | ours default (ms) | onnxruntime 1 thread (ms) |")
    print("|---|---|---|---|---|---|")
    rows = [("float (16 + 32 channels)", "float", DIGITS, float_acc),
            ("half channels, fine-tuned + distilled", "half channels", pruned, ch["fine-tuned + distilled"]),
            ("80% unstructured, fine-tuned (dense kernels)", "80% unstructured", sparse80, u_ft)]
    for name, key, m, a in rows:
        print(f"| {name} | {a:.2%} | {P.total_flops(m) / 1e6:.3f} | {lat[key, 'ours (reference)']:.2f} | "
              f"{lat[key, 'ours (default)']:.2f} | {lat[key, 'onnxruntime']:.2f} |")
    print(f"\nchannel pruning: right after the cut {ch['cut']:.2%}, fine-tuned {ch['fine-tuned']:.2%}, "
          f"fine-tuned + distilled {ch['fine-tuned + distilled']:.2%}; FLOPs "
          f"{P.total_flops(DIGITS) / P.total_flops(pruned):.2f}x fewer")
    print(f"80% unstructured: no fine-tuning {u_cut:.2%}, 50->70->80% with fine-tuning {u_ft:.2%}; "
          f"sparsity {np.mean([P.sparsity(u_layers[i].params['W']) for i in u_masks]):.1%}")
    print(f"2:4 (conv2, fc1, fc2): no fine-tuning {s_cut:.2%}, fine-tuned {s_ft:.2%}")
    print("\n| tensor | dense B | CSR at 80% B | 2:4 compressed B |\n|---|---|---|---|")
    for i, name in ((0, "conv1.W"), (3, "conv2.W"), (8, "fc1.W"), (10, "fc2.W")):
        w80 = u_layers[i].params["W"].astype(np.float32)
        mat = w80.reshape(len(w80), -1)
        csr = P.to_csr(mat)
        w24 = s_layers[i].params["W"].astype(np.float32)
        m24 = P.masks.input_last(w24)
        b24 = P.compress_2_4(m24).nbytes if m24.shape[1] % 8 == 0 else None
        print(f"| {name} {tuple(w80.shape)} | {w80.nbytes} | {csr.nbytes} | {b24 if b24 else '- (not 2:4)'} |")
    sparsity_table()
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["curves"]:
        curves_main(*sys.argv[2:3])
    else:
        main()
