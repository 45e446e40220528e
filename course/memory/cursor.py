"""MindSpore's double cursor: one buffer, weights packed from the start, activations from the end.

Weights live for the whole run and activations come and go, so they grow towards each other
from the two ends of one buffer: the free space stays in one piece in the middle, and a buffer
sized for one model serves another as long as the two cursors do not cross.
"""
from __future__ import annotations

from typing import Hashable, Mapping, Optional

from course.memory.sizes import DEFAULT_ALIGNMENT
from course.memory.validate import MemoryPlanError
from course.tensor.align import align_down, align_up


class DoubleCursor:
    """``capacity`` bytes; ``low(n)`` takes bytes from the bottom up, ``high(n)`` from the top
    down; either raises :class:`MemoryPlanError` when the cursors would cross."""

    def __init__(self, capacity: int, alignment: int = DEFAULT_ALIGNMENT):
        self.capacity, self.alignment = capacity, alignment
        self.bottom = 0  # next free byte from the start
        self.top = align_down(capacity, alignment)  # end of the free middle

    @property
    def free_bytes(self) -> int:
        return self.top - self.bottom

    def low(self, nbytes: int) -> int:
        offset, end = self.bottom, self.bottom + align_up(nbytes, self.alignment)
        self._check(end, self.top, nbytes, "from the start")
        self.bottom = end
        return offset

    def high(self, nbytes: int) -> int:
        start = self.top - align_up(nbytes, self.alignment)
        self._check(self.bottom, start, nbytes, "from the end")
        self.top = start
        return start

    def _check(self, bottom: int, top: int, nbytes: int, where: str) -> None:
        if bottom > top:
            raise MemoryPlanError(f"{nbytes} bytes {where} do not fit: {self.free_bytes} of the "
                                  f"buffer's {self.capacity} bytes are free")


def double_cursor(weight_sizes: Mapping[Hashable, int], activation_offsets: Mapping[Hashable, int],
                  activation_bytes: int, capacity: Optional[int] = None,
                  alignment: int = DEFAULT_ALIGNMENT) -> tuple[dict, dict, int]:
    """Lay weights out one after another from offset 0 and the activation arena (already
    planned: offsets within ``activation_bytes``) as one block at the end of the buffer.
    Returns ``(weight offsets, activation offsets in the buffer, capacity)``; ``capacity``
    defaults to exactly what both need."""
    need = sum(align_up(n, alignment) for n in weight_sizes.values()) + align_up(activation_bytes, alignment)
    cursor = DoubleCursor(need if capacity is None else capacity, alignment)
    base = cursor.high(activation_bytes)
    weights = {w: cursor.low(n) for w, n in weight_sizes.items()}
    return weights, {t: base + off for t, off in activation_offsets.items()}, cursor.capacity
