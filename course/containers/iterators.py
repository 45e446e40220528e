"""STL-style iterators: positions in a container, with a category that says what they can do.

* bidirectional (``List``, ``Map``, ``Set``): ``inc()`` / ``dec()``, one step at a time;
* random access (``Vector``, ``Deque``): also ``it + k``, ``it - k``, ``it2 - it1``, ``it[k]``
  and ``<``, all in O(1).

``advance`` and ``distance`` dispatch on ``iterator_category`` (tag dispatch, as the STL does):
O(1) for random access, O(n) steps otherwise. ``it.value`` reads or writes the element (``*it``).
Containers are also ordinary Python iterables: ``for x in vec`` uses ``__iter__``/``__next__``.
"""
from __future__ import annotations

from typing import Any, Iterator as PyIterator


class InputIteratorTag:
    """Read once, move forward."""


class ForwardIteratorTag(InputIteratorTag):
    """Move forward, re-read, copy."""


class BidirectionalIteratorTag(ForwardIteratorTag):
    """Also move backward."""


class RandomAccessIteratorTag(BidirectionalIteratorTag):
    """Also jump by any k in O(1) and compare positions."""


class Iterator:
    """Base of every container iterator. Subclasses define ``inc``, ``value`` and ``_key``."""

    iterator_category: type = ForwardIteratorTag

    def inc(self) -> "Iterator":  # ++it
        raise NotImplementedError

    def copy(self) -> "Iterator":
        raise NotImplementedError

    def _key(self) -> tuple:
        """What identifies the position (for ==)."""
        raise NotImplementedError

    def next(self, n: int = 1) -> "Iterator":
        """A new iterator ``n`` steps ahead (``std::next``); this one does not move."""
        return advance(self.copy(), n)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()  # type: ignore[union-attr]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]  # positions are mutable

    def __iter__(self):
        raise TypeError("an STL-style iterator is a position, not a Python iterable; "
                        "use iter_range(first, last) or iterate the container")


class BidirectionalIterator(Iterator):
    iterator_category = BidirectionalIteratorTag

    def dec(self) -> "BidirectionalIterator":  # --it
        raise NotImplementedError

    def prev(self, n: int = 1) -> "BidirectionalIterator":
        """A new iterator ``n`` steps back (``std::prev``)."""
        return advance(self.copy(), -n)


class IndexIterator(BidirectionalIterator):
    """Random-access iterator over a container with O(1) ``_at(i)``/``_put(i, v)`` and ``len``.

    The position is a logical index ``i`` in ``[0, len(container)]``; ``len`` is the end.
    """

    iterator_category = RandomAccessIteratorTag

    __slots__ = ("_c", "_i")

    def __init__(self, container: Any, i: int):
        self._c = container
        self._i = i

    @property
    def index(self) -> int:
        return self._i

    @property
    def value(self) -> Any:
        return self._c._at(self._i)

    @value.setter
    def value(self, v: Any) -> None:
        self._c._put(self._i, v)

    def copy(self) -> "IndexIterator":
        return type(self)(self._c, self._i)

    def _key(self) -> tuple:
        return (id(self._c), self._i)

    def inc(self) -> "IndexIterator":
        self._i += 1
        return self

    def dec(self) -> "IndexIterator":
        self._i -= 1
        return self

    def _same(self, other: Any) -> "IndexIterator":
        if type(other) is not type(self) or other._c is not self._c:
            raise TypeError("iterators into different containers cannot be compared or subtracted")
        return other

    def __add__(self, k: int) -> "IndexIterator":
        if not isinstance(k, int):
            return NotImplemented
        return type(self)(self._c, self._i + k)

    __radd__ = __add__

    def __sub__(self, other: Any):
        if isinstance(other, int):
            return type(self)(self._c, self._i - other)
        return self._i - self._same(other)._i  # it2 - it1: a distance

    def __iadd__(self, k: int) -> "IndexIterator":
        self._i += k
        return self

    def __isub__(self, k: int) -> "IndexIterator":
        self._i -= k
        return self

    def __getitem__(self, k: int) -> Any:  # it[k] == *(it + k)
        return self._c._at(self._i + k)

    def __setitem__(self, k: int, v: Any) -> None:
        self._c._put(self._i + k, v)

    def __lt__(self, other: Any) -> bool:
        return self._i < self._same(other)._i

    def __le__(self, other: Any) -> bool:
        return self._i <= self._same(other)._i

    def __gt__(self, other: Any) -> bool:
        return self._i > self._same(other)._i

    def __ge__(self, other: Any) -> bool:
        return self._i >= self._same(other)._i

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index={self._i})"


def is_random_access(it: Iterator) -> bool:
    return issubclass(getattr(it, "iterator_category", InputIteratorTag), RandomAccessIteratorTag)


def advance(it: Iterator, n: int) -> Iterator:
    """Move ``it`` by ``n`` in place and return it: O(1) for random access, else |n| steps.

    Negative ``n`` needs a bidirectional iterator.
    """
    if is_random_access(it):
        it += n  # type: ignore[operator]
        return it
    if n < 0:
        if not issubclass(it.iterator_category, BidirectionalIteratorTag):
            raise ValueError("advance by a negative n needs a bidirectional iterator")
        for _ in range(-n):
            it.dec()  # type: ignore[attr-defined]
        return it
    for _ in range(n):
        it.inc()
    return it


def distance(first: Iterator, last: Iterator) -> int:
    """Number of steps from ``first`` to ``last``: O(1) for random access, else O(n)."""
    if is_random_access(first):
        return last - first  # type: ignore[operator]
    it, n = first.copy(), 0
    while it != last:
        it.inc()
        n += 1
    return n


def next_(it: Iterator, n: int = 1) -> Iterator:
    """``std::next``: a copy of ``it`` moved by ``n``."""
    return advance(it.copy(), n)


def prev_(it: Iterator, n: int = 1) -> Iterator:
    """``std::prev``: a copy of ``it`` moved back by ``n``."""
    return advance(it.copy(), -n)


def iter_range(first: Iterator, last: Iterator) -> PyIterator[Any]:
    """The values in ``[first, last)`` as a Python iterator (a Python generator)."""
    it = first.copy()
    while it != last:
        yield it.value
        it.inc()
