"""Small helpers the op files share: ONNX element types, axis handling, symbolic dim arithmetic."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from course.errors import DTypeError, OpAttributeError
from course.ops.types import Dim, Shape

# TensorProto.DataType -> numpy dtype, for the element types the engine computes with.
ONNX_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32), 2: np.dtype(np.uint8), 3: np.dtype(np.int8), 4: np.dtype(np.uint16),
    5: np.dtype(np.int16), 6: np.dtype(np.int32), 7: np.dtype(np.int64), 8: np.dtype(object),
    9: np.dtype(np.bool_), 10: np.dtype(np.float16), 11: np.dtype(np.float64),
    12: np.dtype(np.uint32), 13: np.dtype(np.uint64),
}


def onnx_dtype(code: int, what: str = "to") -> np.dtype:
    """The numpy dtype of an ONNX element-type code; DTypeError for types the engine lacks."""
    try:
        return ONNX_DTYPES[int(code)]
    except (KeyError, TypeError, ValueError):
        raise DTypeError(f"attribute {what!r}: element type {code!r} is not supported "
                         f"(supported codes: {sorted(ONNX_DTYPES)})") from None


def norm_axis(axis: int, rank: Optional[int], what: str = "axis", extra: int = 0) -> int:
    """Map axis from [-rank, rank + extra) to [0, rank + extra); OpAttributeError when out of range.

    ``extra=1`` is for ops whose axis may equal the rank (Flatten, Softmax before opset 13).
    """
    if rank is None:
        return axis
    if not -rank <= axis < rank + extra:
        raise OpAttributeError(f"{what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def dim_product(dims: Sequence[Dim]) -> Optional[int]:
    """Product of dims when all are known ints, else None."""
    out = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        out *= d
    return out


def as_ints(a) -> list[int]:
    """A 1-D constant (shape/axes/pads input) as a list of Python ints."""
    return [int(v) for v in np.asarray(a).reshape(-1).tolist()]


def rank_of(shape: Shape) -> Optional[int]:
    return None if shape is None else len(shape)


def write_out(out: Optional[np.ndarray], y: np.ndarray) -> np.ndarray:
    """``y``, or, when the caller handed an ``out`` array to write into (destination passing),
    ``out`` holding a copy of ``y``."""
    if out is None or out is y:
        return y
    np.copyto(out, y)
    return out
