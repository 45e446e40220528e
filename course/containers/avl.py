"""A self-balancing binary search tree (AVL) with parent links: the engine of Map/Set/MultiMap.

AVL invariant: at every node the heights of the two subtrees differ by at most 1. After an
insert or erase we walk from the changed spot up to the root, recomputing heights and rotating
where the balance factor reaches ±2 (a single rotation for the outer "zig-zig" cases, a double
rotation for the inner "zig-zag" ones). This keeps ``height <= 1.44·log2(n + 2)``, inside the
red-black bound ``2·log2(n + 1)`` the tests check.

Nodes are relinked, never swapped by key, so erasing one key leaves iterators to every other
key valid, as in ``std::map``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from course.containers.functional import Less


class TreeNode:
    __slots__ = ("key", "value", "left", "right", "parent", "height")

    def __init__(self, key: Any, value: Any = None, parent: Optional["TreeNode"] = None):
        self.key = key
        self.value = value
        self.left: Optional[TreeNode] = None
        self.right: Optional[TreeNode] = None
        self.parent = parent
        self.height = 1

    def __repr__(self) -> str:
        return f"TreeNode({self.key!r}, h={self.height})"


def height(node: Optional[TreeNode]) -> int:
    return node.height if node is not None else 0


def update_height(node: TreeNode) -> None:
    node.height = 1 + max(height(node.left), height(node.right))


def balance_factor(node: TreeNode) -> int:
    """height(left) - height(right); the AVL invariant keeps it in {-1, 0, 1}."""
    return height(node.left) - height(node.right)


def leftmost(node: TreeNode) -> TreeNode:
    while node.left is not None:
        node = node.left
    return node


def rightmost(node: TreeNode) -> TreeNode:
    while node.right is not None:
        node = node.right
    return node


def successor(node: TreeNode) -> Optional[TreeNode]:
    """The in-order next node (None after the last)."""
    if node.right is not None:
        return leftmost(node.right)
    while node.parent is not None and node is node.parent.right:
        node = node.parent
    return node.parent


def predecessor(node: TreeNode) -> Optional[TreeNode]:
    if node.left is not None:
        return rightmost(node.left)
    while node.parent is not None and node is node.parent.left:
        node = node.parent
    return node.parent


class AVLTree:
    """Keys ordered by ``compare`` (a strict weak ordering); duplicates only if ``multi``."""

    def __init__(self, compare: Callable[[Any, Any], bool] = Less(), multi: bool = False):
        self.root: Optional[TreeNode] = None
        self.compare = compare
        self.multi = multi
        self.size = 0

    # --- structure ----------------------------------------------------------------------
    def _replace_child(self, old: TreeNode, new: Optional[TreeNode]) -> None:
        """Put ``new`` where ``old`` hangs from its parent (or at the root)."""
        parent = old.parent
        if parent is None:
            self.root = new
        elif parent.left is old:
            parent.left = new
        else:
            parent.right = new
        if new is not None:
            new.parent = parent

    def rotate_left(self, x: TreeNode) -> TreeNode:
        """Lift ``x.right`` above ``x``; returns the new subtree root."""
        y = x.right
        assert y is not None
        x.right = y.left
        if y.left is not None:
            y.left.parent = x
        self._replace_child(x, y)
        y.left = x
        x.parent = y
        update_height(x)
        update_height(y)
        return y

    def rotate_right(self, x: TreeNode) -> TreeNode:
        """Lift ``x.left`` above ``x``; returns the new subtree root."""
        y = x.left
        assert y is not None
        x.left = y.right
        if y.right is not None:
            y.right.parent = x
        self._replace_child(x, y)
        y.right = x
        x.parent = y
        update_height(x)
        update_height(y)
        return y

    def rebalance(self, x: TreeNode) -> TreeNode:
        """Fix ``x``'s height and balance; returns the root of the (maybe rotated) subtree."""
        update_height(x)
        bf = balance_factor(x)
        if bf > 1:
            if balance_factor(x.left) < 0:  # zig-zag: left child leans right
                self.rotate_left(x.left)
            return self.rotate_right(x)
        if bf < -1:
            if balance_factor(x.right) > 0:  # zag-zig
                self.rotate_right(x.right)
            return self.rotate_left(x)
        return x

    def _retrace(self, node: Optional[TreeNode]) -> None:
        while node is not None:
            node = self.rebalance(node).parent

    # --- queries ------------------------------------------------------------------------
    def height(self) -> int:
        return height(self.root)

    def first(self) -> Optional[TreeNode]:
        return leftmost(self.root) if self.root is not None else None

    def last(self) -> Optional[TreeNode]:
        return rightmost(self.root) if self.root is not None else None

    def lower_bound(self, key: Any) -> Optional[TreeNode]:
        """First node whose key is not less than ``key`` (None if all are less)."""
        node, best = self.root, None
        while node is not None:
            if self.compare(node.key, key):
                node = node.right
            else:
                best, node = node, node.left
        return best

    def upper_bound(self, key: Any) -> Optional[TreeNode]:
        """First node whose key is greater than ``key`` (None if none)."""
        node, best = self.root, None
        while node is not None:
            if self.compare(key, node.key):
                best, node = node, node.left
            else:
                node = node.right
        return best

    def find(self, key: Any) -> Optional[TreeNode]:
        node = self.lower_bound(key)
        if node is not None and not self.compare(key, node.key):
            return node
        return None

    # --- modifiers ----------------------------------------------------------------------
    def insert(self, key: Any, value: Any = None) -> tuple[TreeNode, bool]:
        """Insert ``key``; returns ``(node, True)``, or ``(existing, False)`` if present and not multi.

        In a multi tree an equal key goes after the existing equal keys (as in ``std::multimap``).
        """
        parent, node, go_left = None, self.root, False
        while node is not None:
            parent = node
            if self.compare(key, node.key):
                go_left, node = True, node.left
            elif self.multi or self.compare(node.key, key):
                go_left, node = False, node.right
            else:
                return node, False
        new = TreeNode(key, value, parent)
        if parent is None:
            self.root = new
        elif go_left:
            parent.left = new
        else:
            parent.right = new
        self.size += 1
        self._retrace(parent)
        return new, True

    def erase(self, z: TreeNode) -> None:
        """Remove node ``z`` (O(log n)); other nodes keep their identity."""
        if z.left is None or z.right is None:
            start = z.parent
            self._replace_child(z, z.left if z.left is not None else z.right)
        else:
            y = leftmost(z.right)  # in-order successor: has no left child
            if y.parent is not z:
                start = y.parent
                self._replace_child(y, y.right)
                y.right = z.right
                y.right.parent = y
            else:
                start = y
            self._replace_child(z, y)
            y.left = z.left
            y.left.parent = y
        z.left = z.right = z.parent = None
        self.size -= 1
        self._retrace(start)

    def clear(self) -> None:
        self.root, self.size = None, 0

    # --- checking -----------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError if order, parent links, stored heights or AVL balance are broken."""
        def walk(node: Optional[TreeNode], parent: Optional[TreeNode]) -> tuple[int, int]:
            if node is None:
                return 0, 0
            if node.parent is not parent:
                raise ValueError(f"node {node.key!r}: parent link is wrong")
            hl, nl = walk(node.left, node)
            hr, nr = walk(node.right, node)
            if node.height != 1 + max(hl, hr):
                raise ValueError(f"node {node.key!r}: stored height {node.height} != {1 + max(hl, hr)}")
            if abs(hl - hr) > 1:
                raise ValueError(f"node {node.key!r}: unbalanced (left {hl}, right {hr})")
            return 1 + max(hl, hr), nl + nr + 1

        _, n = walk(self.root, None)
        if n != self.size:
            raise ValueError(f"tree holds {n} nodes but size is {self.size}")
        node = self.first()
        while node is not None:
            nxt = successor(node)
            if nxt is not None and self.compare(nxt.key, node.key):
                raise ValueError(f"keys out of order: {node.key!r} before {nxt.key!r}")
            if nxt is not None and not self.multi and not self.compare(node.key, nxt.key):
                raise ValueError(f"duplicate key {node.key!r} in a unique tree")
            node = nxt
