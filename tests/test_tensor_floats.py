"""fp16/bf16 conversion by bit manipulation, checked bit for bit against numpy and ml_dtypes."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from course.tensor import (bfloat16_bits_to_float, bits_to_float, float16_bits_to_float,
                           float32_fields, float_to_bits, to_bfloat16, to_bfloat16_bits,
                           to_float16, to_float16_bits)

FAST = settings(max_examples=80, derandomize=True)
any_bits = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=200)


def _special_values():
    """Values where narrowing goes wrong: ties, carries into the exponent, subnormals, limits."""
    f16 = [65504, 65519.99, 65520, 65536, 2.0**-14, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0001,
           3 * 2.0**-26, 2.0**-14 * (1 - 2.0**-11), 1 + 2.0**-11, 1 + 3 * 2.0**-11, 2049, 2051]
    bf = [1 + 2.0**-8, 1 + 3 * 2.0**-8, 3.4028235e38, 1.1754944e-38, 1e-45, 255.5, 257.0]
    v = np.array(f16 + bf + [0.0, 1.0, np.inf, np.nan], dtype=np.float32)
    return np.concatenate([v, -v])


def _with_nan_payloads():
    bits = np.array([0x7F800001, 0x7FC00000, 0xFF800001, 0x7F800100, 0x7FFFFFFF], dtype=np.uint32)
    return bits.view(np.float32)


def test_bits_round_trip_and_fields():
    x = np.array([1.0, -2.5, 0.0], dtype=np.float32)
    assert float_to_bits(x).tolist() == [0x3F800000, 0xC0200000, 0]
    np.testing.assert_array_equal(bits_to_float(float_to_bits(x)), x)
    s, e, m = float32_fields(np.float32(-2.5))
    assert (int(s), int(e), int(m)) == (1, 128, 0x200000)


def test_float16_matches_numpy_on_special_values():
    x = _special_values()
    got = to_float16_bits(x)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert np.isnan(got.view(np.float16)[nan]).all()


@FAST
@given(any_bits)
def test_float16_matches_numpy_on_random_bit_patterns(bits):
    x = np.array(bits, dtype=np.uint32).view(np.float32)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    got = to_float16(x)
    nan = np.isnan(x)
    np.testing.assert_array_equal(got.view(np.uint16)[~nan], want.view(np.uint16)[~nan])
    assert np.isnan(got[nan]).all()


@FAST
@given(st.lists(st.floats(-7e4, 7e4, width=32), min_size=1, max_size=100))
def test_float16_truncation_rounds_toward_zero(vals):
    x = np.array(vals, dtype=np.float32)
    t = float16_bits_to_float(to_float16_bits(x, "truncate"))
    assert (np.abs(t) <= np.abs(x)).all()
    with np.errstate(over="ignore"):
        r = x.astype(np.float16).astype(np.float32)
    fin = np.isfinite(r)  # RNE may overflow to inf where truncation saturates at 65504
    assert (np.abs(r - x)[fin] <= np.abs(t - x)[fin]).all(), "RNE is never farther than truncation"
    assert (t[~fin] == np.sign(x[~fin]) * 65504).all()


def test_float16_nan_stays_nan():
    x = _with_nan_payloads()
    assert np.isnan(to_float16(x)).all()
    assert np.isnan(float16_bits_to_float(to_float16_bits(x, "truncate"))).all()


def test_bfloat16_matches_ml_dtypes_on_special_values():
    x = _special_values()
    got = to_bfloat16_bits(x)
    with np.errstate(over="ignore"):
        want = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert np.isnan(bfloat16_bits_to_float(got[nan])).all()


@FAST
@given(any_bits)
def test_bfloat16_matches_ml_dtypes_on_random_bit_patterns(bits):
    x = np.array(bits, dtype=np.uint32).view(np.float32)
    with np.errstate(over="ignore"):
        want = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    got = to_bfloat16(x)
    nan = np.isnan(x)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert np.isnan(got[nan]).all()


def test_bfloat16_ties_go_to_even_and_truncation_differs():
    # 1 + 2**-8 is exactly halfway between bf16 neighbours 1 and 1 + 2**-7: RNE keeps 1 (even).
    x = np.array([1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-8 + 2.0**-20], dtype=np.float32)
    assert to_bfloat16(x).tolist() == [1.0, 1 + 2.0**-6, 1 + 2.0**-7]
    assert to_bfloat16(x, "truncate").tolist() == [1.0, 1 + 2.0**-7, 1.0]


def test_bfloat16_nan_whose_payload_is_only_in_the_low_half_stays_nan():
    x = _with_nan_payloads()
    for mode in ("nearest_even", "truncate"):
        assert np.isnan(bfloat16_bits_to_float(to_bfloat16_bits(x, mode))).all()


def test_unknown_rounding_is_rejected():
    with pytest.raises(ValueError):
        to_bfloat16_bits(np.float32(1), "up")
    with pytest.raises(ValueError):
        to_float16_bits(np.float32(1), "up")
