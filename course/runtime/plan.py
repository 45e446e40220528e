"""An execution plan: the graph flattened into steps over numbered slots, built once per session.

Running is then a tight loop: fetch the step's input slots, call its kernel with attributes
resolved at build time (or the function its op prepared for that node, ``Op.prepare``: attributes
bound, set-up kept from call to call), store the outputs, and drop every slot this step was the last reader of
(so intermediates are freed as soon as possible). A memory planner would add, per slot, an offset
in one arena; the loop would stay the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from course.errors import EngineError, KernelError
from course.ir.graph import Graph, Node, Value
from course.ir.infer import bind, node_prefix, with_node


@dataclass(frozen=True)
class Step:
    node: Node
    fn: Callable[..., Any]
    ins: tuple[int, ...]  # slot of each input; -1 = omitted optional input
    outs: tuple[int, ...]  # slot of each output; -1 = omitted optional output
    attrs: dict[str, Any]  # the node's attributes, as compute takes them
    kwargs: dict[str, Any]  # what fn is called with besides the inputs: attrs, or none for a prepared fn
    expect: tuple[tuple[np.dtype, Optional[tuple[int, ...]]], ...]  # per output: dtype, static shape
    free: tuple[int, ...]  # slots nobody reads after this step


@dataclass
class Plan:
    steps: list[Step]
    num_slots: int
    constants: dict[int, np.ndarray]  # slot -> initializer payload (a feed may replace an overridable one)
    slot_of: dict[str, int]  # value name -> slot, for inputs and outputs
    value_names: list[str]  # slot -> name of the value it holds (for messages and lessons)


def build_plan(graph: Graph, custom_kernels: Optional[dict[str, Callable]] = None) -> Plan:
    """Flatten a verified, type-inferred graph. ``custom_kernels`` maps op type -> compute fn."""
    custom = custom_kernels or {}
    slot: dict[int, int] = {}

    def slot_for(v: Value) -> int:
        return slot.setdefault(id(v), len(slot))

    for v in graph.values():
        slot_for(v)
    last_read = _last_reads(graph, slot)
    keep = {slot[id(v)] for v in graph.outputs}
    bound = [bind(graph, node) for node in graph.nodes]
    hints: dict[int, dict[str, Any]] = {}
    for op in {type(op): op for op, _ in bound}.values():
        hints.update(op.plan_hints(graph, custom))
    steps = []
    for i, node in enumerate(graph.nodes):
        op, attrs = bound[i]
        if getattr(op, "wants_num_outputs", False):
            attrs["_num_outputs"] = len(node.outputs)
        fn = custom.get(node.op_type) if not node.domain else None
        kwargs = attrs
        if fn is None:
            attrs.update(hints.get(id(node), {}))
            fn = op.prepare(node, dict(attrs))
            kwargs = {} if fn is not None else attrs
        outs = tuple(-1 if v is None else slot[id(v)] for v in node.outputs)
        dead = [s for s in outs if s >= 0 and last_read.get(s, -1) < i]  # produced, never read
        free = [s for s, last in last_read.items() if last == i] + dead
        steps.append(Step(
            node=node, fn=fn or op.compute, attrs=attrs, kwargs=kwargs,
            ins=tuple(-1 if v is None else slot[id(v)] for v in node.inputs), outs=outs,
            expect=tuple(_expect(v) for v in node.outputs),
            free=tuple(sorted(s for s in set(free) if s not in keep)),
        ))
    constants = {slot[id(v)]: _snapshot(v.const_value) for v in graph.initializers.values()}
    names = {v.name: slot[id(v)] for v in [*graph.inputs, *graph.outputs, *graph.initializers.values()]}
    return Plan(steps, len(slot), constants, names, [v.name for v in graph.values()])


def _snapshot(arr: np.ndarray) -> np.ndarray:
    """A read-only copy: like onnxruntime, a session owns its weights, so later writes to the
    model's arrays do not reach it, and kernels may keep data derived from them (a rearranged
    Conv weight) for as long as the array lives."""
    if not isinstance(arr, np.ndarray):
        return arr
    arr = np.array(arr, copy=True)
    arr.flags.writeable = False
    return arr


def _last_reads(graph: Graph, slot: dict[int, int]) -> dict[int, int]:
    """slot -> index of the last step that reads it."""
    last: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v is not None:
                last[slot[id(v)]] = i
    return last


def _expect(v: Optional[Value]):
    if v is None or v.type is None:
        return (None, None)
    return (v.type.dtype, tuple(v.type.shape) if v.type.is_static else None)


def execute(plan: Plan, slots: list) -> list:
    """Run every step over ``slots`` (inputs and constants already placed); returns ``slots``."""
    for st in plan.steps:
        args = [slots[i] if i >= 0 else None for i in st.ins]
        try:
            out = st.fn(*args, **st.kwargs)
        except EngineError as e:
            raise with_node(st.node, e) from None
        except Exception as e:
            raise KernelError(f"{node_prefix(st.node)}kernel failed: {type(e).__name__}: {e}") from e
        if type(out) is not tuple:
            out = (out,)
        if len(out) < len(st.outs):
            raise KernelError(f"{node_prefix(st.node)}kernel returned {len(out)} output(s), "
                              f"the node needs {len(st.outs)}")
        for s, arr, (dtype, shape) in zip(st.outs, out, st.expect):
            if s < 0:
                continue
            if type(arr) is not np.ndarray or arr.dtype != dtype or (shape is not None and arr.shape != shape):
                arr = _check_output(st.node, arr, dtype, shape)
            slots[s] = arr
        for s in st.free:
            slots[s] = None
    return slots


def _check_output(node: Node, arr, dtype, shape) -> np.ndarray:
    """Slow path of the output check: accept numpy scalars, explain anything else."""
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    if not isinstance(arr, np.ndarray):
        raise KernelError(f"{node_prefix(node)}kernel returned {type(arr).__name__}, not a numpy array")
    if dtype is not None and arr.dtype != dtype:
        raise KernelError(f"{node_prefix(node)}kernel returned dtype {arr.dtype}, expected {dtype}")
    if shape is not None and arr.shape != shape:
        raise KernelError(f"{node_prefix(node)}kernel returned shape {arr.shape}, expected {shape}")
    return arr
