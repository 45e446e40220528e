"""The arena: one aligned buffer, handed out as typed views at planned offsets (TFLite's
``SimpleMemoryArena``). Nothing is allocated per tensor: a view costs no copy and no memory."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from course.memory.sizes import DEFAULT_ALIGNMENT
from course.memory.validate import MemoryPlanError
from course.tensor.align import address_of, align_up


class Arena:
    """``nbytes`` bytes starting at a multiple of ``alignment``; ``view(offset, dtype, shape)``."""

    def __init__(self, nbytes: int, alignment: int = DEFAULT_ALIGNMENT):
        raw = np.empty(nbytes + alignment, dtype=np.uint8)  # over-allocate, start at an aligned byte
        start = align_up(address_of(raw), alignment) - address_of(raw)
        self.buffer = raw[start:start + nbytes]
        self.alignment = alignment

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes

    def view(self, offset: int, dtype, shape: Sequence[int]) -> np.ndarray:
        """A C-contiguous ``dtype`` array of ``shape`` over the arena's bytes from ``offset``."""
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset < 0 or offset + n > self.nbytes:
            raise MemoryPlanError(f"a view of {n} bytes at offset {offset} does not fit in the "
                                  f"arena's {self.nbytes} bytes")
        if offset % dtype.itemsize:
            raise MemoryPlanError(f"offset {offset} is not a multiple of {dtype}'s {dtype.itemsize} bytes")
        return self.buffer[offset:offset + n].view(dtype).reshape(tuple(shape))
