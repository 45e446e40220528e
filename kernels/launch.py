"""Launch-configuration helpers shared by the host wrappers.

Every wrapper keeps its configuration visible at the call site (``THREADS = 256`` and a
ceil-div block count), so these helpers only do the arithmetic and the host<->device copies.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

THREADS = 256  # threads per block for 1D kernels: 8 warps, a good default on every GPU


def ceil_div(n: int, d: int) -> int:
    """Smallest number of size-``d`` chunks that cover ``n`` items (the block count of a launch)."""
    if d <= 0:
        raise ValueError(f"ceil_div: divisor must be positive, got {d}")
    return -(-int(n) // int(d))


def as_float32(a, name: str) -> np.ndarray:
    """A C-contiguous float32 copy-free view of ``a`` when possible; rejects non-arrays early."""
    arr = np.ascontiguousarray(a, dtype=np.float32)
    if arr.ndim == 0:
        raise ValueError(f"{name}: expected an array, got a scalar")
    return arr


def to_device(a: np.ndarray):
    """Copy a host array to the device (on the simulator: a wrapped host copy)."""
    return cuda.to_device(np.ascontiguousarray(a))


def device_empty(shape, dtype=np.float32):
    """Uninitialised device memory of the given shape and dtype."""
    return cuda.device_array(shape, dtype=dtype)
