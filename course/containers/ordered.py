"""Ordered associative containers on an AVL tree: ``Map``, ``Set``, ``MultiMap``.

Like ``std::map``: keys kept sorted by a comparator functor (``Less()`` by default), O(log n)
insert/find/erase, in-order iteration, and ``lower_bound``/``upper_bound`` returning
bidirectional iterators. ``height()`` exposes the tree height so balance can be tested.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator as PyIterator, Optional

from course.containers.avl import AVLTree, TreeNode, predecessor, successor
from course.containers.functional import Less
from course.containers.iterators import BidirectionalIterator

_MISSING = object()


class TreeIterator(BidirectionalIterator):
    """Points at a tree node, or at the end (``node is None``). ``value`` is ``*it``:
    the key for a Set, the pair ``(key, mapped)`` for maps."""

    __slots__ = ("tree", "node", "_pairs")

    def __init__(self, tree: AVLTree, node: Optional[TreeNode], pairs: bool):
        self.tree, self.node, self._pairs = tree, node, pairs

    def _deref(self) -> TreeNode:
        if self.node is None:
            raise IndexError("dereferencing end() of an ordered container")
        return self.node

    @property
    def key(self) -> Any:
        return self._deref().key

    @property
    def mapped(self) -> Any:
        return self._deref().value

    @mapped.setter
    def mapped(self, v: Any) -> None:
        self._deref().value = v

    @property
    def value(self) -> Any:
        n = self._deref()
        return (n.key, n.value) if self._pairs else n.key

    def inc(self) -> "TreeIterator":
        self.node = successor(self._deref())
        return self

    def dec(self) -> "TreeIterator":
        self.node = self.tree.last() if self.node is None else predecessor(self.node)
        if self.node is None:
            raise IndexError("decrementing begin() of an ordered container")
        return self

    def copy(self) -> "TreeIterator":
        return type(self)(self.tree, self.node, self._pairs)

    def _key(self) -> tuple:
        return (id(self.tree), id(self.node))

    def __repr__(self) -> str:
        return "TreeIterator(end)" if self.node is None else f"TreeIterator({self.value!r})"


class _Ordered:
    _multi = False
    _pairs = True

    def __init__(self, compare: Callable[[Any, Any], bool] = Less()):
        self._tree = AVLTree(compare, multi=self._multi)

    @property
    def compare(self) -> Callable[[Any, Any], bool]:
        return self._tree.compare

    def __len__(self) -> int:
        return self._tree.size

    def empty(self) -> bool:
        return self._tree.size == 0

    def height(self) -> int:
        """Tree height (0 when empty); stays <= 2·log2(n + 1)."""
        return self._tree.height()

    def _it(self, node: Optional[TreeNode]) -> TreeIterator:
        return TreeIterator(self._tree, node, self._pairs)

    def begin(self) -> TreeIterator:
        return self._it(self._tree.first())

    def end(self) -> TreeIterator:
        return self._it(None)

    def find(self, key: Any) -> TreeIterator:
        return self._it(self._tree.find(key))

    def lower_bound(self, key: Any) -> TreeIterator:
        """First element whose key is not less than ``key``."""
        return self._it(self._tree.lower_bound(key))

    def upper_bound(self, key: Any) -> TreeIterator:
        """First element whose key is greater than ``key``."""
        return self._it(self._tree.upper_bound(key))

    def equal_range(self, key: Any) -> tuple[TreeIterator, TreeIterator]:
        return self.lower_bound(key), self.upper_bound(key)

    def count(self, key: Any) -> int:
        lo, hi = self.equal_range(key)
        n = 0
        while lo != hi:
            lo.inc()
            n += 1
        return n

    def __contains__(self, key: Any) -> bool:
        return self._tree.find(key) is not None

    def erase(self, what: Any) -> Any:
        """``erase(iterator)`` returns the next iterator; ``erase(key)`` returns how many went."""
        if isinstance(what, TreeIterator):
            if what.tree is not self._tree:
                raise ValueError("iterator belongs to another container")
            node = what._deref()
            nxt = successor(node)
            self._tree.erase(node)
            return self._it(nxt)
        lo, hi = self.equal_range(what)
        n = 0
        while lo != hi:
            lo = self.erase(lo)
            n += 1
        return n

    def clear(self) -> None:
        self._tree.clear()

    def _nodes(self) -> PyIterator[TreeNode]:
        node = self._tree.first()
        while node is not None:
            yield node
            node = successor(node)

    def __iter__(self) -> PyIterator[Any]:
        """Keys in order (like iterating a dict)."""
        for n in self._nodes():
            yield n.key

    def keys(self) -> list[Any]:
        return list(self)

    def validate(self) -> None:
        self._tree.validate()


class Map(_Ordered):
    """Unique keys mapped to values. ``m[k]`` raises KeyError for a missing key."""

    def __init__(self, items: Iterable[tuple[Any, Any]] | dict = (), compare: Callable = Less()):
        super().__init__(compare)
        pairs = items.items() if isinstance(items, dict) else items
        for k, v in pairs:
            self[k] = v

    def insert(self, key: Any, value: Any = None) -> tuple[TreeIterator, bool]:
        """Insert if absent: ``(iterator, True)``; else ``(iterator to existing, False)``."""
        node, inserted = self._tree.insert(key, value)
        return self._it(node), inserted

    def __setitem__(self, key: Any, value: Any) -> None:
        node, inserted = self._tree.insert(key, value)
        if not inserted:
            node.value = value

    def __getitem__(self, key: Any) -> Any:
        node = self._tree.find(key)
        if node is None:
            raise KeyError(key)
        return node.value

    def get(self, key: Any, default: Any = None) -> Any:
        node = self._tree.find(key)
        return default if node is None else node.value

    def __delitem__(self, key: Any) -> None:
        if not self.erase(key):
            raise KeyError(key)

    def items(self) -> list[tuple[Any, Any]]:
        return [(n.key, n.value) for n in self._nodes()]

    def values(self) -> list[Any]:
        return [n.value for n in self._nodes()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items()!r})"


class MultiMap(Map):
    """Like Map but keys may repeat; equal keys keep insertion order. No ``m[k] = v``."""

    _multi = True

    def __init__(self, items: Iterable[tuple[Any, Any]] = (), compare: Callable = Less()):
        _Ordered.__init__(self, compare)
        for k, v in items:
            self.insert(k, v)

    def insert(self, key: Any, value: Any = None) -> TreeIterator:  # type: ignore[override]
        """Always inserts (after equal keys); returns an iterator to the new element."""
        node, _ = self._tree.insert(key, value)
        return self._it(node)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("MultiMap has no m[key] = value; use insert(key, value)")

    def get_all(self, key: Any) -> list[Any]:
        lo, hi = self.equal_range(key)
        out = []
        while lo != hi:
            out.append(lo.mapped)
            lo.inc()
        return out


class Set(_Ordered):
    """Unique keys in order."""

    _pairs = False

    def __init__(self, keys: Iterable[Any] = (), compare: Callable = Less()):
        super().__init__(compare)
        for k in keys:
            self.insert(k)

    def insert(self, key: Any) -> tuple[TreeIterator, bool]:
        node, inserted = self._tree.insert(key)
        return self._it(node), inserted

    add = insert

    def __repr__(self) -> str:
        return f"Set({list(self)!r})"
