"""Algorithms on iterator ranges against sorted / bisect / comprehensions, on every container."""
import bisect

import pytest
from hypothesis import given, settings, strategies as st

from course.containers import (
    BackInserter, Deque, Greater, KeyLess, Less, List, Not, Set, Vector, advance,
    binary_search, copy, count_if, distance, find, find_if, is_sorted, lower_bound, remove_if,
    sort, stable_sort, upper_bound,
)

CONTAINERS = [Vector, Deque, List]
ints = st.lists(st.integers(-20, 20), max_size=60)


class Counting:
    """A comparator that counts its calls."""

    def __init__(self, comp=Less()):
        self.comp, self.calls = comp, 0

    def __call__(self, a, b):
        self.calls += 1
        return self.comp(a, b)


@settings(max_examples=100, derandomize=True)
@given(ints, st.integers(-20, 20), st.sampled_from(CONTAINERS))
def test_find_count_remove_if(xs, q, kind):
    c = kind(xs)
    it = find(c.begin(), c.end(), q)
    assert distance(c.begin(), it) == (xs.index(q) if q in xs else len(xs))
    odd = lambda x: x % 2 != 0  # noqa: E731
    assert distance(c.begin(), find_if(c.begin(), c.end(), odd)) == next(
        (i for i, x in enumerate(xs) if odd(x)), len(xs))
    assert count_if(c.begin(), c.end(), odd) == sum(map(odd, xs))
    new_end = remove_if(c.begin(), c.end(), odd)
    kept = [x for x in xs if not odd(x)]
    assert distance(c.begin(), new_end) == len(kept)
    assert list(c)[:len(kept)] == kept
    assert len(c) == len(xs)  # remove_if never changes the container's size


@settings(max_examples=100, derandomize=True)
@given(ints, st.sampled_from(CONTAINERS))
def test_remove_if_with_functor_then_erase(xs, kind):
    c = kind(xs)
    end = remove_if(c.begin(), c.end(), Not(lambda x: x > 0))
    kept = [x for x in xs if x > 0]
    if kind is Vector:
        c.erase(end, c.end())
        assert c.to_list() == kept
    else:
        assert [v for v, _ in zip(c, range(len(kept)))] == kept


@settings(max_examples=150, derandomize=True)
@given(st.lists(st.integers(-50, 50), max_size=300), st.sampled_from([Vector, Deque]),
       st.sampled_from([Less(), Greater()]))
def test_sort_matches_sorted(xs, kind, comp):
    c = kind(xs)
    sort(c.begin(), c.end(), comp)
    assert list(c) == sorted(xs, reverse=isinstance(comp, Greater))
    assert is_sorted(c.begin(), c.end(), comp)


@pytest.mark.parametrize("pattern", ["sorted", "reversed", "equal", "organ", "sawtooth"])
def test_sort_is_n_log_n_on_adversarial_inputs(pattern):
    n = 2000
    xs = {"sorted": list(range(n)), "reversed": list(range(n, 0, -1)), "equal": [7] * n,
          "organ": list(range(n // 2)) + list(range(n // 2, 0, -1)),
          "sawtooth": [i % 17 for i in range(n)]}[pattern]
    v, comp = Vector(xs), Counting()
    sort(v.begin(), v.end(), comp)
    assert v.to_list() == sorted(xs)
    assert comp.calls < 4 * n * 11  # ~ c·n·log2(n); quadratic would be ~ n²/2 = 2e6


@settings(max_examples=100, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers()), max_size=80),
       st.sampled_from(CONTAINERS))
def test_stable_sort_keeps_equal_keys_in_order(items, kind):
    c = kind(items)
    stable_sort(c.begin(), c.end(), KeyLess(lambda kv: kv[0]))
    assert list(c) == sorted(items, key=lambda kv: kv[0])


def test_sort_needs_random_access():
    lst = List([3, 1, 2])
    with pytest.raises(TypeError, match="random-access"):
        sort(lst.begin(), lst.end())


@settings(max_examples=150, derandomize=True)
@given(st.lists(st.integers(-10, 10), max_size=50).map(sorted), st.integers(-12, 12),
       st.sampled_from(CONTAINERS))
def test_bounds_match_bisect(xs, q, kind):
    c = kind(xs)
    lb = lower_bound(c.begin(), c.end(), q)
    ub = upper_bound(c.begin(), c.end(), q)
    assert distance(c.begin(), lb) == bisect.bisect_left(xs, q)
    assert distance(c.begin(), ub) == bisect.bisect_right(xs, q)
    assert binary_search(c.begin(), c.end(), q) == (q in xs)


def test_bounds_use_logarithmic_comparisons_even_on_lists():
    xs = list(range(0, 2048, 2))
    for kind in CONTAINERS:
        c, comp = kind(xs), Counting()
        it = lower_bound(c.begin(), c.end(), 1001, comp)
        assert it.value == 1002 and comp.calls <= 11


def test_bounds_on_descending_ranges_and_set_iterators():
    xs = [9, 7, 7, 3, 1]
    v = Vector(xs)
    assert lower_bound(v.begin(), v.end(), 7, Greater()).index == 1
    assert upper_bound(v.begin(), v.end(), 7, Greater()).index == 3
    s = Set([1, 4, 9, 16])
    assert lower_bound(s.begin(), s.end(), 5).value == 9


def test_copy_to_iterator_and_back_inserter():
    src, dst = List([1, 2, 3]), Vector([0] * 5)
    out = copy(src.begin(), src.end(), advance(dst.begin(), 1))
    assert dst.to_list() == [0, 1, 2, 3, 0] and out.index == 4
    grow = Vector()
    copy(src.begin(), src.end(), BackInserter(grow))
    assert grow.to_list() == [1, 2, 3]
