"""The lower bound: at the busiest step, every live tensor needs its own bytes, so no placement
can make the arena smaller than the largest total of simultaneously live bytes.

The bound is not always reachable (placing intervals is the NP-hard dynamic storage allocation
problem: tensors must keep one offset for their whole life, and fragmentation can force a gap),
but it tells how far from optimal a planner can at most be.
"""
from __future__ import annotations

from typing import Hashable, Mapping

from course.memory.liveness import Interval


def live_bytes(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int]) -> list[int]:
    """Bytes alive at each step ``0 .. last step``: a difference array summed once."""
    if not intervals:
        return []
    n = max(last for _, last in intervals.values()) + 1
    delta = [0] * (n + 1)
    for t, (first, last) in intervals.items():
        delta[first] += sizes[t]
        delta[last + 1] -= sizes[t]
    out, running = [], 0
    for d in delta[:n]:
        running += d
        out.append(running)
    return out


def lower_bound(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int]) -> int:
    """The largest number of bytes alive at one step (0 for no tensors)."""
    return max(live_bytes(intervals, sizes), default=0)
