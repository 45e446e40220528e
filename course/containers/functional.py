"""Function objects (the STL's functors): comparators and predicate helpers.

A comparator ``comp(a, b)`` is a *strict weak ordering*: it answers "must ``a`` come before
``b``?". Two keys are *equivalent* when neither comes before the other, which is how ordered
containers decide equality without ever calling ``==``.
"""
from __future__ import annotations

from typing import Any, Callable


class Less:
    """``comp(a, b) == a < b``: ascending order; a max-heap in a PriorityQueue (as in the STL)."""

    def __call__(self, a: Any, b: Any) -> bool:
        return a < b

    def __repr__(self) -> str:
        return "Less()"


class Greater:
    """``comp(a, b) == a > b``: descending order; a min-heap in a PriorityQueue."""

    def __call__(self, a: Any, b: Any) -> bool:
        return a > b

    def __repr__(self) -> str:
        return "Greater()"


class EqualTo:
    """``pred(a, b) == (a == b)``."""

    def __call__(self, a: Any, b: Any) -> bool:
        return a == b


class KeyLess:
    """Order by ``key(x)``: ``KeyLess(len)(a, b) == len(a) < len(b)``."""

    def __init__(self, key: Callable[[Any], Any]):
        self.key = key

    def __call__(self, a: Any, b: Any) -> bool:
        return self.key(a) < self.key(b)


class Not:
    """Negate a predicate (``std::not_fn``): ``Not(p)(x) == not p(x)``."""

    def __init__(self, pred: Callable[..., bool]):
        self.pred = pred

    def __call__(self, *args: Any) -> bool:
        return not self.pred(*args)


def equivalent(comp: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    """Neither orders before the other: the ordered containers' notion of "same key"."""
    return not comp(a, b) and not comp(b, a)
