"""course.testing is what graded cells compare with: it must not be fooled by learner code."""
import numpy as np
import pytest

from course.testing import assert_close, random_tensor, tolerance


def test_accepts_equal_and_rejects_different_values():
    x = random_tensor((4, 5), seed=3)
    assert_close(x.copy(), x)
    y = x.copy()
    y[2, 3] += 1e-3
    with pytest.raises(AssertionError, match=r"1 of 20 elements differ \(first at \(2, 3\)"):
        assert_close(y, x)


def test_shape_dtype_and_integer_exactness():
    with pytest.raises(AssertionError, match="shape"):
        assert_close(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(AssertionError, match="dtype float64 != expected float32"):
        assert_close(np.zeros(3), np.zeros(3, np.float32))
    with pytest.raises(AssertionError, match="1 element"):
        assert_close(np.array([1, 2, 4]), np.array([1, 2, 3]))
    assert tolerance(np.int8) == (0.0, 0.0)


def test_nans_must_match_position_for_position():
    assert_close(np.array([1.0, np.nan], np.float32), np.array([1.0, np.nan], np.float32))
    with pytest.raises(AssertionError):
        assert_close(np.array([np.nan, 1.0], np.float32), np.array([1.0, np.nan], np.float32))


def test_objects_that_compare_equal_to_everything_are_rejected():
    class Anything:
        def __eq__(self, other):
            return True

        def __array__(self, dtype=None, copy=None):
            return np.zeros(3, np.float32)

    with pytest.raises(AssertionError, match="expected an array, got Anything"):
        assert_close(Anything(), np.ones(3, np.float32))

    class Liar(np.ndarray):
        def __eq__(self, other):
            return np.ones(self.shape, bool)

        def __ne__(self, other):
            return np.zeros(self.shape, bool)

    wrong = np.zeros(3, np.int64).view(Liar)
    with pytest.raises(AssertionError, match="differ"):
        assert_close(wrong, np.array([1, 2, 3]))


@pytest.mark.parametrize("name, fake", [
    ("isclose", lambda a, b, **k: np.ones(np.broadcast(a, b).shape, bool)),
    ("array_equal", lambda a, b, **k: True),
    ("asarray", lambda a, *p, **k: np.zeros(3, np.float32)),
    ("argwhere", lambda a: np.zeros((1, 1), int)),
])
def test_monkeypatched_numpy_does_not_change_the_verdict(monkeypatch, name, fake):
    """A learner cell may rebind numpy functions; the grader's copies were taken at import."""
    monkeypatch.setattr(np, name, fake)
    with pytest.raises(AssertionError):
        assert_close(np.zeros(3, np.float32), np.ones(3, np.float32))
    with pytest.raises(AssertionError):
        assert_close(np.array([1, 2, 4]), np.array([1, 2, 3]))


def test_monkeypatched_default_rng_does_not_change_the_test_data(monkeypatch):
    want = random_tensor((3, 4), seed=5)
    monkeypatch.setattr(np.random, "default_rng", lambda seed=None: np.random.Generator(np.random.PCG64(0)))
    assert np.array_equal(random_tensor((3, 4), seed=5), want)
    assert not np.array_equal(random_tensor((3, 4), seed=6), want)
