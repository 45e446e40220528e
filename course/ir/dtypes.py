"""Element types: ONNX ``TensorProto`` codes <-> numpy dtypes <-> onnxruntime type strings.

Written out as one table so the supported set is visible at a glance. Types numpy cannot hold
natively (bfloat16, float8, int4, ...) are not in it: the importer rejects them with a DTypeError.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from course.errors import DTypeError

# ONNX code: (numpy dtype, the name onnxruntime prints inside "tensor(...)")
_TABLE: dict[int, tuple[np.dtype, str]] = {
    TensorProto.FLOAT: (np.dtype(np.float32), "float"),
    TensorProto.DOUBLE: (np.dtype(np.float64), "double"),
    TensorProto.FLOAT16: (np.dtype(np.float16), "float16"),
    TensorProto.INT8: (np.dtype(np.int8), "int8"),
    TensorProto.INT16: (np.dtype(np.int16), "int16"),
    TensorProto.INT32: (np.dtype(np.int32), "int32"),
    TensorProto.INT64: (np.dtype(np.int64), "int64"),
    TensorProto.UINT8: (np.dtype(np.uint8), "uint8"),
    TensorProto.UINT16: (np.dtype(np.uint16), "uint16"),
    TensorProto.UINT32: (np.dtype(np.uint32), "uint32"),
    TensorProto.UINT64: (np.dtype(np.uint64), "uint64"),
    TensorProto.BOOL: (np.dtype(np.bool_), "bool"),
    TensorProto.STRING: (np.dtype(object), "string"),
    TensorProto.COMPLEX64: (np.dtype(np.complex64), "complex64"),
    TensorProto.COMPLEX128: (np.dtype(np.complex128), "complex128"),
}
_FROM_NUMPY: dict[np.dtype, int] = {dt: code for code, (dt, _) in _TABLE.items()}


def onnx_type_name(code: int) -> str:
    """``TensorProto.FLOAT`` -> ``"FLOAT"`` (for messages)."""
    try:
        return TensorProto.DataType.Name(code)
    except ValueError:
        return f"<unknown element type {code}>"


def to_numpy(code: int, what: str) -> np.dtype:
    """The numpy dtype of ONNX element type ``code``; DTypeError naming ``what`` if unsupported."""
    if code not in _TABLE:
        raise DTypeError(f"{what} has unsupported element type {onnx_type_name(code)}")
    return _TABLE[code][0]


def to_onnx(dtype) -> int:
    """The ONNX element type code of a numpy dtype; DTypeError if it has none."""
    dt = np.dtype(dtype)
    if dt.kind in "SU":  # numpy fixed-width strings travel as ONNX STRING
        return TensorProto.STRING
    if dt not in _FROM_NUMPY:
        raise DTypeError(f"numpy dtype {dt} has no ONNX element type in this engine")
    return _FROM_NUMPY[dt]


def ort_type_string(dtype) -> str:
    """``float32`` -> ``"tensor(float)"``, the way onnxruntime's NodeArg.type spells it."""
    return f"tensor({_TABLE[to_onnx(dtype)][1]})"
