"""Best fit over free gaps: replay the steps in time, the way a pooling allocator would.

At each step the tensors that died at the step before give their blocks back (merged with free
neighbours), then the tensors born at this step take, largest first, the smallest free block
that holds them -- found with the ordered map's ``lower_bound((size, 0))`` over blocks keyed
by ``(size, offset)``, in O(log n) (lesson 01's promise). A tensor that fits no block goes at
the top of the arena. Unlike the greedy strategies it never looks ahead, so it is what a
runtime allocator without a plan would do.
"""
from __future__ import annotations

from typing import Hashable, Mapping

from course.containers import Map, Set
from course.memory.liveness import Interval


class FreeBlocks:
    """Free blocks below ``top`` (the end of the used part of the arena; all above is free),
    kept twice: by (size, offset) for the best-fit search, by offset to merge neighbours."""

    def __init__(self):
        self.by_size = Set()
        self.by_offset = Map()
        self.top = 0
        self.peak = 0

    def _add(self, offset: int, size: int) -> None:
        self.by_size.insert((size, offset))
        self.by_offset[offset] = size

    def _remove(self, offset: int, size: int) -> None:
        self.by_size.erase((size, offset))
        del self.by_offset[offset]

    def take(self, size: int) -> int:
        """Offset of ``size`` bytes: the smallest free block that holds them, else the top."""
        it = self.by_size.lower_bound((size, -1))
        if it == self.by_size.end():
            offset, self.top = self.top, self.top + size
            self.peak = max(self.peak, self.top)
            return offset
        block, offset = it.key
        self._remove(offset, block)
        if block > size:
            self._add(offset + size, block - size)
        return offset

    def give(self, offset: int, size: int) -> None:
        """Return a block, merging it with the free blocks right after and right before it."""
        nxt = self.by_offset.lower_bound(offset)
        if nxt != self.by_offset.end() and nxt.key == offset + size:
            n_off, n_size = nxt.value
            self._remove(n_off, n_size)
            size += n_size
        prev = self.by_offset.lower_bound(offset)
        if prev != self.by_offset.begin():
            p_off, p_size = prev.dec().value
            if p_off + p_size == offset:
                self._remove(p_off, p_size)
                offset, size = p_off, size + p_size
        if offset + size == self.top:
            self.top = offset  # the block meets the free space above: it joins it
        else:
            self._add(offset, size)


def place_best_fit(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int]) -> dict:
    """Offsets by replaying births and deaths in step order with best-fit free blocks."""
    born: dict[int, list] = {}
    died: dict[int, list] = {}
    for t, (first, last) in intervals.items():
        born.setdefault(first, []).append(t)
        died.setdefault(last, []).append(t)
    free, offsets = FreeBlocks(), {}
    for step in sorted(set(born) | set(died)):
        for t in sorted(born.get(step, ()), key=lambda t: -sizes[t]):
            offsets[t] = free.take(sizes[t]) if sizes[t] else 0
        for t in died.get(step, ()):  # after this step's births: a dying input is still read
            if sizes[t]:
                free.give(offsets[t], sizes[t])
    return offsets
