"""``Vector``: a growable array with explicit capacity, as ``std::vector``.

Storage is a fixed-size Python list of ``capacity()`` slots (standing in for raw memory).
When a ``push_back`` finds it full, a new buffer of ``GROWTH`` (= 2) times the capacity is
allocated and every element is copied across. Doubling makes ``push_back`` amortized O(1):
over n pushes the reallocations copy 1 + 2 + 4 + ... < 2n elements, plus n writes of the
pushed values, so ``copies`` stays below 3n. Growing by a constant (+1) instead costs O(n²).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator as PyIterator

from course.containers.iterators import IndexIterator


class VectorIterator(IndexIterator):
    """Random-access iterator into a Vector (invalidated by reallocation, as in the STL)."""


class Vector:
    """A dynamic array. ``copies`` counts every element write into storage."""

    GROWTH = 2  # capacity multiplier on reallocation; 2 gives copies <= 3n over n push_backs

    def __init__(self, iterable: Iterable[Any] = ()):
        self._buf: list[Any] = []  # len(self._buf) is the capacity
        self._size = 0
        self.copies = 0
        self.reallocations = 0
        for x in iterable:
            self.push_back(x)

    # --- size and capacity ------------------------------------------------------------
    def __len__(self) -> int:
        return self._size

    def size(self) -> int:
        return self._size

    def empty(self) -> bool:
        return self._size == 0

    def capacity(self) -> int:
        return len(self._buf)

    def _reallocate(self, new_capacity: int) -> None:
        """Move the elements to a fresh buffer of ``new_capacity`` slots (counts the copies)."""
        if new_capacity < self._size:
            raise ValueError(f"new capacity {new_capacity} < size {self._size}")
        new = [None] * new_capacity
        for i in range(self._size):
            new[i] = self._buf[i]
        self.copies += self._size
        self.reallocations += 1
        self._buf = new

    def _grown_capacity(self) -> int:
        """Capacity after a reallocation forced by a full buffer: ``max(1, GROWTH * capacity)``
        (at least one more slot, so a subclass may try ``GROWTH = 1`` or ``1.5``)."""
        cap = self.capacity()
        return max(cap + 1, int(self.GROWTH * cap))

    def reserve(self, n: int) -> None:
        """Make ``capacity() >= n``; never shrinks."""
        if n > self.capacity():
            self._reallocate(n)

    def shrink_to_fit(self) -> None:
        """Release unused capacity (capacity becomes size)."""
        if self.capacity() > self._size:
            self._reallocate(self._size)

    # --- element access ---------------------------------------------------------------
    def _check(self, i: int) -> None:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"Vector index must be an int, not {type(i).__name__}")
        if not 0 <= i < self._size:
            raise IndexError(f"Vector index {i} out of range [0, {self._size})")

    def _at(self, i: int) -> Any:
        self._check(i)
        return self._buf[i]

    def _put(self, i: int, v: Any) -> None:
        self._check(i)
        self._buf[i] = v

    def __getitem__(self, i: int) -> Any:
        """Bounds-checked like ``at()``: negative indices are errors, not "from the end"."""
        return self._at(i)

    def __setitem__(self, i: int, v: Any) -> None:
        self._put(i, v)

    at = __getitem__

    def front(self) -> Any:
        if not self._size:
            raise IndexError("front() of an empty Vector")
        return self._buf[0]

    def back(self) -> Any:
        if not self._size:
            raise IndexError("back() of an empty Vector")
        return self._buf[self._size - 1]

    # --- modifiers --------------------------------------------------------------------
    def push_back(self, value: Any) -> None:
        """Append; doubles the capacity when full (amortized O(1))."""
        if self._size == self.capacity():
            self._reallocate(self._grown_capacity())
        self._buf[self._size] = value
        self.copies += 1
        self._size += 1

    def pop_back(self) -> Any:
        """Remove and return the last element (O(1)); the capacity is kept."""
        if not self._size:
            raise IndexError("pop_back() on an empty Vector")
        self._size -= 1
        v, self._buf[self._size] = self._buf[self._size], None
        return v

    def _index(self, pos: Any, allow_end: bool = True) -> int:
        if isinstance(pos, VectorIterator):
            if pos._c is not self:
                raise ValueError("iterator belongs to another Vector")
            pos = pos._i
        hi = self._size if allow_end else self._size - 1
        if not isinstance(pos, int) or not 0 <= pos <= hi:
            raise IndexError(f"position {pos!r} out of range [0, {hi}]")
        return pos

    def insert(self, pos: Any, value: Any) -> VectorIterator:
        """Insert before ``pos`` (an index or iterator); O(n - pos) shifts. Returns its iterator."""
        i = self._index(pos)
        if self._size == self.capacity():
            self._reallocate(self._grown_capacity())
        for j in range(self._size, i, -1):
            self._buf[j] = self._buf[j - 1]
        self._buf[i] = value
        self.copies += self._size - i + 1
        self._size += 1
        return VectorIterator(self, i)

    def erase(self, first: Any, last: Any = None) -> VectorIterator:
        """Erase ``[first, last)`` (or one element); returns an iterator to what followed."""
        i = self._index(first, allow_end=last is not None)
        j = i + 1 if last is None else self._index(last)
        if j < i:
            raise ValueError(f"erase range [{i}, {j}) is reversed")
        k = j - i
        for t in range(j, self._size):
            self._buf[t - k] = self._buf[t]
        self.copies += self._size - j
        for t in range(self._size - k, self._size):
            self._buf[t] = None
        self._size -= k
        return VectorIterator(self, i)

    def clear(self) -> None:
        for t in range(self._size):
            self._buf[t] = None
        self._size = 0

    # --- iteration ----------------------------------------------------------------------
    def begin(self) -> VectorIterator:
        return VectorIterator(self, 0)

    def end(self) -> VectorIterator:
        return VectorIterator(self, self._size)

    def __iter__(self) -> PyIterator[Any]:
        for i in range(self._size):
            yield self._buf[i]

    def to_list(self) -> list[Any]:
        return [self._buf[i] for i in range(self._size)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vector) and self.to_list() == other.to_list()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vector({self.to_list()!r}, capacity={self.capacity()})"
