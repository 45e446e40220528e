"""Stack, Queue and PriorityQueue against list, deque and heapq."""
import collections
import heapq

import pytest
from hypothesis import given, settings, strategies as st

from course.containers import Greater, KeyLess, Less, PriorityQueue, Queue, Stack

ops = st.lists(st.one_of(st.integers(-100, 100), st.none()), max_size=80)  # None = pop


@settings(max_examples=150, derandomize=True)
@given(ops)
def test_stack_and_queue(seq):
    s, q, rs, rq = Stack(), Queue(), [], collections.deque()
    for x in seq:
        if x is None:
            if rs:
                assert s.top() == rs[-1] and s.pop() == rs.pop()
                assert q.front() == rq[0] and q.pop() == rq.popleft()
        else:
            s.push(x)
            q.push(x)
            rs.append(x)
            rq.append(x)
            assert q.back() == x
        assert len(s) == len(rs) and len(q) == len(rq)


@settings(max_examples=200, derandomize=True)
@given(ops)
def test_priority_queue_matches_heapq(seq):
    mx, mn, ref_max, ref_min = PriorityQueue(), PriorityQueue(Greater()), [], []
    for x in seq:
        if x is None:
            if ref_min:
                lo, hi = heapq.heappop(ref_min), -heapq.heappop(ref_max)
                assert mn.top() == lo and mn.pop() == lo
                assert mx.top() == hi and mx.pop() == hi
        else:
            mx.push(x)
            mn.push(x)
            heapq.heappush(ref_min, x)
            heapq.heappush(ref_max, -x)
        assert len(mx) == len(ref_min) == len(mn) and mx.empty() == (not ref_min)


@settings(max_examples=100, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers()), max_size=60))
def test_priority_queue_drains_in_comparator_order(items):
    pq = PriorityQueue(KeyLess(lambda t: t[0]), items)
    out = [pq.pop() for _ in range(len(items))]
    assert [k for k, _ in out] == sorted((k for k, _ in items), reverse=True)
    assert sorted(out) == sorted(items)
    assert pq.empty()


def test_heap_property_holds_after_each_operation():
    pq = PriorityQueue(Less())
    for x in [5, 3, 8, 1, 9, 2, 7, 7, 0]:
        pq.push(x)
        h = pq._heap.to_list()
        assert all(not (h[(i - 1) // 2] < h[i]) for i in range(1, len(h)))


def test_adapter_errors():
    for empty in (Stack().pop, Stack().top, Queue().pop, Queue().front, PriorityQueue().pop,
                  PriorityQueue().top):
        with pytest.raises(IndexError):
            empty()
