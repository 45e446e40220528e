"""Run one node, or a whole graph, with the reference ops: the oracle passes are checked against.

Constant folding computes a node with ``run_node``; tests and lessons check that a rewritten
graph still computes what the original did with ``run_graph``, which needs no session, no
provider and no plan: just each op's plain numpy ``compute`` in node order.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from course.ir.graph import Graph, Node
from course.ops import registry


def run_node(graph: Graph, node: Node, args: Sequence[Optional[np.ndarray]]) -> tuple[np.ndarray, ...]:
    """``node``'s outputs for input arrays ``args`` (None for an omitted input), computed by the
    reference op of the graph's opset; one array per declared output."""
    op = registry.lookup(node.op_type, graph.opset(node.domain) or 1, node.domain)
    attrs = op.resolve_attrs(node.attrs)
    if getattr(op, "wants_num_outputs", False):
        attrs["_num_outputs"] = len(node.outputs)
    out = op.compute(*args, **attrs)
    return out if isinstance(out, tuple) else (out,)


def run_graph(graph: Graph, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The graph's outputs for ``feeds`` (by input name), computed node by node in order."""
    env = {id(v): v.const_value for v in graph.initializers.values()}
    for v in graph.inputs:
        if v.name in feeds:
            env[id(v)] = np.asarray(feeds[v.name])
        elif id(v) not in env:
            raise KeyError(f"no feed for graph input {v.name!r}")
    for node in graph.nodes:
        args = [None if v is None else env[id(v)] for v in node.inputs]
        for v, r in zip(node.outputs, run_node(graph, node, args)):
            if v is not None:
                env[id(v)] = r
    return [env[id(v)] for v in graph.outputs]
