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
             names: Optional[Mapping[Hashable, str]] = None, capacity: Optional[int] = None,
             within: Optional[Mapping[Hashable, tuple[Hashable, int]]] = None) -> None:
    """Raise :class:`MemoryPlanError` naming the tensors at fault, else return None.

    Checks every tensor has a non-negative offset that is a multiple of ``alignment`` (and ends
    within ``capacity`` when given), then sweeps the steps keeping the tensors alive so far
    sorted by offset: a tensor that starts must not overlap any of them.

    ``within = {chunk: (container, byte offset)}`` (a Concat written in place, course.memory.
    alias_into): a chunk lies inside its container at that offset by design and is dead by the
    step that writes the container (its own interval's first step); the container's bytes are
    reserved from the first of its chunks' births. A container may be a chunk in turn; nothing
    else may overlap any of them.
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
    within = within or {}
    intervals = _check_within(intervals, sizes, offsets, within, name)
    live: list = []
    for t in sorted(intervals, key=lambda t: intervals[t][0]):
        first = intervals[t][0]
        live = [u for u in live if intervals[u][1] >= first]
        lo, hi = offsets[t], offsets[t] + sizes[t]
        for u in live:
            if offsets[u] < hi and lo < offsets[u] + sizes[u] and not _nested(t, u, within):
                raise MemoryPlanError(_overlap_message(t, u, intervals, sizes, offsets, name))
        if hi > lo:
            live.append(t)


def _overlap_message(t, u, intervals, sizes, offsets, name) -> str:
    def part(x):
        (f, l), off = intervals[x], offsets[x]
        return f"{name(x)} (bytes [{off}, {off + sizes[x]}), steps {f}..{l})"

    step = max(intervals[t][0], intervals[u][0])
    return f"tensors {part(u)} and {part(t)} overlap in memory while both live at step {step}"


def _nested(t, u, within) -> bool:
    """True when one of ``t``, ``u`` lies inside the other (a chunk, or a chunk of a chunk...):
    they overlap by design."""
    return _inside(t, u, within) or _inside(u, t, within)


def _inside(t, u, within) -> bool:
    while t in within:
        t = within[t][0]
        if t == u:
            return True
    return False


def _check_within(intervals, sizes, offsets, within, name) -> dict:
    """Check each chunk against its container (place, extent, liveness); returns the intervals
    with every container's first step moved back to the first of its chunks' births (inner
    containers first: a container is written before any container it is a chunk of)."""
    spans = dict(intervals)
    order = sorted(within.items(), key=lambda item: intervals.get(item[1][0], (0, 0))[0])
    for t, (c, rel) in order:
        if t not in intervals or c not in intervals or t == c or _inside(c, t, within):
            raise MemoryPlanError(f"chunk {name(t)} of {name(c)}: both must be placed, and no tensor "
                                  "can be inside itself")
        if offsets[t] != offsets[c] + rel or rel < 0 or rel + sizes[t] > sizes[c]:
            raise MemoryPlanError(f"chunk {name(t)} at offset {offsets[t]} ({sizes[t]} bytes) is not at "
                                  f"{rel} bytes into {name(c)} (offset {offsets[c]}, {sizes[c]} bytes)")
        if intervals[t][1] > intervals[c][0]:
            raise MemoryPlanError(f"chunk {name(t)} is read at step {intervals[t][1]}, after its container "
                                  f"{name(c)} is written at step {intervals[c][0]}")
        spans[c] = (min(spans[c][0], spans[t][0]), spans[c][1])
    return spans
