"""``memory_report(plan)``: what the planner did with a runtime plan, as a plain dict."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from course.memory.planner import plan_memory, tensor_names
from course.memory.sizes import DEFAULT_ALIGNMENT, tensor_bytes


def memory_report(plan: Any, strategy: str = "best", alignment: int = DEFAULT_ALIGNMENT,
                  inplace: bool = False, workspaces: Optional[Mapping[int, int]] = None) -> dict:
    """Arena size against the lower bound and against no reuse, with every tensor's place.

    Keys: ``strategy``, ``alignment``, ``arena_bytes``, ``lower_bound_bytes``, ``naive_bytes``
    (every tensor its own bytes: no planning at all), ``weights_bytes`` (the plan's constants, kept outside the
    arena), ``offsets``/``sizes``/``intervals`` by tensor name, ``inplace`` (``{output: input
    whose bytes it takes}``) and ``dynamic`` (names of values without a static shape).
    """
    mp = plan_memory(plan, strategy, alignment, inplace, workspaces)
    names = tensor_names(plan, list(mp.offsets))
    sizes = {t: mp.sizes[mp.alias.get(t, t)] for t in mp.offsets}
    return {
        "strategy": strategy,
        "alignment": alignment,
        "arena_bytes": mp.arena_bytes,
        "lower_bound_bytes": mp.lower_bound_bytes,
        "naive_bytes": sum(sizes.values()),
        "weights_bytes": sum(tensor_bytes(a.dtype, a.shape, alignment) for a in plan.constants.values()
                             if hasattr(a, "dtype")),
        "offsets": {names[t]: off for t, off in mp.offsets.items()},
        "sizes": {names[t]: n for t, n in sizes.items()},
        "intervals": {names[t]: mp.intervals[t] for t in mp.intervals},
        "inplace": {names[d]: names[r] for d, r in mp.alias.items()},
        "dynamic": [plan.value_names[s] for s in mp.dynamic],
    }
