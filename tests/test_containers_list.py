"""List against Python's list, and O(1) insert/erase/splice shown by counting link writes."""
import pytest
from hypothesis import given, settings, strategies as st

from course.containers import List, ListIterator, advance, distance, link_writes


def _at(lst, i):
    return advance(lst.begin(), i)


ops = st.lists(st.one_of(
    st.tuples(st.sampled_from(["push_back", "push_front", "insert"]), st.integers(0, 99)),
    st.tuples(st.sampled_from(["pop_back", "pop_front", "erase"]), st.integers(0, 99)),
), max_size=60)


@settings(max_examples=150, derandomize=True)
@given(ops)
def test_list_matches_python_list(ops):
    lst, ref = List(), []
    for op, arg in ops:
        if op == "push_back":
            lst.push_back(arg)
            ref.append(arg)
        elif op == "push_front":
            lst.push_front(arg)
            ref.insert(0, arg)
        elif op == "insert":
            i = arg % (len(ref) + 1)
            assert lst.insert(_at(lst, i), arg).value == arg
            ref.insert(i, arg)
        elif ref and op == "erase":
            i = arg % len(ref)
            nxt = lst.erase(_at(lst, i))
            del ref[i]
            assert nxt == _at(lst, i)
        elif ref and op == "pop_back":
            assert lst.pop_back() == ref.pop()
        elif ref and op == "pop_front":
            assert lst.pop_front() == ref.pop(0)
        assert list(lst) == ref and len(lst) == len(ref)
        assert list(reversed(lst)) == ref[::-1]


@settings(max_examples=150, derandomize=True)
@given(st.lists(st.integers(), max_size=12), st.lists(st.integers(), max_size=12),
       st.integers(0, 20), st.integers(0, 20), st.integers(0, 20))
def test_splice_ranges_match_slicing(a, b, p, i, j):
    x, y = List(a), List(b)
    p %= len(a) + 1
    i, j = sorted((i % (len(b) + 1), j % (len(b) + 1)))
    keep = _at(x, p - 1) if p else None
    x.splice(_at(x, p), y, _at(y, i), _at(y, j))
    assert list(x) == a[:p] + b[i:j] + a[p:]
    assert list(y) == b[:i] + b[j:]
    assert len(x) == len(list(x)) and len(y) == len(list(y))
    if keep is not None:
        assert keep.value == a[p - 1]  # iterators stay valid


@pytest.mark.parametrize("k", [1, 10, 1000])
def test_splice_and_insert_are_constant_time(k):
    x, y = List([1, 2, 3]), List(range(k))
    moved = y.begin()
    w = link_writes()
    x.splice(x.begin().next(), y)
    assert link_writes() - w == 6  # three links rewritten, whatever k is
    assert len(x) == 3 + k and len(y) == 0 and list(y) == []
    assert moved.value == 0 and moved.prev().value == 1  # the node moved, iterator still valid
    w = link_writes()
    x.insert(x.end(), 9)
    x.erase(x.begin())
    assert link_writes() - w == 4 + 2
    assert distance(x.begin(), x.end()) == len(x)


def test_splice_single_and_within_same_list():
    x = List([1, 2, 3, 4])
    x.splice(x.begin(), x, _at(x, 3))  # move 4 to the front
    assert list(x) == [4, 1, 2, 3] and len(x) == 4
    x.splice(x.begin(), x, x.begin())  # no-op
    assert list(x) == [4, 1, 2, 3]
    x.splice(x.end(), x, x.begin(), _at(x, 2))
    assert list(x) == [2, 3, 4, 1]
    with pytest.raises(ValueError, match="inside the range"):
        x.splice(_at(x, 1), x, x.begin(), _at(x, 3))


def test_list_errors():
    lst = List()
    for f in (lst.pop_back, lst.pop_front, lst.front, lst.back):
        with pytest.raises(IndexError):
            f()
    with pytest.raises(IndexError):
        lst.erase(lst.end())
    with pytest.raises(IndexError):
        lst.end().value
    with pytest.raises(TypeError):
        lst.insert(0, 1)
    assert isinstance(lst.begin(), ListIterator) and lst.begin() == lst.end()
