"""Quantization (lesson 10): scale and zero point, calibrators, quantize_static / quantize_dynamic.

    from course.quant import quantize_static, CalibrationMethod, QuantFormat
    quantize_static("model.onnx", "model.int8.onnx", reader, per_channel=True,
                    calibrate_method=CalibrationMethod.Entropy)

- ``params``: ranges -> scale / zero point; quantize / dequantize with the ONNX rounding.
- ``calibrate``: min-max, percentile, entropy (KL) and MSE calibrators over a data reader.
- ``quantize`` / ``static``: BN folding, Q/DQ insertion, ``quantize_static`` (QDQ or QOperator,
  the latter through ``course.passes.qdq_to_integer``).
- ``dynamic``: ``quantize_dynamic`` (DynamicQuantizeLinear + MatMulInteger).
- ``sensitivity``: per-layer SQNR and mixed precision; ``float16``: whole-model float16.
"""
from course.quant.calibrate import (ArrayDataReader, CalibrationDataReader, Calibrator, EntropyCalibrator,
                                    MinMaxCalibrator, MSECalibrator, PercentileCalibrator, TensorRange, calibrate,
                                    create_calibrator)
from course.ops.quant_dynamic import DynamicQuantizeLinear, dynamic_quantize_linear
from course.quant.dynamic import quantize_dynamic
from course.quant.float16 import convert_float_to_float16
from course.quant.metrics import accuracy, sqnr
from course.quant.params import QuantParams, compute_params, dequantize, fake_quantize, qrange, quantize, \
    tensor_params
from course.quant.quantize import QuantConfig, prepare, quantize_graph
from course.quant.sensitivity import Calibrated, LayerSensitivity, calibrated, mixed_precision, sensitivity
from course.quant.static import quantize_static
from course.quant.types import CalibrationMethod, QuantFormat, QuantType

__all__ = ["ArrayDataReader", "CalibrationDataReader", "Calibrator", "EntropyCalibrator", "MinMaxCalibrator",
           "MSECalibrator", "PercentileCalibrator", "TensorRange", "calibrate", "create_calibrator",
           "DynamicQuantizeLinear", "dynamic_quantize_linear", "quantize_dynamic", "convert_float_to_float16",
           "accuracy", "sqnr", "QuantParams", "compute_params", "dequantize", "fake_quantize", "qrange", "quantize",
           "tensor_params", "QuantConfig", "prepare", "quantize_graph", "Calibrated", "LayerSensitivity",
           "calibrated", "mixed_precision", "sensitivity", "quantize_static", "CalibrationMethod", "QuantFormat",
           "QuantType"]
