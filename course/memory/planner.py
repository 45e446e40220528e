"""A runtime plan's memory, planned in one call: liveness, sizes, optional in-place merging and
workspaces, a placement, and the validator's check. The session (and the report) use this."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable, Mapping, Optional, Sequence, Union

from course.memory.alias_into import merge_into, plan_concat_candidates, with_chunks
from course.memory.bound import lower_bound
from course.memory.inplace import plan_merge_inplace, with_aliases
from course.memory.liveness import Interval, liveness, plan_sizes, plan_steps
from course.memory.place import Strategy, place, strategy_name
from course.memory.sizes import DEFAULT_ALIGNMENT
from course.memory.validate import arena_bytes, validate
from course.memory.workspace import add_workspaces


@dataclass
class MemoryPlan:
    """Where each planned tensor of a plan lives in one arena (tensor = slot, or
    ``("workspace", step)``)."""

    strategy: str
    alignment: int
    intervals: dict[Hashable, Interval]  # what was placed (in-place pairs merged)
    sizes: dict[Hashable, int]
    offsets: dict[Hashable, int]  # every planned tensor, merged ones included
    alias: dict[Hashable, Hashable] = field(default_factory=dict)  # in-place: dst -> tensor it shares
    within: dict[Hashable, tuple] = field(default_factory=dict)  # concat in place: chunk -> (container, bytes in)
    dynamic: list[int] = field(default_factory=list)  # slots without a static shape: not planned

    @property
    def arena_bytes(self) -> int:
        return arena_bytes(self.offsets, self.sizes)

    @property
    def lower_bound_bytes(self) -> int:
        return lower_bound(self.intervals, self.sizes)


def plan_memory(plan: Any, strategy: Strategy = "best", alignment: int = DEFAULT_ALIGNMENT,
                inplace: bool = False, workspaces: Optional[Mapping[int, int]] = None,
                exclude: Iterable[int] = (), concat: Union[bool, Sequence] = False) -> MemoryPlan:
    """Plan a runtime ``plan``'s intermediates and outputs into one arena, and validate it.

    ``inplace`` lets elementwise steps write over an input that dies there; ``workspaces`` is
    ``{step: scratch bytes}`` (``plan_workspaces(plan)`` estimates im2col scratch); slots in
    ``exclude`` stay out of the arena (a session keeps its graph outputs out, for one);
    ``concat`` lets a Concat's inputs live inside its output (course.memory.alias_into): True for
    ``plan_concat_candidates(plan)``, or the candidates themselves.
    ``strategy``: a name from ``STRATEGIES`` or a placement function (course.memory.place).
    """
    sizes, dynamic = plan_sizes(plan, alignment)
    exclude = set(exclude)
    sizes = {s: n for s, n in sizes.items() if s not in exclude}
    intervals = {s: iv for s, iv in liveness(plan).items() if s in sizes}
    alias: dict = {}
    if inplace:
        intervals, alias = plan_merge_inplace(plan, intervals, sizes)
    full, within = intervals, {}
    if concat:
        cands = plan_concat_candidates(plan) if concat is True else concat
        intervals, within = merge_into(plan_steps(plan), intervals, sizes, cands, alignment, alias)
    intervals, sizes = add_workspaces(intervals, sizes, workspaces or {}, alignment)
    offsets = with_chunks(place(intervals, sizes, strategy), within)
    full = {**full, **{t: iv for t, iv in intervals.items() if t not in full}}  # the workspaces too
    validate(full, sizes, offsets, alignment, names=tensor_names(plan, full), within=within)
    return MemoryPlan(strategy_name(strategy), alignment, intervals, sizes, with_aliases(offsets, alias), alias,
                      dynamic=dynamic, within=within)


def tensor_names(plan: Any, tensors) -> dict[Hashable, str]:
    """A readable name per tensor: the value's name for a slot, ``workspace of <node>`` else."""
    out = {}
    for t in tensors:
        if isinstance(t, tuple):
            out[t] = f"workspace of {plan.steps[t[1]].spec.name}"
        else:
            out[t] = plan.value_names[t]
    return out
