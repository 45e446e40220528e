"""``quantize_static``: onnxruntime.quantization's entry point, over the course engine.

    quantize_static("model.onnx", "model.int8.onnx", reader, per_channel=True,
                    calibrate_method=CalibrationMethod.Entropy)

writes a model that both this engine and onnxruntime run. The steps are in
``course.quant.quantize``; this file turns the keyword arguments into a ``QuantConfig``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import onnx

from course.quant.calibrate import CalibrationDataReader, calibrate
from course.quant.observe import load_graph
from course.quant.quantize import QUANTIZABLE, QuantConfig, prepare, quantize_graph, tensors_to_calibrate
from course.quant.types import CalibrationMethod, QuantFormat, QuantType

# extra_options this quantizer reads (onnxruntime's names where it has one)
CALIBRATOR_OPTIONS = {"CalibPercentile": "percentile", "CalibNumBins": "bins",
                      "CalibNumQuantizedBins": "num_quantized_bins"}


def config_from(per_channel=False, reduce_range=False, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, op_types_to_quantize=None, nodes_to_quantize=None,
                nodes_to_exclude=None, extra_options=None) -> QuantConfig:
    extra = extra_options or {}
    return QuantConfig(QuantType.of(activation_type), QuantType.of(weight_type), per_channel, reduce_range,
                       activation_symmetric=bool(extra.get("ActivationSymmetric", False)),
                       weight_symmetric=extra.get("WeightSymmetric"),
                       op_types=tuple(op_types_to_quantize or QUANTIZABLE),
                       nodes_to_quantize=None if nodes_to_quantize is None else set(nodes_to_quantize),
                       nodes_to_exclude=set(nodes_to_exclude or ()))


def quantize_static(model_input, model_output, calibration_data_reader: CalibrationDataReader,
                    quant_format=QuantFormat.QDQ, op_types_to_quantize: Optional[Sequence[str]] = None,
                    per_channel: bool = False, reduce_range: bool = False,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_quantize: Optional[Sequence[str]] = None,
                    nodes_to_exclude: Optional[Sequence[str]] = None, use_external_data_format: bool = False,
                    calibrate_method=CalibrationMethod.MinMax, calibration_providers=None,
                    extra_options: Optional[dict] = None) -> onnx.ModelProto:
    """Calibrate ``model_input`` over the reader and write the quantized model to ``model_output``
    (a path; None writes nothing). Returns the quantized ModelProto. Calibration runs the float
    model on the reference ops; ``calibration_providers`` is in onnxruntime's signature and may
    only be None or name the reference."""
    if calibration_providers not in (None, [], ["ReferenceExecutionProvider"]):
        raise ValueError(f"calibration runs on the reference ops; calibration_providers={calibration_providers!r} "
                         "cannot be honoured (use None)")
    config = config_from(per_channel, reduce_range, activation_type, weight_type, op_types_to_quantize,
                         nodes_to_quantize, nodes_to_exclude, extra_options)
    graph = prepare(load_graph(model_input))
    options = {v: (extra_options or {})[k] for k, v in CALIBRATOR_OPTIONS.items() if k in (extra_options or {})}
    ranges = calibrate(graph, calibration_data_reader, calibrate_method, tensors_to_calibrate(graph, config),
                       **options)
    model = finish(quantize_graph(graph, ranges, config), quant_format)
    if model_output is not None:
        onnx.save_model(model, str(model_output), save_as_external_data=use_external_data_format)
    return model


def finish(graph, quant_format=QuantFormat.QDQ) -> onnx.ModelProto:
    """Export a QDQ graph, first turning it into integer ops for ``QuantFormat.QOperator``."""
    from course.ir.onnx_export import to_onnx

    if QuantFormat(quant_format) is QuantFormat.QOperator:
        from course.passes.qdq_to_integer import QDQToInteger

        graph = QDQToInteger()(graph).graph
        graph.infer_types()
    graph.verify()
    return to_onnx(graph)
