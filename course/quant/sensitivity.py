"""Which layers lose the most when quantized, and a model that keeps those in float.

``sensitivity`` quantizes one layer at a time (every other layer stays float) with the ranges of
one calibration and measures the SQNR of the model's first output against the float model's on
``eval_feeds``: the lower, the more that layer alone costs. ``mixed_precision`` then excludes the
most sensitive layers from quantization -- a fixed number, or as many as it takes to reach a
target SQNR.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import onnx

from course.ir.onnx_export import to_onnx
from course.quant.calibrate import calibrate
from course.quant.metrics import run_model, sqnr
from course.quant.observe import load_graph
from course.quant.quantize import QuantConfig, prepare, quantize_graph, selected_nodes, tensors_to_calibrate
from course.quant.types import CalibrationMethod


class LayerSensitivity(NamedTuple):
    node: str
    op_type: str
    sqnr_db: float


class Calibrated(NamedTuple):
    """A prepared float model with the ranges of one calibration: quantize it many ways."""

    model: onnx.ModelProto
    ranges: dict
    config: QuantConfig

    def quantized(self, **changes) -> onnx.ModelProto:
        graph = load_graph(self.model)
        quantize_graph(graph, self.ranges, dataclasses.replace(self.config, **changes))
        return to_onnx(graph)


def calibrated(model, reader, config: Optional[QuantConfig] = None,
               calibrate_method=CalibrationMethod.MinMax) -> Calibrated:
    config = config or QuantConfig()
    graph = prepare(load_graph(model))
    ranges = calibrate(graph, reader, calibrate_method, tensors_to_calibrate(graph, config))
    return Calibrated(to_onnx(graph), ranges, config)


def sensitivity(cal: Calibrated, eval_feeds: dict) -> list[LayerSensitivity]:
    """SQNR (dB) of the first output with only that layer quantized, per layer in graph order."""
    ref = run_model(cal.model, eval_feeds)[0]
    graph = load_graph(cal.model)
    kinds = {n.name: n.op_type for n in graph.nodes}
    out = []
    for name in selected_nodes(graph, cal.config):
        y = run_model(cal.quantized(nodes_to_quantize={name}), eval_feeds)[0]
        out.append(LayerSensitivity(name, kinds[name], sqnr(ref, y)))
    return out


def mixed_precision(cal: Calibrated, eval_feeds: dict, keep_float: int = 1,
                    target_sqnr: Optional[float] = None) -> tuple[onnx.ModelProto, list[str]]:
    """The quantized model with the most sensitive layers left in float, and their names.

    With ``target_sqnr`` layers are kept in float, most sensitive first, until the whole model
    reaches it; otherwise the ``keep_float`` most sensitive layers are.
    """
    ranked = [s.node for s in sorted(sensitivity(cal, eval_feeds), key=lambda s: s.sqnr_db)]
    if target_sqnr is None:
        excluded = ranked[:keep_float]
        return cal.quantized(nodes_to_exclude=set(excluded)), excluded
    ref = run_model(cal.model, eval_feeds)[0]
    for k in range(len(ranked) + 1):
        model = cal.quantized(nodes_to_exclude=set(ranked[:k]))
        if sqnr(ref, run_model(model, eval_feeds)[0]) >= target_sqnr:
            return model, ranked[:k]
    return model, ranked
