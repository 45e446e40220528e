"""The strategies by name, and ``place(intervals, sizes, strategy)`` that picks one."""
from __future__ import annotations

from typing import Callable, Hashable, Mapping, Union

import numpy as np

from course.memory.best import place_best
from course.memory.best_fit import place_best_fit
from course.memory.greedy import place_greedy_by_breadth, place_greedy_by_size, place_naive
from course.memory.liveness import Interval
from course.memory.validate import MemoryPlanError

STRATEGIES: dict[str, Callable[..., dict]] = {
    "naive": place_naive,
    "greedy_by_size": place_greedy_by_size,
    "greedy_by_breadth": place_greedy_by_breadth,
    "best_fit": place_best_fit,
    "best": place_best,
}


Strategy = Union[str, Callable[..., dict]]


def strategy_name(strategy: Strategy) -> str:
    """How a strategy is reported: its name, or a callable's ``__name__``."""
    return strategy if isinstance(strategy, str) else getattr(strategy, "__name__", type(strategy).__name__)


def place(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int],
          strategy: Strategy = "best") -> dict[Hashable, int]:
    """``{tensor: offset}`` by the named strategy (one of ``STRATEGIES``), or by a placement
    function of your own, ``strategy(intervals, sizes) -> {tensor: offset}`` (lesson 09's
    ``place_greedy_by_size``, say), which must place every tensor it is given."""
    if callable(strategy):
        return _own_placement(strategy, intervals, sizes)
    if strategy not in STRATEGIES:
        raise MemoryPlanError(f"unknown placement strategy {strategy!r}; "
                              f"choose one of {sorted(STRATEGIES)} or pass a placement function")
    return STRATEGIES[strategy](intervals, sizes)


def _own_placement(fn: Callable[..., dict], intervals: Mapping[Hashable, Interval],
                   sizes: Mapping[Hashable, int]) -> dict[Hashable, int]:
    """A placement function's answer, checked for shape (the validator checks the overlaps):
    a dict with an integer offset for every tensor and nothing else."""
    name = strategy_name(fn)
    offsets = fn(dict(intervals), dict(sizes))
    if not isinstance(offsets, Mapping):
        raise MemoryPlanError(f"placement {name!r} returned {type(offsets).__name__}, not a dict {{tensor: offset}}")
    missing = [t for t in intervals if t not in offsets]
    if missing:
        raise MemoryPlanError(f"placement {name!r} gave no offset for {len(missing)} tensor(s), e.g. {missing[0]!r}")
    extra = [t for t in offsets if t not in intervals]
    if extra:
        raise MemoryPlanError(f"placement {name!r} placed tensor(s) it was not given, e.g. {extra[0]!r}")
    bad = [t for t, off in offsets.items() if isinstance(off, bool) or not isinstance(off, (int, np.integer)) or off < 0]
    if bad:
        raise MemoryPlanError(f"placement {name!r}: offset {offsets[bad[0]]!r} of tensor {bad[0]!r} "
                              "is not a non-negative integer")
    return {t: int(off) for t, off in offsets.items()}
