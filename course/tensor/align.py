"""Alignment: round sizes up to a multiple, and check or obtain aligned buffer addresses.

SIMD loads and GPU transactions are fastest (sometimes only legal) at addresses that are a
multiple of 16, 32, 64 or 128 bytes; memory planners round every tensor's size up for this.
"""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError


def is_power_of_two(a: int) -> bool:
    return a > 0 and (a & (a - 1)) == 0


def align_up(n: int, a: int) -> int:
    """Smallest multiple of ``a`` that is >= ``n`` (``n`` itself when already aligned)."""
    if a <= 0:
        raise ShapeError(f"alignment must be positive, got {a}")
    if is_power_of_two(a):
        return (n + a - 1) & ~(a - 1)  # clear the low bits after stepping past the boundary
    return -(-n // a) * a


def align_down(n: int, a: int) -> int:
    """Largest multiple of ``a`` that is <= ``n``."""
    if a <= 0:
        raise ShapeError(f"alignment must be positive, got {a}")
    return (n // a) * a


def is_aligned(n: int, a: int) -> bool:
    return n % a == 0


def address_of(array: np.ndarray) -> int:
    """Address of the array's first element (from the array interface)."""
    return int(array.__array_interface__["data"][0])


def is_buffer_aligned(array: np.ndarray, a: int) -> bool:
    """True when the array's first element sits at a multiple of ``a`` bytes."""
    return address_of(array) % a == 0


def aligned_empty(shape, dtype=np.float32, alignment: int = 64) -> np.ndarray:
    """An uninitialised array whose data starts at a multiple of ``alignment`` bytes.

    Over-allocate raw bytes by ``alignment`` and start the array at the first aligned byte.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = align_up(address_of(raw), alignment) - address_of(raw)
    return raw[start:start + nbytes].view(dtype).reshape(shape)
