"""``PoolAllocator``: fixed-size blocks from one buffer, O(1) allocate/free via a free list.

The pool owns ``n_blocks * block_size`` bytes. Free blocks form a singly linked LIFO list
(``_next_free[b]`` is the block after ``b``), so ``allocate`` pops the head and ``free`` pushes
onto it: both O(1), and the block freed last is the first reused (it is likely still in
cache). A block is named by its byte offset in the pool, like a pointer; ``view(offset)``
gives its bytes. Double frees and offsets that are not block starts raise ``AllocatorError``s.
"""
from __future__ import annotations

from course.errors import EngineError

_END = -1  # end of the free list


class AllocatorError(EngineError):
    """Misuse of an allocator: exhausted pool, double free, or a block it did not hand out."""


class PoolExhaustedError(AllocatorError):
    pass


class DoubleFreeError(AllocatorError):
    pass


class ForeignBlockError(AllocatorError):
    pass


class PoolAllocator:
    def __init__(self, block_size: int, n_blocks: int):
        if block_size <= 0 or n_blocks <= 0:
            raise ValueError(f"block_size ({block_size}) and n_blocks ({n_blocks}) must be > 0")
        self.block_size = block_size
        self.n_blocks = n_blocks
        self.memory = bytearray(block_size * n_blocks)
        self._next_free = list(range(1, n_blocks)) + [_END]  # block b -> next free block
        self._head = 0  # first free block, or _END
        self._used = [False] * n_blocks
        self.in_use = 0
        self.high_water = 0  # most blocks ever in use at once
        self.allocations = 0

    def allocate(self) -> int:
        """Take a free block; returns its byte offset. O(1)."""
        b = self._head
        if b == _END:
            raise PoolExhaustedError(
                f"pool of {self.n_blocks} blocks x {self.block_size} B is exhausted")
        self._head = self._next_free[b]
        self._used[b] = True
        self.in_use += 1
        self.allocations += 1
        self.high_water = max(self.high_water, self.in_use)
        return b * self.block_size

    def _block(self, offset: int) -> int:
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ForeignBlockError(f"block handle must be an int offset, got {type(offset).__name__}")
        b, rem = divmod(offset, self.block_size)
        if rem or not 0 <= b < self.n_blocks:
            raise ForeignBlockError(f"offset {offset} is not the start of a block of this pool")
        return b

    def free(self, offset: int) -> None:
        """Return a block to the pool (it becomes the next one handed out). O(1)."""
        b = self._block(offset)
        if not self._used[b]:
            raise DoubleFreeError(f"block at offset {offset} is not allocated (double free?)")
        self._used[b] = False
        self._next_free[b] = self._head
        self._head = b
        self.in_use -= 1

    def view(self, offset: int) -> memoryview:
        """The bytes of an allocated block."""
        b = self._block(offset)
        if not self._used[b]:
            raise AllocatorError(f"block at offset {offset} is not allocated")
        return memoryview(self.memory)[offset:offset + self.block_size]

    def available(self) -> int:
        return self.n_blocks - self.in_use

    def stats(self) -> dict:
        return {"block_size": self.block_size, "n_blocks": self.n_blocks, "in_use": self.in_use,
                "high_water": self.high_water, "allocations": self.allocations}

    def __repr__(self) -> str:
        return (f"PoolAllocator(block_size={self.block_size}, n_blocks={self.n_blocks}, "
                f"in_use={self.in_use}, high_water={self.high_water})")
