"""Map / Set / MultiMap against dict, sorted() and bisect; AVL height bound."""
import bisect
import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from course.containers import Greater, Map, MultiMap, Set, TreeIterator, iter_range


def _check_height(m):
    n = len(m)
    assert m.height() <= 2 * math.log2(n + 1) + 1e-9, f"height {m.height()} for n={n}"


@settings(max_examples=150, derandomize=True)
@given(st.lists(st.tuples(st.booleans(), st.integers(-30, 30)), max_size=80))
def test_map_matches_dict(ops):
    m, ref = Map(), {}
    for insert, k in ops:
        if insert:
            m[k] = k * 10
            ref[k] = k * 10
        else:
            assert m.erase(k) == (1 if k in ref else 0)
            ref.pop(k, None)
        m.validate()
        _check_height(m)
    assert m.items() == sorted(ref.items())
    keys = sorted(ref)
    for q in range(-32, 33):
        lb, ub = m.lower_bound(q), m.upper_bound(q)
        i, j = bisect.bisect_left(keys, q), bisect.bisect_right(keys, q)
        assert (lb == m.end()) == (i == len(keys)) and (ub == m.end()) == (j == len(keys))
        if i < len(keys):
            assert lb.key == keys[i] and lb.value == (keys[i], keys[i] * 10)
        if j < len(keys):
            assert ub.key == keys[j]
        assert (q in m) == (q in ref) and m.get(q) == ref.get(q)


@pytest.mark.parametrize("n", [1, 2, 3, 100, 1023, 3000])
def test_sorted_insertions_stay_logarithmic(n):
    m = Set(range(n))
    m.validate()
    _check_height(m)
    assert m.height() <= 1.4405 * math.log2(n + 2)  # the AVL bound itself
    for k in range(0, n, 2):
        m.erase(k)
    m.validate()
    _check_height(m)
    assert list(m) == list(range(1, n, 2))


def test_erase_by_iterator_keeps_other_iterators_valid():
    rnd = random.Random(3)
    keys = rnd.sample(range(1000), 300)
    m = Map((k, str(k)) for k in keys)
    its = {k: m.find(k) for k in keys}
    rnd.shuffle(keys)
    for k in keys[:200]:
        nxt = m.erase(its.pop(k))
        rest = sorted(its)
        after = [r for r in rest if r > k]
        assert (nxt == m.end()) if not after else nxt.key == after[0]
        m.validate()
    for k, it in its.items():
        assert it.key == k and it.mapped == str(k)


def test_iteration_both_ways_and_comparator():
    s = Set([5, 1, 9, 3], compare=Greater())
    assert list(s) == [9, 5, 3, 1]
    it = s.end()
    it.dec()
    assert it.value == 1
    assert list(iter_range(s.lower_bound(6), s.end())) == [5, 3, 1]  # "not before 6" in >-order
    with pytest.raises(IndexError):
        s.begin().dec()
    with pytest.raises(IndexError):
        s.end().value
    assert isinstance(s.begin(), TreeIterator)
    assert s.insert(5) [1] is False and len(s) == 4


@settings(max_examples=100, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers()), max_size=50), st.integers(0, 6))
def test_multimap_keeps_equal_keys_in_insertion_order(items, q):
    mm = MultiMap(items)
    mm.validate()
    assert mm.items() == sorted(items, key=lambda kv: kv[0])  # sorted() is stable
    assert mm.count(q) == sum(k == q for k, _ in items)
    assert mm.get_all(q) == [v for k, v in items if k == q]
    assert mm.erase(q) == sum(k == q for k, _ in items) and q not in mm
    with pytest.raises(TypeError):
        mm[q] = 1


def test_map_errors():
    m = Map({1: "a"})
    with pytest.raises(KeyError):
        m[2]
    with pytest.raises(KeyError):
        del m[2]
    with pytest.raises(ValueError):
        m.erase(Map({1: "a"}).begin())
    it, ok = m.insert(1, "b")
    assert not ok and it.mapped == "a"
    m[1] = "c"
    assert m[1] == "c"
