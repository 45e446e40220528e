"""The quantization numbers of docs/benchmarks.md: ``python tests/quant_report.py``.

(A script beside the tests: it reads the digits model of ``course.models``, which ``course.quant``
does not import.)

1. The digits CNN, 256 calibration images from the training split: logit SQNR on the 450 held-out
   images and int8 accuracy, our ``quantize_static`` against onnxruntime's, per calibration
   method, per tensor and per channel (QDQ, uint8 activations, int8 weights, as onnxruntime's
   defaults).
2. A model with outlier activations (``outlier_model``): min-max against percentile / entropy / MSE.
3. Latency of the float32 and int8 digits models in this engine.
4. ``python tests/quant_report.py qat`` (also at the end of the full report): 4-bit weights, PTQ
   against QAT, on a quarter-width digits CNN (``qat_rows``), where 4-bit PTQ loses points that
   it does not lose on the shipped model.
"""
from __future__ import annotations

import copy
import os
import platform
import sys
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from course.models.digits import digits_model_path, load_digits_split
from course.quant.calibrate import ArrayDataReader
from course.quant.metrics import accuracy, run_model, sqnr
from course.quant.static import quantize_static
from course.quant.types import CalibrationMethod, QuantFormat

METHODS = ("MinMax", "Percentile", "Entropy")
N_CALIBRATION = 256


def outlier_model(seed: int = 0):
    """x[N, 16] -> Gemm -> Relu -> Gemm -> y[N, 10], where input feature 0 feeds hidden channel 0
    only, and channel 0 barely reaches the logits: rare large inputs there (``outlier_data``)
    stretch the min-max ranges of x and of the hidden layer for every other value."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.standard_normal((32, 16)) / 4, rng.standard_normal((10, 32)) / 4
    w1[:, 0], w1[0, 0] = 0.0, 1.0
    w2[:, 0] *= 0.02
    inits = [numpy_helper.from_array(a.astype(np.float32), n)
             for n, a in (("W1", w1), ("B1", np.zeros(32)), ("W2", w2), ("B2", np.zeros(10)))]
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], "fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], "relu"),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], "fc2", transB=1)]
    g = helper.make_graph(nodes, "outliers", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def outlier_data(n: int, seed: int = 1) -> np.ndarray:
    """Standard normal inputs; in 0.5 % of the rows feature 0 is 30 times larger."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16)).astype(np.float32)
    x[rng.random(n) < 0.005, 0] *= 30
    return x


def _ort_quantize(model_path, out_path, x_cal, method, per_channel):
    from onnxruntime import quantization as oq

    oq.quantize_static(str(model_path), str(out_path), ArrayDataReader("input", x_cal, 64),
                       quant_format=oq.QuantFormat.QDQ, per_channel=per_channel,
                       activation_type=oq.QuantType.QUInt8, weight_type=oq.QuantType.QInt8,
                       calibrate_method=getattr(oq.CalibrationMethod, method))


def _ort_run(model, feeds):
    import onnxruntime as ort

    data = model if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    return ort.InferenceSession(data if isinstance(data, bytes) else str(data),
                                providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def digits_rows(tmp: str) -> list[str]:
    """One table row per (method, granularity): ours in our engine and in onnxruntime, theirs."""
    split = load_digits_split()
    x_cal, x_test, feeds = split.x_train[:N_CALIBRATION], split.x_test, {"input": split.x_test}
    ref = run_model(str(digits_model_path()), feeds)[0]
    rows = [f"| float32 | - | - | - | - | {100 * accuracy(ref, split.y_test):.1f} | - |"]
    for per_channel in (False, True):
        for method in METHODS:
            ours = quantize_static(digits_model_path(), None, ArrayDataReader("input", x_cal, 64),
                                   per_channel=per_channel, calibrate_method=CalibrationMethod[method])
            y_ours, y_ours_ort = run_model(ours, feeds)[0], _ort_run(ours, feeds)
            theirs = os.path.join(tmp, f"ort_{method}_{per_channel}.onnx")
            _ort_quantize(digits_model_path(), theirs, x_cal, method, per_channel)
            y_theirs = _ort_run(theirs, feeds)
            rows.append(f"| {method} | {'channel' if per_channel else 'tensor'} | {sqnr(ref, y_ours):.1f} | "
                        f"{sqnr(ref, y_ours_ort):.1f} | {sqnr(ref, y_theirs):.1f} | "
                        f"{100 * accuracy(y_ours, split.y_test):.1f} | {100 * accuracy(y_theirs, split.y_test):.1f} |")
    return rows


def outlier_rows() -> list[str]:
    model, x_cal, x_eval = outlier_model(), outlier_data(N_CALIBRATION, 1), outlier_data(1000, 2)
    ref = run_model(model, {"x": x_eval})[0]
    rows = []
    for method in ("MinMax", "Percentile", "Entropy", "MSE"):
        q = quantize_static(model, None, ArrayDataReader("x", x_cal, 64), calibrate_method=CalibrationMethod[method],
                            extra_options={"CalibPercentile": 99.9})
        rows.append(f"| {method}{' (99.9)' if method == 'Percentile' else ''} | "
                    f"{sqnr(ref, run_model(q, {'x': x_eval})[0]):.1f} |")
    return rows


def _median_ms(session, feeds, repeat: int) -> float:
    session.run(None, feeds)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def latency_rows() -> list[str]:
    from course.runtime.session import InferenceSession

    x = load_digits_split().x_test
    models = {"float32": str(digits_model_path())}
    for fmt in (QuantFormat.QDQ, QuantFormat.QOperator):
        models[f"int8 {fmt.name}"] = quantize_static(digits_model_path(), None, ArrayDataReader("input", x[:256], 64),
                                                     per_channel=True, quant_format=fmt)
    rows = []
    for name, model in models.items():
        for providers in (["CPUExecutionProvider"], ["ReferenceExecutionProvider"]):
            s = InferenceSession(model, providers=providers)
            ms = [_median_ms(s, {"input": x[:b]}, 50 if b == 1 else 10) for b in (1, 256)]
            rows.append(f"| {name} | {providers[0]} | {ms[0]:.2f} | {ms[1]:.2f} |")
    return rows


QAT_WIDTHS = (4, 8, 16)  # a quarter of the shipped model's (16, 32, 64)
QAT_SCHEDULES = ((1, 5e-4), (3, 2e-4))  # (epochs, lr): lesson 10's one epoch, and a longer, gentler one


def qat_rows(bits: int = 4, train_seeds=(0, 1, 2), qat_seeds=(0, 1, 2)) -> list[str]:
    """Per granularity and trained model: float accuracy, PTQ (round the trained weights once) and
    QAT (``qat.qat_finetune`` with the shuffling seeds ``qat_seeds``) per schedule, all on the 450
    test images with the numpy forward pass. Weights only; BN stays a float op after the conv
    (exact for per-channel grids, which BN folding only rescales)."""
    from course.models import train_digits as td
    from course.quant import qat

    split = load_digits_split()
    nets = {s: td.train(seed=s, log=lambda _: None, widths=QAT_WIDTHS)[0] for s in train_seeds}
    acc = lambda layers: 100 * qat.accuracy(layers, split.x_test, split.y_test)
    rows = []
    for per_channel in (False, True):
        for seed, net in nets.items():
            ptq = acc(qat.with_quantized_weights(copy.deepcopy(net), bits, per_channel=per_channel))
            cells = []
            for epochs, lr in QAT_SCHEDULES:
                tuned = [acc(qat.qat_finetune(copy.deepcopy(net), split.x_train, split.y_train, bits,
                                              lambda ls: td.Adam(ls, lr), td.softmax_xent, epochs=epochs, lr=lr,
                                              seed=s, per_channel=per_channel)) for s in qat_seeds]
                cells.append(" / ".join(f"{a:.2f}" for a in tuned))
            rows.append(f"| {'channel' if per_channel else 'tensor'} | {seed} | {acc(net):.2f} | {ptq:.2f} | "
                        + " | ".join(cells) + " |")
    return rows


def print_qat_table() -> None:
    heads = " | ".join(f"QAT {e} ep, lr {lr:g} (seeds 0/1/2)" for e, lr in QAT_SCHEDULES)
    print(f"\n| 4-bit weights | training seed | float % | PTQ % | {heads} |\n|---|---|---|---|---|---|")
    print("\n".join(qat_rows()))


def main(argv: list[str]) -> None:
    import tempfile

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.python_version()}")
    if argv == ["qat"]:
        return print_qat_table()
    print("\n| calibration | granularity | ours, our engine (dB) | ours, onnxruntime (dB) | onnxruntime's (dB) "
          "| ours acc % | onnxruntime's acc % |\n|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        print("\n".join(digits_rows(tmp)))
    print("\n| outlier model, calibration | logit SQNR (dB) |\n|---|---|")
    print("\n".join(outlier_rows()))
    print("\n| digits model | providers | batch 1 (ms) | batch 256 (ms) |\n|---|---|---|---|")
    print("\n".join(latency_rows()))
    print_qat_table()


if __name__ == "__main__":
    main(sys.argv[1:])
