"""The strategies by name, and ``place(intervals, sizes, strategy)`` that picks one."""
from __future__ import annotations

from typing import Callable, Hashable, Mapping

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


def place(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int],
          strategy: str = "best") -> dict[Hashable, int]:
    """``{tensor: offset}`` by the named strategy (one of ``STRATEGIES``)."""
    if strategy not in STRATEGIES:
        raise MemoryPlanError(f"unknown placement strategy {strategy!r}; "
                              f"choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[strategy](intervals, sizes)
