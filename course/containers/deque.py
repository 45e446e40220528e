"""``Deque`` as a ring buffer: O(1) push/pop at both ends (amortized) and O(1) random access.

Elements live in ``_buf`` (``capacity()`` slots); logical element ``i`` is at physical slot
``(head + i) % capacity``. ``push_front`` moves ``head`` back one slot, wrapping from 0 to
``capacity - 1``; when the buffer is full it is doubled and unwrapped (head back to 0).
(``std::deque`` uses a map of fixed-size blocks instead; the contract is the same.)
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator as PyIterator

from course.containers.iterators import IndexIterator


class DequeIterator(IndexIterator):
    """Random-access iterator into a Deque (by logical index; invalidated by push/pop)."""


class Deque:
    GROWTH = 2

    def __init__(self, iterable: Iterable[Any] = ()):
        self._buf: list[Any] = []
        self._head = 0  # physical slot of logical element 0
        self._size = 0
        self.copies = 0
        for x in iterable:
            self.push_back(x)

    def __len__(self) -> int:
        return self._size

    def empty(self) -> bool:
        return self._size == 0

    def capacity(self) -> int:
        return len(self._buf)

    def _slot(self, i: int) -> int:
        """Physical slot of logical index ``i``."""
        return (self._head + i) % len(self._buf)

    def _grow(self) -> None:
        """Double the buffer, copying elements in logical order (head becomes 0)."""
        new = [None] * max(1, self.GROWTH * len(self._buf))
        for i in range(self._size):
            new[i] = self._buf[self._slot(i)]
        self.copies += self._size
        self._buf, self._head = new, 0

    def push_back(self, value: Any) -> None:
        if self._size == len(self._buf):
            self._grow()
        self._buf[self._slot(self._size)] = value
        self._size += 1

    def push_front(self, value: Any) -> None:
        if self._size == len(self._buf):
            self._grow()
        self._head = (self._head - 1) % len(self._buf)
        self._buf[self._head] = value
        self._size += 1

    def pop_back(self) -> Any:
        if not self._size:
            raise IndexError("pop_back() on an empty Deque")
        s = self._slot(self._size - 1)
        v, self._buf[s] = self._buf[s], None
        self._size -= 1
        return v

    def pop_front(self) -> Any:
        if not self._size:
            raise IndexError("pop_front() on an empty Deque")
        v, self._buf[self._head] = self._buf[self._head], None
        self._head = (self._head + 1) % len(self._buf)
        self._size -= 1
        return v

    def _check(self, i: int) -> None:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"Deque index must be an int, not {type(i).__name__}")
        if not 0 <= i < self._size:
            raise IndexError(f"Deque index {i} out of range [0, {self._size})")

    def _at(self, i: int) -> Any:
        self._check(i)
        return self._buf[self._slot(i)]

    def _put(self, i: int, v: Any) -> None:
        self._check(i)
        self._buf[self._slot(i)] = v

    __getitem__ = _at
    __setitem__ = _put

    def front(self) -> Any:
        return self._at(0) if self._size else self._empty("front")

    def back(self) -> Any:
        return self._at(self._size - 1) if self._size else self._empty("back")

    @staticmethod
    def _empty(what: str):
        raise IndexError(f"{what}() of an empty Deque")

    def clear(self) -> None:
        self._buf, self._head, self._size = [None] * len(self._buf), 0, 0

    def begin(self) -> DequeIterator:
        return DequeIterator(self, 0)

    def end(self) -> DequeIterator:
        return DequeIterator(self, self._size)

    def __iter__(self) -> PyIterator[Any]:
        for i in range(self._size):
            yield self._buf[self._slot(i)]

    def to_list(self) -> list[Any]:
        return list(self)

    def __repr__(self) -> str:
        return f"Deque({self.to_list()!r}, capacity={self.capacity()}, head={self._head})"
