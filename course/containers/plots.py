"""Pictures for lesson 01: vector growth, a ring buffer, a balanced tree (matplotlib)."""
from __future__ import annotations

import math
from typing import Any

from course.containers.avl import AVLTree, TreeNode
from course.containers.deque import Deque
from course.containers.vector import Vector


def growth_trace(n: int, growth: float) -> tuple[list[int], list[float], list[int]]:
    """Push 1..n into a Vector with the given GROWTH; per step: capacity, copies/push, copies."""
    cls = type("V", (Vector,), {"GROWTH": growth})
    v, caps, per, total = cls(), [], [], []
    for i in range(1, n + 1):
        v.push_back(i)
        caps.append(v.capacity())
        per.append(v.copies / i)
        total.append(v.copies)
    return caps, per, total


def plot_growth(n: int = 600, growths=(2, 1.5, 1), ax=None) -> Any:
    """Left: copies per push_back (amortized cost); right: capacity steps."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6)) if ax is None else (ax.figure, ax)
    xs = range(1, n + 1)
    for g in growths:
        caps, per, _ = growth_trace(n, g)
        label = f"x{g}" if g != 1 else "+1"
        a1.plot(xs, per, label=label)
        a2.step(xs, caps, where="post", label=label)
    a1.axhline(3, color="k", ls=":", lw=1, label="3 (bound for x2)")
    a1.set(xlabel="n push_backs", ylabel="copies / push_back", ylim=(0, 12),
           title="Amortized cost of push_back")
    a2.plot(xs, xs, color="k", ls=":", lw=1, label="size")
    a2.set(xlabel="n push_backs", ylabel="capacity", title="Capacity after each push_back",
           ylim=(0, 2.2 * n))
    a1.legend()
    a2.legend()
    fig.tight_layout()
    return fig


def draw_ring(d: Deque, ax=None, title: str = "") -> Any:
    """The deque's slots on a circle: filled slots show their value, the head is marked."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Wedge

    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.6))
    cap = max(1, d.capacity())
    used = {d._slot(i): i for i in range(len(d))} if d.capacity() else {}
    for s in range(cap):
        a0 = 90 - 360 * (s + 1) / cap
        w = Wedge((0, 0), 1, a0, a0 + 360 / cap, width=0.45, ec="k",
                  fc="#9ecae1" if s in used else "#f0f0f0")
        ax.add_patch(w)
        mid = math.radians(a0 + 180 / cap)
        if s in used:
            ax.text(0.77 * math.cos(mid), 0.77 * math.sin(mid), str(d._buf[s]), ha="center", va="center")
        ax.text(1.14 * math.cos(mid), 1.14 * math.sin(mid), str(s), ha="center", va="center",
                fontsize=7, color="gray")
        if s == d._head and len(d):
            ax.annotate("head", (0.55 * math.cos(mid), 0.55 * math.sin(mid)), (0, 0),
                        arrowprops=dict(arrowstyle="->"), ha="center", va="center")
    ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal",
           title=title or f"size {len(d)}, capacity {d.capacity()}")
    ax.axis("off")
    return ax


def draw_tree(tree: AVLTree, ax=None, title: str = "") -> Any:
    """Nodes at (in-order rank, depth), labelled with key and, below, the balance factor."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    pos: dict[int, tuple[float, float]] = {}

    def place(node: TreeNode | None, depth: int, counter: list[int]) -> None:
        if node is None:
            return
        place(node.left, depth + 1, counter)
        pos[id(node)] = (counter[0], -depth)
        counter[0] += 1
        place(node.right, depth + 1, counter)

    place(tree.root, 0, [0])

    def edges(node: TreeNode | None) -> None:
        if node is None:
            return
        for child in (node.left, node.right):
            if child is not None:
                (x0, y0), (x1, y1) = pos[id(node)], pos[id(child)]
                ax.plot([x0, x1], [y0, y1], color="gray", lw=1, zorder=1)
                edges(child)
        x, y = pos[id(node)]
        bf = (node.left.height if node.left else 0) - (node.right.height if node.right else 0)
        ax.scatter([x], [y], s=380, color="#fdd0a2" if bf else "#c7e9c0", ec="k", zorder=2)
        ax.text(x, y, str(node.key), ha="center", va="center", fontsize=8, zorder=3)
        ax.text(x, y - 0.38, f"{bf:+d}", ha="center", va="center", fontsize=6, color="gray")

    edges(tree.root)
    ax.set_title(title or f"n = {tree.size}, height = {tree.height()}")
    ax.margins(0.06, 0.15)
    ax.axis("off")
    return ax
