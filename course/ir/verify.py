"""``verify(graph)``: the invariants every pass must keep, checked with messages naming the node.

1. No cycles, and nodes are in topological order (each input is defined before it is read).
2. No dangling values: every input is a graph input, an initializer, or an in-graph node's output;
   every graph output is defined.
3. No duplicate value names and no duplicate (non-empty) node names.
4. With ``check_types``: every value has a type (run ``infer_types`` first).
"""
from __future__ import annotations

from course.errors import DanglingValueError, ModelError
from course.ir.graph import Graph, Node, Value


def describe(node: Node) -> str:
    return f"node {node.name!r} ({node.op_type})"


def verify(graph: Graph, check_types: bool = True) -> None:
    graph._topo_order()  # GraphCycleError names the nodes on a cycle
    _check_names(graph)
    defined = _check_order(graph)
    for out in graph.outputs:
        if id(out) not in defined:
            raise DanglingValueError(f"graph output {out.name!r} is not produced by any node, "
                                     f"nor a graph input or initializer")
    if check_types:
        _check_types(graph)


def _check_names(graph: Graph) -> None:
    seen: dict[str, Value] = {}

    def claim(v: Value, where: str) -> None:
        other = seen.setdefault(v.name, v)
        if other is not v:
            raise ModelError(f"duplicate value name {v.name!r} ({where})")

    for v in graph.inputs:
        claim(v, "graph input")
    for name, v in graph.initializers.items():
        if v.name != name:
            raise ModelError(f"initializer {name!r} is stored under a different name than its value {v.name!r}")
        claim(v, "initializer")
    node_names: set[str] = set()
    for n in graph.nodes:
        if n.name:
            if n.name in node_names:
                raise ModelError(f"duplicate node name {n.name!r} ({n.op_type})")
            node_names.add(n.name)
        for v in n.outputs:
            if v is not None:
                claim(v, f"output of {describe(n)}")


def _check_order(graph: Graph) -> set[int]:
    """Walk nodes in order; return ids of all defined values."""
    defined = {id(v) for v in graph.inputs} | {id(v) for v in graph.initializers.values()}
    in_graph = {id(n) for n in graph.nodes}
    for n in graph.nodes:
        if n.graph is not graph:
            raise ModelError(f"{describe(n)} is listed in the graph but not attached to it")
        for i, v in enumerate(n.inputs):
            if v is None or id(v) in defined:
                continue
            p = v.producer()
            if p is not None and id(p) in in_graph:
                raise ModelError(f"{describe(n)} reads {v.name!r} (input {i}) before {describe(p)} "
                                 f"produces it: nodes are not in topological order (call graph.sort())")
            raise DanglingValueError(f"{describe(n)} reads {v.name!r} (input {i}), which no node in the "
                                     f"graph produces and which is not a graph input or initializer")
        defined.update(id(v) for v in n.outputs if v is not None)
    return defined


def _check_types(graph: Graph) -> None:
    for v in graph.inputs:
        if v.type is None:
            raise ModelError(f"graph input {v.name!r} has no type")
    for n in graph.nodes:
        for v in n.outputs:
            if v is not None and v.type is None:
                raise ModelError(f"output {v.name!r} of {describe(n)} has no type (run graph.infer_types())")
