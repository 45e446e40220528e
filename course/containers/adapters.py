"""Container adapters: a restricted interface over another container, as in the STL.

* ``Stack`` (LIFO) over a ``Vector``; ``Queue`` (FIFO) over a ``Deque``;
* ``PriorityQueue``: a binary heap in a ``Vector`` ordered by a comparator functor.

``PriorityQueue`` keeps the STL meaning of the comparator: ``top()`` is the element that no
other element must come *after*; with ``Less()`` (the default) that is the largest, with
``Greater()`` the smallest. The scheduler of lesson 06 uses ``PriorityQueue(Greater())`` to
always take the ready node with the smallest index (a deterministic topological order).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from course.containers.deque import Deque
from course.containers.functional import Less
from course.containers.vector import Vector


class Stack:
    def __init__(self, iterable: Iterable[Any] = ()):
        self._c = Vector(iterable)

    def push(self, x: Any) -> None:
        self._c.push_back(x)

    def pop(self) -> Any:
        if self._c.empty():
            raise IndexError("pop() on an empty Stack")
        return self._c.pop_back()

    def top(self) -> Any:
        if self._c.empty():
            raise IndexError("top() of an empty Stack")
        return self._c.back()

    def __len__(self) -> int:
        return len(self._c)

    def empty(self) -> bool:
        return self._c.empty()


class Queue:
    def __init__(self, iterable: Iterable[Any] = ()):
        self._c = Deque(iterable)

    def push(self, x: Any) -> None:
        self._c.push_back(x)

    def pop(self) -> Any:
        if self._c.empty():
            raise IndexError("pop() on an empty Queue")
        return self._c.pop_front()

    def front(self) -> Any:
        if self._c.empty():
            raise IndexError("front() of an empty Queue")
        return self._c.front()

    def back(self) -> Any:
        if self._c.empty():
            raise IndexError("back() of an empty Queue")
        return self._c.back()

    def __len__(self) -> int:
        return len(self._c)

    def empty(self) -> bool:
        return self._c.empty()


class PriorityQueue:
    """Binary heap: node ``i`` has children ``2i+1`` and ``2i+2`` and parent ``(i-1)//2``.

    Heap property: ``comp(heap[parent(i)], heap[i])`` is False for every ``i`` (no child
    should come out before its parent), so ``heap[0]`` is the top. ``push``/``pop`` are O(log n), ``top`` O(1). ``pop`` returns the removed top
    (``std::priority_queue::pop`` returns nothing; returning it is the Python habit).
    """

    def __init__(self, compare: Callable[[Any, Any], bool] = Less(), iterable: Iterable[Any] = ()):
        self.compare = compare
        self._heap = Vector()
        for x in iterable:
            self.push(x)

    def __len__(self) -> int:
        return len(self._heap)

    def empty(self) -> bool:
        return self._heap.empty()

    def top(self) -> Any:
        if self._heap.empty():
            raise IndexError("top() of an empty PriorityQueue")
        return self._heap[0]

    def push(self, x: Any) -> None:
        self._heap.push_back(x)
        self._sift_up(len(self._heap) - 1)

    def pop(self) -> Any:
        if self._heap.empty():
            raise IndexError("pop() on an empty PriorityQueue")
        h = self._heap
        top = h[0]
        last = h.pop_back()
        if len(h):
            h[0] = last
            self._sift_down(0)
        return top

    def _sift_up(self, i: int) -> None:
        """Move ``heap[i]`` up while it should come before its parent."""
        h, comp = self._heap, self.compare
        while i > 0:
            parent = (i - 1) // 2
            if not comp(h[parent], h[i]):
                break
            h[parent], h[i] = h[i], h[parent]
            i = parent

    def _sift_down(self, i: int) -> None:
        """Move ``heap[i]`` down, swapping with the child that should come first."""
        h, comp, n = self._heap, self.compare, len(self._heap)
        while True:
            left, right, best = 2 * i + 1, 2 * i + 2, i
            if left < n and comp(h[best], h[left]):
                best = left
            if right < n and comp(h[best], h[right]):
                best = right
            if best == i:
                return
            h[best], h[i] = h[i], h[best]
            i = best
