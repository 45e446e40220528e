"""The option enums of ``quantize_static``/``quantize_dynamic``, named as onnxruntime names them.

``QuantType.QUInt8`` / ``QInt8`` say which 8-bit integer a tensor is stored in; ``QuantFormat``
says how the quantized model is written (``QDQ``: QuantizeLinear/DequantizeLinear pairs around
float ops, ``QOperator``: integer ops such as QLinearConv); ``CalibrationMethod`` picks the
calibrator that turns observed activations into ranges.
"""
from __future__ import annotations

from enum import Enum

import numpy as np


class QuantType(Enum):
    QInt8 = 0
    QUInt8 = 1

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int8 if self is QuantType.QInt8 else np.uint8)

    @classmethod
    def of(cls, value) -> "QuantType":
        """A QuantType from itself, a numpy dtype or a name ("int8", "QUInt8", ...)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value in cls.__members__:
            return cls[value]
        dt = np.dtype(value)
        if dt == np.int8:
            return cls.QInt8
        if dt == np.uint8:
            return cls.QUInt8
        raise ValueError(f"quantized type must be int8 or uint8, got {value!r}")


class QuantFormat(Enum):
    QOperator = 0
    QDQ = 1


class CalibrationMethod(Enum):
    MinMax = 0
    Entropy = 1
    Percentile = 2
    Distribution = 3  # onnxruntime's float8 calibrator: not implemented here
    MSE = 4  # ours: the threshold that minimises the expected squared quantization error
