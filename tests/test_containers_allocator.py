"""PoolAllocator: O(1) LIFO reuse, stats, and errors; iterator category dispatch."""
import pytest
from hypothesis import given, settings, strategies as st

import course
from course.containers import (
    AllocatorError, BidirectionalIteratorTag, Deque, DoubleFreeError, ForeignBlockError, List,
    Map, PoolAllocator, PoolExhaustedError, RandomAccessIteratorTag, Vector, advance, distance,
    next_, prev_,
)


@settings(max_examples=150, derandomize=True)
@given(st.lists(st.one_of(st.none(), st.integers(0, 50)), max_size=80))
def test_pool_against_a_model(ops):
    pool = PoolAllocator(16, 8)
    live, free_stack, hw = [], [], 0
    fresh = list(range(8))
    for op in ops:
        if op is None:
            if len(live) == 8:
                with pytest.raises(PoolExhaustedError):
                    pool.allocate()
                continue
            expect = free_stack.pop() if free_stack else fresh.pop(0)
            got = pool.allocate()
            assert got == expect * 16  # LIFO: the last freed block comes back first
            live.append(expect)
            hw = max(hw, len(live))
        elif live:
            b = live.pop(op % len(live))
            pool.free(b * 16)
            free_stack.append(b)
        assert pool.in_use == len(live) and pool.high_water == hw
        assert pool.available() == 8 - len(live)


def test_pool_errors_and_views():
    pool = PoolAllocator(8, 4)
    a = pool.allocate()
    pool.view(a)[:] = b"abcdefgh"
    assert bytes(pool.memory[a:a + 8]) == b"abcdefgh"
    pool.free(a)
    with pytest.raises(DoubleFreeError, match="double free"):
        pool.free(a)
    for bad in (3, 32, -8, "0"):
        with pytest.raises(ForeignBlockError):
            pool.free(bad)
    with pytest.raises(AllocatorError):
        pool.view(a)
    assert issubclass(AllocatorError, course.EngineError)
    with pytest.raises(ValueError):
        PoolAllocator(0, 4)
    assert pool.stats()["allocations"] == 1


def test_iterator_categories_and_dispatch():
    assert Vector().begin().iterator_category is RandomAccessIteratorTag
    assert Deque().begin().iterator_category is RandomAccessIteratorTag
    assert List().begin().iterator_category is BidirectionalIteratorTag
    assert Map().begin().iterator_category is BidirectionalIteratorTag
    assert issubclass(RandomAccessIteratorTag, BidirectionalIteratorTag)
    lst = List(range(10))
    it = advance(lst.begin(), 7)
    assert it.value == 7 and advance(it, -3).value == 4
    assert distance(lst.begin(), lst.end()) == 10
    assert next_(lst.begin(), 2).value == 2 and prev_(lst.end()).value == 9
    v = Vector(range(10))
    assert distance(v.begin(), v.end()) == 10 and advance(v.begin(), 9).value == 9
    with pytest.raises(TypeError):
        iter(v.begin())
