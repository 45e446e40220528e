"""Bit layouts of float32, float16 and bfloat16, and rounding between them, with integer ops.

    float32  = 1 sign | 8 exponent (bias 127) | 23 mantissa
    bfloat16 = 1 sign | 8 exponent (bias 127) |  7 mantissa   (the top half of a float32)
    float16  = 1 sign | 5 exponent (bias 15)  | 10 mantissa

Narrowing drops mantissa bits. *Truncation* just cuts them (always toward zero);
*round-to-nearest-even* (RNE, the IEEE default) picks the nearer representable value and,
on an exact tie, the one whose last kept bit is 0, so errors do not drift in one direction.
"""
from __future__ import annotations

import numpy as np

F16_QNAN = 0x7E00
BF16_QUIET_BIT = 0x0040


def float_to_bits(x) -> np.ndarray:
    """float32 values → their uint32 bit patterns (same shape)."""
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def bits_to_float(bits) -> np.ndarray:
    """uint32 bit patterns → float32 values."""
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def float32_fields(x):
    """(sign, biased exponent, mantissa) of float32 values, as uint32 arrays."""
    b = float_to_bits(x)
    return b >> 31, (b >> 23) & 0xFF, b & 0x7FFFFF


# --- bfloat16 -----------------------------------------------------------------------------------
def to_bfloat16_bits(x, rounding: str = "nearest_even") -> np.ndarray:
    """float32 → bfloat16 bit patterns (uint16), by RNE (default) or ``rounding="truncate"``.

    RNE adds 0x7FFF plus the lowest kept bit, then cuts: above half rounds up, below half
    down, exactly half goes to the even neighbour. NaN is handled apart: its payload might
    sit in the cut half only, and cutting or carrying would turn it into inf.
    """
    b = float_to_bits(x).astype(np.uint64)
    if rounding == "truncate":
        out = b >> 16
    elif rounding == "nearest_even":
        out = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    out = np.where(nan, (b >> 16) | BF16_QUIET_BIT, out)
    return out.astype(np.uint16)


def bfloat16_bits_to_float(bits) -> np.ndarray:
    """bfloat16 bit patterns → float32 (exact: append 16 zero bits)."""
    return bits_to_float(np.asarray(bits, dtype=np.uint32) << 16)


def to_bfloat16(x, rounding: str = "nearest_even") -> np.ndarray:
    """Round float32 values to bfloat16 precision; returned as float32 holding bf16 values."""
    return bfloat16_bits_to_float(to_bfloat16_bits(x, rounding))


# --- float16 ------------------------------------------------------------------------------------
def _round_shift(m: np.ndarray, shift: np.ndarray, rounding: str) -> np.ndarray:
    """``m >> shift`` rounded per ``rounding`` (shift >= 1, uint64 arrays)."""
    q = m >> shift
    if rounding == "truncate":
        return q
    rem = m & ((np.uint64(1) << shift) - np.uint64(1))
    half = np.uint64(1) << (shift - np.uint64(1))
    up = (rem > half) | ((rem == half) & ((q & np.uint64(1)) == 1))
    return q + up.astype(np.uint64)


def to_float16_bits(x, rounding: str = "nearest_even") -> np.ndarray:
    """float32 → IEEE half bit patterns (uint16) with integer ops only.

    Normal results keep the top 10 mantissa bits (rounded; a carry may bump the exponent,
    up to inf). Results below 2**-14 become subnormals: the full 24-bit significand is
    shifted right so it counts units of 2**-24. Inf stays inf; NaN stays a (quiet) NaN.
    """
    if rounding not in ("nearest_even", "truncate"):
        raise ValueError(f"unknown rounding {rounding!r}")
    b = float_to_bits(x).astype(np.uint64)
    sign = (b >> 16) & 0x8000
    exp = ((b >> 23) & 0xFF).astype(np.int64)
    mant = b & 0x7FFFFF
    e16 = exp - 127 + 15

    # Normal range: rebias the exponent, keep 10 mantissa bits (the carry may reach inf).
    normal_bits = (np.clip(e16, 0, 31).astype(np.uint64) << 10) | (mant >> 13)
    normal = _round_shift(normal_bits << 13 | (mant & 0x1FFF), np.uint64(13), rounding)
    normal = np.minimum(normal, 0x7C00) if rounding == "nearest_even" else np.minimum(normal, 0x7BFF)

    # Subnormal range: significand with its hidden 1, counted in units of 2**-24.
    shift = np.clip(126 - exp, 1, 63).astype(np.uint64)
    sub = np.where(126 - exp > 24, 0, _round_shift(mant | 0x800000, shift, rounding))

    out = np.where(e16 >= 1, normal, sub)
    out = np.where(e16 >= 31, 0x7C00 if rounding == "nearest_even" else 0x7BFF, out)
    out = np.where(exp == 0xFF, np.where(mant == 0, 0x7C00, F16_QNAN | (mant >> 13)), out)
    return (out | sign).astype(np.uint16)


def float16_bits_to_float(bits) -> np.ndarray:
    """IEEE half bit patterns → float32 values (numpy's float16 does the decoding)."""
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(np.float32)


def to_float16(x, rounding: str = "nearest_even") -> np.ndarray:
    """float32 → numpy float16 array built from :func:`to_float16_bits`."""
    return to_float16_bits(x, rounding).view(np.float16)
