"""The validator: a placement is correct when no two tensors alive at one step share a byte and
every offset is aligned. Every plan the engine builds can be checked with it."""
from __future__ import annotations

from typing import Hashable, Mapping, Optional

from course.errors import EngineError
from course.memory.liveness import Interval
from course.memory.sizes import DEFAULT_ALIGNMENT


class MemoryPlanError(EngineError):
    """A memory plan is wrong (overlap, misalignment, a tensor left out) or cannot be made."""


def arena_bytes(offsets: Mapping[Hashable, int], sizes: Mapping[Hashable, int]) -> int:
    """Bytes an arena needs for this placement: the highest end of any tensor."""
    return max((offsets[t] + sizes[t] for t in offsets), default=0)


def validate(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int],
             offsets: Mapping[Hashable, int], alignment: int = DEFAULT_ALIGNMENT,
             names: Optional[Mapping[Hashable, str]] = None, capacity: Optional[int] = None) -> None:
    """Raise :class:`MemoryPlanError` naming the tensors at fault, else return None.

    Checks every tensor has a non-negative offset that is a multiple of ``alignment`` (and ends
    within ``capacity`` when given), then sweeps the steps keeping the tensors alive so far
    sorted by offset: a tensor that starts must not overlap any of them.
    """
    name = (lambda t: repr(names.get(t, t))) if names else repr
    for t in intervals:
        if t not in offsets:
            raise MemoryPlanError(f"tensor {name(t)} has no offset")
        off = offsets[t]
        if off < 0 or off % alignment:
            raise MemoryPlanError(f"tensor {name(t)} at offset {off} is not a multiple of {alignment}")
        if capacity is not None and off + sizes[t] > capacity:
            raise MemoryPlanError(f"tensor {name(t)} [{off}, {off + sizes[t]}) ends past the "
                                  f"arena's {capacity} bytes")
    live: list = []
    for t in sorted(intervals, key=lambda t: intervals[t][0]):
        first = intervals[t][0]
        live = [u for u in live if intervals[u][1] >= first]
        lo, hi = offsets[t], offsets[t] + sizes[t]
        for u in live:
            if offsets[u] < hi and lo < offsets[u] + sizes[u]:
                raise MemoryPlanError(_overlap_message(t, u, intervals, sizes, offsets, name))
        if hi > lo:
            live.append(t)


def _overlap_message(t, u, intervals, sizes, offsets, name) -> str:
    def part(x):
        (f, l), off = intervals[x], offsets[x]
        return f"{name(x)} (bytes [{off}, {off + sizes[x]}), steps {f}..{l})"

    step = max(intervals[t][0], intervals[u][0])
    return f"tensors {part(u)} and {part(t)} overlap in memory while both live at step {step}"
