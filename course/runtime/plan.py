"""An execution plan: the graph flattened into steps over numbered slots, as plain data.

Each step records the provider that runs it, its node as a ``NodeSpec`` (op, opset, attributes,
input/output types, layout marks) and its input/output slots; ``free`` lists the slots nobody
reads after it, so intermediates are dropped as soon as possible. A plan holds no Node and no
function: ``to_dict``/``from_dict`` round-trip it through JSON-able data (the engine files and
the memory planner of later lessons use that), and ``bind`` turns it into a ``BoundPlan`` by
asking each step's provider for its kernel (and its destination-passing form, when it has one).
``arena`` is where the planned slots live in one buffer (course/runtime/arena.py), or None.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from course.ir.graph import Graph
from course.providers.base import ExecutionProvider, NodeSpec
from course.runtime import plan_data
from course.runtime.arena import ArenaLayout


@dataclass(frozen=True)
class Step:
    provider: str
    spec: NodeSpec
    ins: tuple[int, ...]  # slot of each input; -1 = omitted optional input
    outs: tuple[int, ...]  # slot of each output; -1 = omitted optional output
    free: tuple[int, ...]  # slots nobody reads after this step


@dataclass
class Plan:
    steps: list[Step]
    num_slots: int
    constants: dict[int, Any]  # slot -> initializer payload (a feed may replace an overridable one)
    slot_of: dict[str, int]  # value name -> slot, for inputs, outputs and initializers
    value_names: list[str]  # slot -> name of the value it holds (for messages and lessons)
    arena: Optional[ArenaLayout] = None  # the planned slots' places in one arena (None: not planned)

    def to_dict(self) -> dict:
        """JSON-able data (arrays as dtype, shape and base64 bytes)."""
        return plan_data.plan_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "Plan":
        steps, rest = plan_data.plan_from_dict(data)
        return cls([Step(**s) for s in steps], **rest)


@dataclass
class BoundPlan:
    """A plan with a kernel per step: what ``execute`` runs."""

    plan: Plan
    kernels: list[Callable[..., Any]]
    providers: list[ExecutionProvider]  # each provider with at least one step, in session order
    isolated: list[bool]  # per step: its provider is isolated (the others pause around it)
    expect: list[tuple]  # per step, per output: (dtype, static shape or None), checked after each call
    into: Optional[list] = None  # per step: the kernel's destination-passing form, or None


def build_plan(graph: Graph, specs: Mapping[int, NodeSpec], owner: Mapping[int, ExecutionProvider]) -> Plan:
    """Flatten a verified, type-inferred ``graph``; ``specs`` and ``owner`` are keyed by id(node)."""
    slot: dict[int, int] = {}
    for v in graph.values():
        slot.setdefault(id(v), len(slot))
    last_read: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v is not None:
                last_read[slot[id(v)]] = i
    keep = {slot[id(v)] for v in graph.outputs}
    steps = []
    for i, node in enumerate(graph.nodes):
        outs = tuple(-1 if v is None else slot[id(v)] for v in node.outputs)
        dead = [s for s in outs if s >= 0 and last_read.get(s, -1) < i]  # produced, never read
        free = {s for s, last in last_read.items() if last == i} | set(dead)
        steps.append(Step(provider=owner[id(node)].name, spec=specs[id(node)],
                          ins=tuple(-1 if v is None else slot[id(v)] for v in node.inputs), outs=outs,
                          free=tuple(sorted(free - keep))))
    constants = {slot[id(v)]: plan_data.snapshot(v.const_value) for v in graph.initializers.values()}
    names = {v.name: slot[id(v)] for v in [*graph.inputs, *graph.outputs, *graph.initializers.values()]}
    return Plan(steps, len(slot), constants, names, [v.name for v in graph.values()])


def bind(plan: Plan, providers: Mapping[str, ExecutionProvider]) -> BoundPlan:
    """Ask each step's provider for its kernel. ``providers`` maps names to provider objects."""
    missing = sorted({st.provider for st in plan.steps} - set(providers))
    if missing:
        raise ValueError(f"the plan needs execution provider(s) {missing}, which this session lacks")
    kernels = [providers[st.provider].kernel(st.spec) for st in plan.steps]
    into = [providers[st.provider].kernel_into(st.spec) for st in plan.steps]
    used = list(dict.fromkeys(providers[st.provider] for st in plan.steps))
    return BoundPlan(plan, kernels, used, [providers[st.provider].isolated for st in plan.steps],
                     [tuple(_expect(t) for t in st.spec.outputs) for st in plan.steps], into)


def _expect(t):
    if t is None:
        return (None, None)
    dtype, shape = t
    static = shape is not None and all(isinstance(d, int) for d in shape)
    return (dtype, tuple(shape) if static else None)
