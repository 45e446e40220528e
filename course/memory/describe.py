"""A graph in a few lines, for lessons and tests: one step per line, ``writes <- reads``.

    a:2 <- x        step 0 writes a (2 units) from x (never written: a graph input)
    b:1 <- a
    y:2* <- a b     y is a graph output (the star): it lives to the last step

A size ``:n`` is given where a tensor is written, in units of ``unit`` bytes (64 by default,
so sizes stay aligned). ``;`` also separates steps; ``#`` starts a comment.
"""
from __future__ import annotations

from course.memory.sizes import DEFAULT_ALIGNMENT


def describe(text: str, unit: int = DEFAULT_ALIGNMENT) -> tuple[list, dict, set]:
    """``(steps, sizes, outputs)``: ``steps[i] = (reads, writes)`` as tuples of names."""
    steps, sizes, outputs = [], {}, set()
    lines = [part for line in text.splitlines() for part in line.split("#")[0].split(";")]
    for line in lines:
        if not line.strip():
            continue
        left, _, right = line.partition("<-")
        writes = []
        for word in left.split():
            name, _, n = word.rstrip("*").partition(":")
            if word.endswith("*"):
                outputs.add(name)
            writes.append(name)
            sizes[name] = int(n or 1) * unit
        steps.append((tuple(right.split()), tuple(writes)))
    return steps, sizes, outputs
