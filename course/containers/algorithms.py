"""Algorithms on iterator ranges ``[first, last)``, with STL semantics and complexities.

Algorithms never see the container, only iterators, so one ``find`` serves Vector, Deque,
List and Map alike; what they may do depends on the iterator category (``sort`` needs
random access; ``lower_bound`` works on any, with O(log n) comparisons but O(n) steps on a
bidirectional range, exactly like ``std::lower_bound``).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from course.containers.functional import Less
from course.containers.iterators import Iterator, distance, is_random_access, next_

Pred = Callable[[Any], bool]
Comp = Callable[[Any, Any], bool]


def find(first: Iterator, last: Iterator, value: Any) -> Iterator:
    """First position whose element ``== value``; ``last`` if none. O(n)."""
    return find_if(first, last, lambda x: x == value)


def find_if(first: Iterator, last: Iterator, pred: Pred) -> Iterator:
    """First position whose element satisfies ``pred``; ``last`` if none. O(n)."""
    it = first.copy()
    while it != last and not pred(it.value):
        it.inc()
    return it


def count_if(first: Iterator, last: Iterator, pred: Pred) -> int:
    it, n = first.copy(), 0
    while it != last:
        n += bool(pred(it.value))
        it.inc()
    return n


def copy(first: Iterator, last: Iterator, d_first: Any) -> Any:
    """Write ``[first, last)`` through ``d_first`` (an iterator or BackInserter); returns the
    output position after the last write."""
    it, out = first.copy(), d_first.copy()
    while it != last:
        out.value = it.value
        out.inc()
        it.inc()
    return out


class BackInserter:
    """Output iterator that ``push_back``s what is written to it (``std::back_inserter``)."""

    def __init__(self, container: Any):
        self.container = container

    @property
    def value(self) -> Any:
        raise TypeError("a BackInserter can only be written")

    @value.setter
    def value(self, v: Any) -> None:
        self.container.push_back(v)

    def inc(self) -> "BackInserter":
        return self

    def copy(self) -> "BackInserter":
        return BackInserter(self.container)


def remove_if(first: Iterator, last: Iterator, pred: Pred) -> Iterator:
    """Shift the elements that do *not* satisfy ``pred`` to the front, keeping their order;
    return the new logical end. Elements from there to ``last`` are left unspecified
    (erase them with ``container.erase(new_end, end)``). One pass, O(n), no allocation."""
    out = find_if(first, last, pred)
    if out == last:
        return out
    it = out.next()
    while it != last:
        if not pred(it.value):
            out.value = it.value
            out.inc()
        it.inc()
    return out


def remove(first: Iterator, last: Iterator, value: Any) -> Iterator:
    return remove_if(first, last, lambda x: x == value)


def lower_bound(first: Iterator, last: Iterator, value: Any, comp: Comp = Less()) -> Iterator:
    """First position in a sorted range whose element is not before ``value``."""
    n, it = distance(first, last), first.copy()
    while n > 0:
        half = n // 2
        mid = next_(it, half)
        if comp(mid.value, value):
            it, n = mid.inc(), n - half - 1
        else:
            n = half
    return it


def upper_bound(first: Iterator, last: Iterator, value: Any, comp: Comp = Less()) -> Iterator:
    """First position in a sorted range whose element comes after ``value``."""
    n, it = distance(first, last), first.copy()
    while n > 0:
        half = n // 2
        mid = next_(it, half)
        if not comp(value, mid.value):
            it, n = mid.inc(), n - half - 1
        else:
            n = half
    return it


def binary_search(first: Iterator, last: Iterator, value: Any, comp: Comp = Less()) -> bool:
    """True if the sorted range holds an element equivalent to ``value``."""
    it = lower_bound(first, last, value, comp)
    return it != last and not comp(value, it.value)


# --- sorting ----------------------------------------------------------------------------
_SMALL = 16  # ranges this short are finished by insertion sort


def sort(first: Iterator, last: Iterator, comp: Comp = Less()) -> None:
    """Introsort (not stable): quicksort with a median-of-three pivot, switching to heapsort
    when recursion passes 2·log2(n) levels (so O(n log n) worst case) and to insertion sort
    on short ranges. Needs random-access iterators."""
    if not is_random_access(first):
        raise TypeError("sort needs random-access iterators (List has its own ordering needs)")
    n = last - first  # type: ignore[operator]
    if n > 1:
        _introsort(first, 0, n, comp, 2 * int(math.log2(n)))


def _introsort(a: Any, lo: int, hi: int, comp: Comp, depth: int) -> None:
    while hi - lo > _SMALL:
        if depth == 0:
            _heapsort(a, lo, hi, comp)
            return
        depth -= 1
        p = _partition(a, lo, hi, comp)
        if p - lo < hi - p:  # recurse on the smaller side: O(log n) stack
            _introsort(a, lo, p, comp, depth)
            lo = p
        else:
            _introsort(a, p, hi, comp, depth)
            hi = p
    _insertion_sort(a, lo, hi, comp)


def _partition(a: Any, lo: int, hi: int, comp: Comp) -> int:
    """Hoare partition around the median of a[lo], a[mid], a[hi-1] (moved to a[lo]).
    Returns p with lo < p < hi, every a[lo:p] not after every a[p:hi]."""
    mid = lo + (hi - lo) // 2
    x, y, z = lo, mid, hi - 1
    if comp(a[y], a[x]):
        x, y = y, x
    if comp(a[z], a[y]):
        y = z if not comp(a[z], a[x]) else x
    a[lo], a[y] = a[y], a[lo]
    pivot = a[lo]
    i, j = lo - 1, hi
    while True:
        i += 1
        while comp(a[i], pivot):
            i += 1
        j -= 1
        while comp(pivot, a[j]):
            j -= 1
        if i >= j:
            return j + 1
        a[i], a[j] = a[j], a[i]


def _insertion_sort(a: Any, lo: int, hi: int, comp: Comp) -> None:
    for i in range(lo + 1, hi):
        v, j = a[i], i
        while j > lo and comp(v, a[j - 1]):
            a[j] = a[j - 1]
            j -= 1
        a[j] = v


def _heapsort(a: Any, lo: int, hi: int, comp: Comp) -> None:
    n = hi - lo

    def sift(i: int, size: int) -> None:
        while True:
            c = 2 * i + 1
            if c >= size:
                return
            if c + 1 < size and comp(a[lo + c], a[lo + c + 1]):
                c += 1
            if not comp(a[lo + i], a[lo + c]):
                return
            a[lo + i], a[lo + c] = a[lo + c], a[lo + i]
            i = c

    for i in range(n // 2 - 1, -1, -1):
        sift(i, n)
    for end in range(n - 1, 0, -1):
        a[lo], a[lo + end] = a[lo + end], a[lo]
        sift(0, end)


def stable_sort(first: Iterator, last: Iterator, comp: Comp = Less()) -> None:
    """Merge sort: O(n log n), equivalent elements keep their order. Works on any
    bidirectional range (values are merged in an O(n) buffer, as the STL does)."""
    vals = _merge_sort([v for v in _values(first, last)], comp)
    it = first.copy()
    for v in vals:
        it.value = v
        it.inc()


def _values(first: Iterator, last: Iterator):
    it = first.copy()
    while it != last:
        yield it.value
        it.inc()


def _merge_sort(xs: list, comp: Comp) -> list:
    if len(xs) <= 1:
        return xs
    mid = len(xs) // 2
    left, right = _merge_sort(xs[:mid], comp), _merge_sort(xs[mid:], comp)
    out, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        if comp(right[j], left[i]):  # take from the right only if strictly before: stable
            out.append(right[j])
            j += 1
        else:
            out.append(left[i])
            i += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out


def is_sorted(first: Iterator, last: Iterator, comp: Comp = Less()) -> bool:
    it = first.copy()
    if it == last:
        return True
    prev = it.value
    it.inc()
    while it != last:
        if comp(it.value, prev):
            return False
        prev = it.value
        it.inc()
    return True
