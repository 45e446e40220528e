"""NCHW/NHWC/NCHWc index maps and conversions, and alignment helpers."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from course.errors import ShapeError
from course.tensor import (address_of, align_down, align_up, aligned_empty, is_aligned,
                           is_buffer_aligned, nchw_offset, nchw_to_nchwc, nchw_to_nhwc,
                           nchwc_to_nchw, nhwc_offset, nhwc_strides, nhwc_to_nchw)

FAST = settings(max_examples=40, derandomize=True)
nchw = st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 5), st.integers(1, 5))


@FAST
@given(nchw)
def test_offsets_match_numpy_layouts(shape):
    N, C, H, W = shape
    a = np.arange(N * C * H * W).reshape(shape)
    nhwc = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).reshape(-1)
    flat = a.reshape(-1)
    for n, c, h, w in [(0, 0, 0, 0), (N - 1, C - 1, H - 1, W - 1), (N // 2, C // 2, H - 1, 0)]:
        assert flat[nchw_offset(n, c, h, w, shape)] == a[n, c, h, w]
        assert nhwc[nhwc_offset(n, c, h, w, shape)] == a[n, c, h, w]
    view = np.lib.stride_tricks.as_strided(nhwc, shape, [s * nhwc.itemsize for s in nhwc_strides(shape)])
    np.testing.assert_array_equal(view, a)


@FAST
@given(nchw)
def test_conversions_round_trip(shape):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    h = nchw_to_nhwc(a)
    np.testing.assert_array_equal(h, a.transpose(0, 2, 3, 1))
    assert h.flags.c_contiguous
    np.testing.assert_array_equal(nhwc_to_nchw(h), a)


@pytest.mark.parametrize("cb", [1, 4, 8])
def test_nchwc_blocks_and_back(cb):
    a = np.arange(2 * 5 * 3 * 2, dtype=np.float32).reshape(2, 5, 3, 2)
    b = nchw_to_nchwc(a, cb)
    assert b.shape == (2, -(-5 // cb), 3, 2, cb)
    assert b[1, 4 // cb, 2, 1, 4 % cb] == a[1, 4, 2, 1]
    if cb == 8:
        assert (b[:, :, :, :, 5:] == 0).all()
    np.testing.assert_array_equal(nchwc_to_nchw(b, 5), a)
    with pytest.raises(ShapeError):
        nchwc_to_nchw(b, 5 + 8)


def test_format_functions_reject_wrong_rank():
    with pytest.raises(ShapeError):
        nchw_to_nhwc(np.zeros((2, 3)))
    with pytest.raises(ShapeError):
        nhwc_offset(0, 0, 0, 0, (1, 2, 3))


@settings(max_examples=200, derandomize=True)
@given(st.integers(0, 10**6), st.sampled_from([1, 2, 3, 8, 12, 64, 100, 128]))
def test_align_up_is_the_smallest_multiple_not_below(n, a):
    up = align_up(n, a)
    assert up % a == 0 and up >= n and up - n < a
    assert align_down(n, a) == n - n % a
    assert is_aligned(up, a)


def test_align_up_edge_cases():
    assert align_up(64, 64) == 64 and align_up(65, 64) == 128 and align_up(0, 16) == 0
    with pytest.raises(ShapeError):
        align_up(3, 0)


@pytest.mark.parametrize("alignment", [16, 64, 256])
def test_aligned_empty_is_aligned(alignment):
    for shape in [(3,), (5, 7), (1, 3, 8, 8)]:
        a = aligned_empty(shape, np.float32, alignment)
        assert a.shape == shape and a.dtype == np.float32
        assert is_buffer_aligned(a, alignment) and address_of(a) % alignment == 0
        a[...] = 1  # writable
