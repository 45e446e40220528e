"""When each intermediate tensor is alive: the step that writes it to the step that last reads it.

The planner works on plain data -- a list of steps, each ``(reads, writes)`` of tensor keys --
so lessons and tests can describe a graph in one line. ``liveness(plan)`` is the thin adapter
for a runtime ``Plan`` (read by attribute only: this package sits below ``course.runtime``).

What the session needs: graph inputs are arrays the caller feeds and weights live in the plan's
constants, so neither is placed (a key read but never written is external); graph outputs are
handed back after the last step, so they stay alive to the end. Intervals are inclusive: a
tensor written at step 3 and last read at step 5 occupies its bytes during steps 3, 4 and 5.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Sequence

from course.memory.sizes import DEFAULT_ALIGNMENT, static_shape, tensor_bytes

Interval = tuple[int, int]


def step_liveness(steps: Sequence[tuple[Iterable[Hashable], Iterable[Hashable]]],
                  keep: Iterable[Hashable] = ()) -> dict[Hashable, Interval]:
    """``{tensor: (first_step, last_step)}`` for every tensor some step writes.

    ``steps[i] = (reads, writes)``; tensors in ``keep`` (graph outputs) live to the last step.
    A tensor written but never read still needs its bytes at the step that writes it.
    """
    first: dict[Hashable, int] = {}
    last: dict[Hashable, int] = {}
    for i, (reads, writes) in enumerate(steps):
        for t in writes:
            first.setdefault(t, i)
            last[t] = max(last.get(t, i), i)
        for t in reads:
            if t in first:
                last[t] = i
    end = len(steps) - 1
    for t in keep:
        if t in first:
            last[t] = end
    return {t: (first[t], last[t]) for t in first}


# --- the adapter for a runtime Plan (duck-typed: steps[i].ins/.outs/.spec, slot_of, constants)


def plan_steps(plan: Any) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``(reads, writes)`` slots per step, omitted optional inputs/outputs (-1) dropped."""
    return [(tuple(s for s in st.ins if s >= 0), tuple(s for s in st.outs if s >= 0))
            for st in plan.steps]


def plan_outputs(plan: Any) -> set[int]:
    """Slots of the graph outputs that some step produces (``slot_of`` names inputs, outputs and
    initializers; of those only outputs are written by a step)."""
    written = {s for _, writes in plan_steps(plan) for s in writes}
    return {s for s in plan.slot_of.values() if s in written}


def liveness(plan: Any) -> dict[int, Interval]:
    """``{slot: (first_step, last_step)}`` for the intermediates and outputs of ``plan``."""
    return step_liveness(plan_steps(plan), keep=plan_outputs(plan))


def plan_types(plan: Any) -> dict[int, tuple]:
    """``{slot: (dtype, shape)}`` of every slot a step writes, from the steps' specs."""
    types = {}
    for st in plan.steps:
        for slot, t in zip(st.outs, st.spec.outputs):
            if slot >= 0 and t is not None:
                types[slot] = t
    return types


def plan_sizes(plan: Any, alignment: int = DEFAULT_ALIGNMENT) -> tuple[dict[int, int], list[int]]:
    """``({slot: aligned bytes}, dynamic)``: sizes of the written slots whose shape is static,
    and the slots whose shape is not (those cannot be planned ahead; the session allocates them
    per run)."""
    sizes, dynamic = {}, []
    types = plan_types(plan)
    for slot in liveness(plan):
        dtype, shape = types.get(slot, (None, None))
        shape = static_shape(shape)
        if dtype is None or shape is None:
            dynamic.append(slot)
        else:
            sizes[slot] = tensor_bytes(dtype, shape, alignment)
    return sizes, dynamic
