"""``List``: a doubly linked list with a sentinel node, as ``std::list``.

The sentinel closes the ring: ``sentinel.next`` is the first node, ``sentinel.prev`` the last,
and ``end()`` points at the sentinel, so insert/erase never special-case an empty list or an
end. Insert, erase and splice rewrite a constant number of links: O(1). Iterators to other
elements stay valid (even across splice, where they move with their nodes).

Every write of a ``prev``/``next`` link is counted in ``Node.link_writes`` so the O(1) claims
can be checked by counting, not timing.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator as PyIterator, Optional

from course.containers.iterators import BidirectionalIterator


class Node:
    """A list node. ``prev``/``next`` are properties so that every link write is counted."""

    __slots__ = ("_prev", "_next", "value", "sentinel")
    link_writes = 0  # class-wide counter: total link writes since import

    def __init__(self, value: Any = None, sentinel: bool = False):
        self._prev: Optional[Node] = None
        self._next: Optional[Node] = None
        self.value = value
        self.sentinel = sentinel

    @property
    def prev(self) -> "Node":
        return self._prev  # type: ignore[return-value]

    @prev.setter
    def prev(self, node: "Node") -> None:
        Node.link_writes += 1
        self._prev = node

    @property
    def next(self) -> "Node":
        return self._next  # type: ignore[return-value]

    @next.setter
    def next(self, node: "Node") -> None:
        Node.link_writes += 1
        self._next = node


def link_writes() -> int:
    """Total ``prev``/``next`` writes so far; subtract two readings to count an operation."""
    return Node.link_writes


def link(a: Node, b: Node) -> None:
    """Make ``b`` follow ``a`` (two link writes)."""
    a.next = b
    b.prev = a


class ListIterator(BidirectionalIterator):
    """Bidirectional iterator: a pointer to a node (the sentinel for ``end()``)."""

    __slots__ = ("node",)

    def __init__(self, node: Node):
        self.node = node

    @property
    def value(self) -> Any:
        if self.node.sentinel:
            raise IndexError("dereferencing end() of a List")
        return self.node.value

    @value.setter
    def value(self, v: Any) -> None:
        if self.node.sentinel:
            raise IndexError("writing through end() of a List")
        self.node.value = v

    def inc(self) -> "ListIterator":
        self.node = self.node.next
        return self

    def dec(self) -> "ListIterator":
        self.node = self.node.prev
        return self

    def copy(self) -> "ListIterator":
        return type(self)(self.node)

    def _key(self) -> tuple:
        return (id(self.node),)

    def __repr__(self) -> str:
        return "ListIterator(end)" if self.node.sentinel else f"ListIterator({self.node.value!r})"


class List:
    def __init__(self, iterable: Iterable[Any] = ()):
        self._sentinel = Node(sentinel=True)
        link(self._sentinel, self._sentinel)
        self._size = 0
        for x in iterable:
            self.push_back(x)

    def __len__(self) -> int:
        return self._size

    def empty(self) -> bool:
        return self._size == 0

    def begin(self) -> ListIterator:
        return ListIterator(self._sentinel.next)

    def end(self) -> ListIterator:
        return ListIterator(self._sentinel)

    def _node_of(self, pos: ListIterator) -> Node:
        if not isinstance(pos, ListIterator):
            raise TypeError(f"expected a ListIterator, got {type(pos).__name__}")
        return pos.node

    def insert(self, pos: ListIterator, value: Any) -> ListIterator:
        """Insert ``value`` before ``pos``; O(1). Returns an iterator to the new element."""
        p = self._node_of(pos)
        n = Node(value)
        link(p.prev, n)
        link(n, p)
        self._size += 1
        return ListIterator(n)

    def erase(self, pos: ListIterator) -> ListIterator:
        """Unlink the element at ``pos``; O(1). Returns an iterator to the next element."""
        p = self._node_of(pos)
        if p.sentinel:
            raise IndexError("erase(end()) on a List")
        nxt = p.next
        link(p.prev, nxt)
        self._size -= 1
        return ListIterator(nxt)

    def push_back(self, value: Any) -> None:
        self.insert(self.end(), value)

    def push_front(self, value: Any) -> None:
        self.insert(self.begin(), value)

    def pop_back(self) -> Any:
        if not self._size:
            raise IndexError("pop_back() on an empty List")
        v = self._sentinel.prev.value
        self.erase(ListIterator(self._sentinel.prev))
        return v

    def pop_front(self) -> Any:
        if not self._size:
            raise IndexError("pop_front() on an empty List")
        v = self._sentinel.next.value
        self.erase(self.begin())
        return v

    def front(self) -> Any:
        if not self._size:
            raise IndexError("front() of an empty List")
        return self._sentinel.next.value

    def back(self) -> Any:
        if not self._size:
            raise IndexError("back() of an empty List")
        return self._sentinel.prev.value

    def splice(self, pos: ListIterator, other: "List", first: Optional[ListIterator] = None,
               last: Optional[ListIterator] = None) -> None:
        """Move nodes of ``other`` before ``pos`` without copying elements.

        * ``splice(pos, other)``: all of ``other`` (O(1); ``other`` becomes empty);
        * ``splice(pos, other, it)``: the one element at ``it`` (O(1));
        * ``splice(pos, other, first, last)``: the range ``[first, last)``; six link writes, plus
          O(k) reads to count the moved elements when ``other`` is another list (as in C++11).
        """
        p = self._node_of(pos)
        if first is None:
            if other is self:
                raise ValueError("splice(pos, other) needs other to be a different List")
            first, last = other.begin(), other.end()
        elif last is None:
            if first == pos:  # one element moved to where it is: no effect
                return
            last = first.copy().inc()
        a, b = self._node_of(first), self._node_of(last)
        if a is b or p is b:  # empty range, or already right before pos
            return
        moved = 0
        if other is self:
            q = a
            while q is not b:
                if q is p:
                    raise ValueError("splice: pos lies inside the range being moved")
                q = q.next
        else:
            q = a
            while q is not b:
                if q.sentinel:
                    raise ValueError("splice range does not end inside the source list")
                moved += 1
                q = q.next
        end_node = b.prev  # last node of the range
        link(a.prev, b)  # close the gap in the source
        link(p.prev, a)  # hang [a, end_node] before p
        link(end_node, p)
        other._size -= moved
        self._size += moved

    def clear(self) -> None:
        link(self._sentinel, self._sentinel)
        self._size = 0

    def __iter__(self) -> PyIterator[Any]:
        n = self._sentinel.next
        while not n.sentinel:
            yield n.value
            n = n.next

    def __reversed__(self) -> PyIterator[Any]:
        n = self._sentinel.prev
        while not n.sentinel:
            yield n.value
            n = n.prev

    def to_list(self) -> list[Any]:
        return list(self)

    def __repr__(self) -> str:
        return f"List({self.to_list()!r})"
