"""Offset placement without and with reuse: naive, greedy by size, greedy by breadth.

A placement gives each tensor an offset into one arena; two tensors may share bytes only when
their intervals of life do not meet. The greedy strategies are those of Pisarchyk & Lee,
"Efficient Memory Management for Deep Neural Net Inference" (2020), section "offset
calculation": take tensors in some order and put each into the smallest gap between the
already-placed tensors it meets in time, or above all of them when no gap is big enough.
They differ only in the order: by size (big tensors first, so small ones fill the gaps they
leave), or by breadth (the busiest steps first, each step's tensors by size).
"""
from __future__ import annotations

from typing import Hashable, Iterable, Mapping, Optional

from course.memory.bound import live_bytes
from course.memory.liveness import Interval

Offsets = dict[Hashable, int]


def place_naive(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int]) -> Offsets:
    """Every tensor its own bytes, one after another in order of first use: no reuse at all."""
    offsets, top = {}, 0
    for t in sorted(intervals, key=lambda t: intervals[t][0]):
        offsets[t] = top
        top += sizes[t]
    return offsets


def smallest_gap(size: int, busy: Iterable[tuple[int, int]]) -> int:
    """Offset for ``size`` bytes among ``busy`` (offset, size) blocks: the start of the smallest
    gap that holds it, else the end of the highest block (0 when nothing is busy)."""
    best, best_gap, top = None, None, 0
    for off, sz in sorted(busy):
        gap = off - top
        if gap >= size and (best_gap is None or gap < best_gap):
            best, best_gap = top, gap
        top = max(top, off + sz)
    return top if best is None else best


def neighbours(intervals: Mapping[Hashable, Interval]) -> dict[Hashable, list]:
    """``{tensor: [tensors whose lives meet its own]}``, found by a sweep in order of birth."""
    out: dict[Hashable, list] = {t: [] for t in intervals}
    live: list = []
    for t in sorted(intervals, key=lambda t: intervals[t][0]):
        live = [u for u in live if intervals[u][1] >= intervals[t][0]]
        for u in live:
            out[t].append(u)
            out[u].append(t)
        live.append(t)
    return out


def place_in_order(order: Iterable[Hashable], intervals: Mapping[Hashable, Interval],
                   sizes: Mapping[Hashable, int], meet: Optional[Mapping] = None) -> Offsets:
    """Place tensors one by one in ``order``, each in the smallest gap among the placed tensors
    whose lives meet its own (the step both greedy strategies share). ``meet`` is
    ``neighbours(intervals)`` when the caller already has it."""
    meet = neighbours(intervals) if meet is None else meet
    offsets: Offsets = {}
    for t in order:
        if t not in offsets:
            busy = [(offsets[u], sizes[u]) for u in meet[t] if u in offsets]
            offsets[t] = smallest_gap(sizes[t], busy)
    return offsets


def by_size_order(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int]) -> list:
    """Largest first; equal sizes keep the order the tensors were given in (stable sort)."""
    return sorted(intervals, key=lambda t: -sizes[t])


def place_greedy_by_size(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int]) -> Offsets:
    """Greedy by size (Pisarchyk & Lee 2020): the largest tensors choose first."""
    return place_in_order(by_size_order(intervals, sizes), intervals, sizes)


def by_breadth_order(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int]) -> list:
    """Steps by breadth (bytes alive there), busiest first; at each step the tensors alive there,
    largest first. A tensor appears at the busiest step it lives through."""
    breadth = live_bytes(intervals, sizes)
    at_step: dict[int, list] = {}
    for t, (first, last) in intervals.items():
        for s in range(first, last + 1):
            at_step.setdefault(s, []).append(t)
    order, seen = [], set()
    for s in sorted(at_step, key=lambda s: -breadth[s]):
        for t in sorted(at_step[s], key=lambda t: -sizes[t]):
            if t not in seen:
                seen.add(t)
                order.append(t)
    return order


def place_greedy_by_breadth(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int]) -> Offsets:
    """Greedy by breadth (Pisarchyk & Lee 2020): the tensors of the busiest steps choose first."""
    return place_in_order(by_breadth_order(intervals, sizes), intervals, sizes)
