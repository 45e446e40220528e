"""Vector and Deque against Python's list / collections.deque, plus growth accounting."""
import collections
import math

import pytest
from hypothesis import given, settings, strategies as st

from course.containers import Deque, Vector, VectorIterator

ops_vec = st.lists(st.one_of(
    st.tuples(st.just("push"), st.integers()),
    st.tuples(st.just("pop"), st.none()),
    st.tuples(st.just("insert"), st.integers(0, 50)),
    st.tuples(st.just("erase"), st.integers(0, 50)),
    st.tuples(st.just("reserve"), st.integers(0, 40)),
    st.tuples(st.just("shrink"), st.none()),
), max_size=60)


@settings(max_examples=150, derandomize=True)
@given(ops_vec)
def test_vector_matches_list(ops):
    v, ref = Vector(), []
    for op, arg in ops:
        if op == "push":
            v.push_back(arg)
            ref.append(arg)
        elif op == "pop" and ref:
            assert v.pop_back() == ref.pop()
        elif op == "insert":
            i = arg % (len(ref) + 1)
            it = v.insert(i, -arg)
            ref.insert(i, -arg)
            assert it.value == -arg and it.index == i
        elif op == "erase" and ref:
            i = arg % len(ref)
            it = v.erase(v.begin() + i)
            del ref[i]
            assert it.index == i
        elif op == "reserve":
            v.reserve(arg)
            assert v.capacity() >= arg
        elif op == "shrink":
            v.shrink_to_fit()
            assert v.capacity() == len(ref)
        assert v.to_list() == ref
        assert len(v) <= v.capacity()


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 65, 1000, 4097])
def test_push_back_is_amortized_constant(n):
    v = Vector()
    caps = set()
    for i in range(n):
        v.push_back(i)
        caps.add(v.capacity())
    assert v.copies <= 3 * n
    assert v.capacity() == 1 << math.ceil(math.log2(n)) if n > 1 else v.capacity() == 1
    assert caps == {1 << k for k in range(v.capacity().bit_length())}  # 1, 2, 4, ... doubling
    assert v.reallocations == v.capacity().bit_length()


def test_growth_by_one_would_be_quadratic():
    class AddOne(Vector):
        def push_back(self, value):
            if self._size == self.capacity():
                self._reallocate(self.capacity() + 1)
            self._buf[self._size] = value
            self.copies += 1
            self._size += 1

    v = AddOne()
    for i in range(200):
        v.push_back(i)
    assert v.copies == 200 * 201 // 2 > 3 * 200


def test_vector_bounds_and_errors():
    v = Vector([1, 2, 3])
    with pytest.raises(IndexError, match="3 out of range"):
        v[3]
    with pytest.raises(IndexError):
        v[-1]
    with pytest.raises(TypeError):
        v["0"]
    with pytest.raises(IndexError):
        Vector().pop_back()
    with pytest.raises(IndexError):
        Vector().front()
    with pytest.raises(ValueError):
        v.insert(Vector([1]).begin(), 0)
    assert v.erase(0, 2).index == 0 and v.to_list() == [3]
    assert v.erase(v.begin(), v.end()) == v.end() and v.empty()


def test_vector_iterator_arithmetic():
    v = Vector(range(10))
    b, e = v.begin(), v.end()
    assert isinstance(b, VectorIterator)
    assert e - b == 10 and b - e == -10
    assert (b + 3).value == 3 and (3 + b).value == 3 and (e - 1).value == 9
    assert b[7] == 7 and b < e and e > b and b <= b and b >= b
    it = b.copy()
    it += 4
    it -= 1
    assert it.value == 3 and b.value == 0
    (b + 2).value = 42
    assert v[2] == 42
    with pytest.raises(IndexError):
        e.value
    with pytest.raises(TypeError):
        b < Vector([1]).begin()


ops_deque = st.lists(st.one_of(
    st.tuples(st.sampled_from(["push_back", "push_front"]), st.integers()),
    st.tuples(st.sampled_from(["pop_back", "pop_front", "clear"]), st.none()),
    st.tuples(st.just("set"), st.integers(0, 100)),
), max_size=80)


@settings(max_examples=150, derandomize=True)
@given(ops_deque)
def test_deque_matches_collections_deque(ops):
    d, ref = Deque(), collections.deque()
    for op, arg in ops:
        if op in ("push_back", "push_front"):
            getattr(d, op)(arg)
            (ref.append if op == "push_back" else ref.appendleft)(arg)
        elif op == "clear":
            d.clear()
            ref.clear()
        elif op == "set" and ref:
            d[arg % len(ref)] = arg
            ref[arg % len(ref)] = arg
        elif ref and op.startswith("pop"):
            assert getattr(d, op)() == (ref.pop() if op == "pop_back" else ref.popleft())
        assert list(d) == list(ref)
        assert [d[i] for i in range(len(ref))] == list(ref)
        assert 0 <= d._head < max(1, d.capacity())
        if ref:
            assert d.front() == ref[0] and d.back() == ref[-1]
            assert (d.end() - d.begin()) == len(ref) and d.begin()[len(ref) - 1] == ref[-1]


def test_deque_wraps_and_grows_amortized():
    d = Deque()
    for i in range(8):
        d.push_back(i)
    for _ in range(5):
        d.pop_front()
    for i in range(5):
        d.push_back(100 + i)  # wraps around the end of the 8-slot buffer
    assert d.capacity() == 8 and d._head == 5
    assert list(d) == [5, 6, 7, 100, 101, 102, 103, 104]
    n = 5000
    e = Deque()
    for i in range(n):
        (e.push_front if i % 2 else e.push_back)(i)
    assert e.copies < 2 * n
    with pytest.raises(IndexError):
        Deque().pop_front()
    with pytest.raises(IndexError):
        Deque().back()
    with pytest.raises(IndexError):
        e[n]
