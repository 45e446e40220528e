"""Parts of your own plugged into a session: the seams lessons 06, 09 and 12 (and the capstone)
use to run a learner's scheduler, planner, dispatcher and interpreter *inside* the engine.

- ``scheduler(nodes) -> [node name, ...]``: the order the plan runs the nodes in. ``nodes`` are
  lesson 06's dict-of-nodes (``{"name", "op_type", "inputs", "outputs", "attrs"}``, value names,
  ``""`` for an omitted optional input) in the graph's current order.
- ``partitioner(specs, providers) -> {node name: provider name}``: lesson 12's dispatcher, given
  one ``NodeSpec`` per node and the session's providers (the reference fallback included).
- ``planner(intervals, sizes) -> {tensor: offset}``: a placement (lesson 09), used for the arena
  (course.memory.place; the validator checks it before any run).
- ``interpreter(program, feeds, kernels) -> [outputs]``: the run loop (lesson 06's ``run_graph``),
  given the plan as a dict-of-nodes ``program`` (``nodes`` in plan order, ``inputs``,
  ``outputs``, ``initializers``, ``opset``) and ``kernels``: ``{node name: fn}``, each ``fn(*inputs)``
  the node's kernel from its provider with its attributes bound.

Every answer is checked; one the engine cannot use raises ``HookError`` naming the hook and the
node, before anything runs (or, for the interpreter, when a run returns).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from course.errors import EngineError, HookError
from course.ir.graph import Graph, Node
from course.providers.base import ExecutionProvider, NodeSpec


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


# --- scheduler ------------------------------------------------------------------------------------
def node_dicts(graph: Graph) -> list[dict]:
    """The graph's nodes as lesson 06's dicts, in the graph's order."""
    return [{"name": n.name, "op_type": n.op_type, "inputs": [v.name if v is not None else "" for v in n.inputs],
             "outputs": [v.name if v is not None else "" for v in n.outputs], "attrs": dict(n.attrs)}
            for n in graph.nodes]


def schedule(graph: Graph, scheduler: Callable[[list], Sequence[str]]) -> None:
    """Put ``graph``'s nodes in the order ``scheduler`` returns, after checking it is a
    permutation of the node names in which every value is made before it is read."""
    by_name = {n.name: n for n in graph.nodes}
    order = scheduler(node_dicts(graph))
    who = f"scheduler {_name(scheduler)!r}"
    if isinstance(order, (str, bytes)) or not isinstance(order, Sequence):
        raise HookError(f"{who} returned {type(order).__name__}, not a list of node names")
    unknown = [n for n in order if n not in by_name]
    if unknown:
        raise HookError(f"{who} returned {unknown[0]!r}, which is not a node of the graph")
    if len(order) != len(by_name) or len(set(order)) != len(order):
        left = sorted(set(by_name) - set(order))
        twice = sorted({n for n in order if order.count(n) > 1})
        raise HookError(f"{who} must name every node once: " +
                        (f"missing {left[:3]}" if left else f"named twice {twice[:3]}"))
    _check_order([by_name[n] for n in order], graph, who)
    graph.reorder([by_name[n] for n in order])


def _check_order(nodes: list[Node], graph: Graph, who: str) -> None:
    made = {id(v) for v in graph.inputs} | {id(v) for v in graph.initializers.values()}
    for n in nodes:
        for v in n.inputs:
            if v is not None and id(v) not in made:
                raise HookError(f"{who} runs node {n.name!r} ({n.op_type}) before its input {v.name!r} is made")
        made.update(id(v) for v in n.outputs if v is not None)


# --- partitioner ----------------------------------------------------------------------------------
def assign(graph: Graph, specs: Mapping[int, NodeSpec], providers: Sequence[ExecutionProvider],
           partitioner: Callable) -> dict[int, ExecutionProvider]:
    """``{id(node): provider}`` as ``partitioner`` decides; each node must go to a listed
    provider that claims it."""
    by_name = {p.name: p for p in providers}
    who = f"partitioner {_name(partitioner)!r}"
    answer = partitioner([specs[id(n)] for n in graph.nodes], list(providers))
    if not isinstance(answer, Mapping):
        raise HookError(f"{who} returned {type(answer).__name__}, not a dict {{node name: provider name}}")
    owner = {}
    for n in graph.nodes:
        where = answer.get(n.name)
        if where is None:
            raise HookError(f"{who} gave node {n.name!r} ({n.op_type}) no provider")
        p = by_name.get(getattr(where, "name", where))
        if p is None:
            raise HookError(f"{who} gave node {n.name!r} ({n.op_type}) to {where!r}, which is not one of "
                            f"the session's providers {list(by_name)}")
        if not p.claims(specs[id(n)]):
            raise HookError(f"{who} gave node {n.name!r} ({n.op_type}) to {p.name}, which cannot run it")
        owner[id(n)] = p
    return owner


# --- interpreter ----------------------------------------------------------------------------------
def program(plan: Any) -> dict:
    """A plan as lesson 06's dict-of-nodes graph, in plan order (initializers: the constants)."""
    names = plan.value_names
    slot_name = lambda s: names[s] if s >= 0 else ""  # noqa: E731
    nodes = [{"name": st.spec.name, "op_type": st.spec.op_type, "domain": st.spec.domain,
              "inputs": [slot_name(s) for s in st.ins], "outputs": [slot_name(s) for s in st.outs],
              "attrs": dict(st.spec.attrs)} for st in plan.steps]
    opset = next((st.spec.opset for st in plan.steps if st.spec.domain in ("", "ai.onnx")), None)
    return {"nodes": nodes, "initializers": {names[s]: a for s, a in plan.constants.items()},
            "opset": opset}


def interpret(bound: Any, interpreter: Callable, feeds: Mapping[str, Any], output_names: Sequence[str],
              graph_inputs: Sequence[str], graph_outputs: Sequence[str]) -> list:
    """Run ``bound``'s plan through ``interpreter(program, feeds, kernels)``; the outputs it
    returns (one per graph output, in order) are checked, and ``output_names`` picked from them."""
    from course.runtime.execute import _failed, _paused, _running

    steps, kernels = bound.plan.steps, {}
    ours = [p for p in bound.providers if not p.isolated]
    for st, fn, isolated in zip(steps, bound.kernels, bound.isolated):
        kernels[st.spec.name] = _node_kernel(st.spec, fn, ours if isolated else [], _failed, _paused)
    prog = {**program(bound.plan), "inputs": list(graph_inputs), "outputs": list(graph_outputs)}
    who = f"interpreter {_name(interpreter)!r}"
    with _running(bound.providers):  # as the session's own loop: the providers' run state on
        got = interpreter(prog, dict(feeds), kernels)
    if not isinstance(got, (list, tuple)) or len(got) != len(graph_outputs):
        raise HookError(f"{who} must return a list with one array per graph output {list(graph_outputs)}, "
                        f"got {type(got).__name__}" + (f" of length {len(got)}" if hasattr(got, "__len__") else ""))
    by_name = dict(zip(graph_outputs, got))
    return [by_name[n] for n in output_names]


def _node_kernel(spec: NodeSpec, fn: Callable, pause: list, failed: Callable, paused: Callable) -> Callable:
    """``fn`` as an interpreter calls it: inputs only, errors naming the node, the other
    providers paused around an isolated one's kernel (as the session's own loop does)."""
    def kernel(*inputs):
        try:
            return paused(pause, fn, list(inputs)) if pause else fn(*inputs)
        except Exception as e:
            raise failed(spec, e) from (None if isinstance(e, EngineError) else e)
    kernel.__name__ = f"kernel_{spec.op_type}"
    return kernel
