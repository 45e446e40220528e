"""TensorView: views never copy and read exactly what numpy's views read."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from course.errors import ShapeError
from course.tensor import Layout, TensorView, as_view, gather_offsets, reshape_strides

FAST = settings(max_examples=60, derandomize=True)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


def _arange(shape):
    return np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)


@FAST
@given(shapes, st.data())
def test_permute_matches_numpy_transpose(shape, data):
    a = _arange(shape)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    v = as_view(a).permute(*perm)
    assert v.buffer is not None and np.shares_memory(v.buffer, a)
    np.testing.assert_array_equal(v.numpy(), np.transpose(a, perm))
    assert v.strides == tuple(s // 4 for s in np.transpose(a, perm).strides)


def test_transpose_and_T():
    a = _arange((2, 3, 4))
    np.testing.assert_array_equal(as_view(a).transpose().numpy(), np.swapaxes(a, -1, -2))
    np.testing.assert_array_equal(as_view(a).T.numpy(), a.T)
    with pytest.raises(ShapeError):
        as_view(a).permute(0, 0, 1)


@FAST
@given(shapes, st.data())
def test_slicing_matches_numpy(shape, data):
    a = _arange(shape)
    key = tuple(data.draw(st.one_of(
        st.slices(d), st.integers(-d, d - 1))) for d in shape)
    want = a[key]
    got = as_view(a)[key]
    if np.ndim(want) == 0:
        assert got == want
    else:
        assert isinstance(got, TensorView)
        np.testing.assert_array_equal(got.numpy(), want)


def test_slice_method_with_negative_step():
    a = _arange((5, 6))
    v = as_view(a).slice(1, 5, 0, -2)
    assert v.strides == (6, -2) and v.offset == 5
    np.testing.assert_array_equal(v.numpy(), a[:, 5:0:-2])


@FAST
@given(shapes, st.data())
def test_reshape_views_agree_with_numpy_no_copy(shape, data):
    a = _arange(shape)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    step = data.draw(st.sampled_from([1, 1, 2]))
    t = np.transpose(a, perm)[..., ::step]
    v = as_view(a).permute(*perm).slice(-1, None, None, step)
    n = t.size
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    d1 = data.draw(st.sampled_from(divisors))
    d2 = data.draw(st.sampled_from([d for d in divisors if (n // d1) % d == 0]))
    new = (d1, d2, n // (d1 * d2))
    try:
        want = np.reshape(t, new, copy=False)
    except ValueError:
        want = None
    got = v.reshape(new)
    if want is None:
        assert got is None, f"{t.shape}/{t.strides} -> {new} cannot be a view"
    else:
        assert got is not None, f"{t.shape} strides {v.strides} -> {new} is a view in numpy"
        np.testing.assert_array_equal(got.numpy(), want)


def test_reshape_known_cases():
    assert reshape_strides((2, 3), (3, 1), (3, 2)) == (2, 1)
    assert reshape_strides((2, 3), (1, 2), (6,)) is None  # a transpose must be copied
    assert reshape_strides((4, 6), (6, 1), (2, 2, 3, 2)) == (12, 6, 2, 1)
    assert reshape_strides((3, 4), (8, 1), (3, 2, 2)) == (8, 2, 1)  # rows with gaps still split
    assert reshape_strides((3, 4), (8, 1), (12,)) is None
    assert reshape_strides((2, 3), (3, 1), (-1,)) == (1,)
    with pytest.raises(ShapeError):
        reshape_strides((2, 3), (3, 1), (4, -1))


def test_expand_uses_stride_zero_without_copy():
    a = _arange((3, 1))
    v = as_view(a).expand(2, 3, 4)
    assert v.strides == (0, 1, 0)
    np.testing.assert_array_equal(v.numpy(), np.broadcast_to(a, (2, 3, 4)))
    assert v.buffer.size == 3


def test_view_checks_buffer_bounds_and_contiguous_copy():
    buf = np.arange(6)
    with pytest.raises(ShapeError):
        TensorView(buf, Layout((2, 3), (4, 1)))
    v = TensorView(buf, Layout((3, 2), (1, 3)))
    c = v.contiguous()
    assert c.is_contiguous() and c.buffer is not buf
    np.testing.assert_array_equal(c.numpy(), buf.reshape(2, 3).T)
    v0 = as_view(buf)
    assert v0.contiguous() is v0 and np.shares_memory(v0.buffer, buf)


@FAST
@given(shapes, st.data())
def test_gather_offsets_matches_as_strided(shape, data):
    strides = tuple(data.draw(st.integers(-3, 3)) for _ in shape)
    lay = Layout(shape, strides, offset=0)
    lo, _ = lay.extent()
    lay = Layout(shape, strides, offset=-lo)
    hi = lay.extent()[1]
    buf = np.arange(hi + 1, dtype=np.int64)
    want = np.lib.stride_tricks.as_strided(buf[lay.offset:], shape, [s * 8 for s in strides])
    np.testing.assert_array_equal(buf[gather_offsets(lay)], want)
