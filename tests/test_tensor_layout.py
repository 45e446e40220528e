"""course.tensor layouts and broadcasting, checked against numpy."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from course.errors import EngineError, ShapeError
from course.tensor import (Layout, broadcast_shapes, broadcast_strides, column_major_strides,
                           contiguous_strides, index_to_offset, is_contiguous, offset_to_index)

shapes = st.lists(st.integers(0, 5), min_size=0, max_size=5).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 5), min_size=1, max_size=5).map(tuple)
FAST = settings(max_examples=60, derandomize=True)


@FAST
@given(st.lists(st.integers(1, 5), max_size=5).map(tuple))
def test_contiguous_strides_match_numpy(shape):
    a = np.empty(shape, dtype=np.float32)
    assert contiguous_strides(shape) == tuple(s // 4 for s in a.strides)
    f = np.empty(shape, dtype=np.float64, order="F")
    assert column_major_strides(shape) == tuple(s // 8 for s in f.strides)


@FAST
@given(nonempty_shapes, st.data())
def test_index_offset_round_trip(shape, data):
    off = data.draw(st.integers(0, int(np.prod(shape)) - 1))
    idx = offset_to_index(off, shape)
    assert idx == tuple(int(i) for i in np.unravel_index(off, shape))
    assert index_to_offset(idx, contiguous_strides(shape)) == off
    assert np.ravel_multi_index(idx, shape) == off


def test_strides_with_a_zero_dim_stay_defined():
    assert contiguous_strides((2, 0, 3)) == (3, 3, 1)
    assert contiguous_strides(()) == ()


def test_offset_to_index_rejects_out_of_range():
    with pytest.raises(ShapeError):
        offset_to_index(6, (2, 3))
    with pytest.raises(ShapeError):
        offset_to_index(-1, (2, 3))


def test_layout_offset_of_and_extent():
    lay = Layout((2, 3), (1, -2), offset=4)
    assert lay.offset_of((1, 2)) == 4 + 1 - 4
    assert lay.extent() == (0, 5)
    with pytest.raises(EngineError, match="axis 1"):
        lay.offset_of((0, 3))
    with pytest.raises(ShapeError):
        Layout((2, 3), (1,))


@FAST
@given(nonempty_shapes, st.data())
def test_is_contiguous_matches_numpy_flags(shape, data):
    a = np.zeros(shape, dtype=np.int8)
    perm = data.draw(st.permutations(range(len(shape))))
    t = a.transpose(perm)
    assert is_contiguous(t.shape, t.strides) == t.flags.c_contiguous


shape_pairs = st.tuples(st.lists(st.sampled_from([1, 2, 3, 5]), max_size=4),
                        st.lists(st.sampled_from([1, 2, 3, 5]), max_size=4))


@FAST
@given(shape_pairs)
def test_broadcast_shapes_matches_numpy(pair):
    a, b = map(tuple, pair)
    try:
        want = np.broadcast_shapes(a, b)
    except ValueError:
        with pytest.raises(ShapeError):
            broadcast_shapes(a, b)
    else:
        assert broadcast_shapes(a, b) == want
        assert broadcast_shapes(a, b, want) == want


def test_broadcast_aligns_right_not_left():
    assert broadcast_shapes((3,), (2, 3)) == (2, 3)
    with pytest.raises(ShapeError):
        broadcast_shapes((2,), (2, 3))
    assert broadcast_shapes() == ()


@FAST
@given(st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=3), st.data())
def test_broadcast_strides_read_like_broadcast_to(shape, data):
    shape = tuple(shape)
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2))
    out = tuple(lead) + tuple(d if d != 1 else data.draw(st.integers(1, 3)) for d in shape)
    a = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    strides = broadcast_strides(shape, contiguous_strides(shape), out)
    got = np.lib.stride_tricks.as_strided(a, out, [s * 8 for s in strides])
    np.testing.assert_array_equal(got, np.broadcast_to(a, out))
    assert all(s == 0 for s, d in zip(strides, out) if d > 1 and s == 0)  # stride 0 reads repeat


def test_broadcast_strides_rejects_incompatible():
    with pytest.raises(ShapeError):
        broadcast_strides((2,), (1,), (3,))
    with pytest.raises(ShapeError):
        broadcast_strides((2, 3), (3, 1), (3,))
