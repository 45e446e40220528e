"""How many bytes a tensor takes in the arena: elements times item size, rounded up.

Every size is a multiple of the alignment, so a planner that places tensors at 0 or at the end
of another tensor keeps every offset aligned without thinking about it (TFLite and onnxruntime
both round to 64 bytes: one cache line, and the widest AVX-512 load).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from course.tensor.align import align_up

DEFAULT_ALIGNMENT = 64


def tensor_bytes(dtype, shape: Sequence[int], alignment: int = DEFAULT_ALIGNMENT) -> int:
    """Bytes of a dense ``dtype`` tensor of static ``shape``, rounded up to ``alignment``."""
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    return align_up(n * np.dtype(dtype).itemsize, alignment)


def static_shape(shape) -> Optional[tuple[int, ...]]:
    """``shape`` as a tuple of ints, or None when the rank or a dim is unknown (symbolic)."""
    if shape is None or not all(isinstance(d, (int, np.integer)) for d in shape):
        return None
    return tuple(int(d) for d in shape)
