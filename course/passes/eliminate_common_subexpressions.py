"""``EliminateCommonSubexpressions``: two nodes with the same op, domain, attributes and inputs
compute the same thing; the later one goes and its readers read the earlier one's outputs.

Inputs are compared by identity (the same Value), so equal small initializers are merged first
(two Reshapes reading two copies of the same shape constant are then duplicates too). Walking
the nodes in order, a duplicate's inputs are already canonical, so chains of duplicates
(two identical Conv -> Relu branches) collapse in one pass.
"""
from __future__ import annotations

from typing import Any, Hashable, Optional

import numpy as np

from course.ir.graph import Graph, Node, Value
from course.passes.base import Pass, PassResult, constant, drop_unused_initializers, is_output
from course.passes.fold_constants import NONDETERMINISTIC, SMALL


class EliminateCommonSubexpressions(Pass):
    # pattern:   y1 = Op[attrs](a, b);  ...;  y2 = Op[attrs](a, b)
    # rewrite:   readers of y2 read y1

    def call(self, graph: Graph) -> PassResult:
        modified = self.merge_constants(graph)
        seen: dict[Hashable, Node] = {}
        for node in graph.nodes:
            if node.op_type in self.protected or node.op_type in NONDETERMINISTIC:
                continue
            key = self.key(node)
            first = seen.setdefault(key, node)
            if first is node or self.check(graph, first, node) is not None:
                continue
            for old, new in zip(node.outputs, first.outputs):
                if old is not None:
                    graph.replace_all_uses_with(old, new)
            graph.remove(node)
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def key(node: Node) -> Hashable:
        return (node.op_type, node.domain, _freeze(node.attrs), tuple(id(v) for v in node.inputs),
                tuple(v is None for v in node.outputs))

    @staticmethod
    def check(graph: Graph, first: Node, dup: Node) -> Optional[str]:
        """Why ``dup`` cannot be replaced by ``first`` (None when it can)."""
        if any(is_output(graph, v) for v in dup.outputs if v is not None):
            return "an output of the duplicate is a graph output (its name must stay)"
        return None

    @staticmethod
    def merge_constants(graph: Graph) -> bool:
        """Point readers of equal small initializers (dtype, shape and bytes) at the first one."""
        seen: dict[Hashable, Value] = {}
        merged = []
        for v in list(graph.initializers.values()):
            c = constant(graph, v)
            if c is None or c.size > SMALL or is_output(graph, v):
                continue
            first = seen.setdefault((c.dtype.str, c.shape, c.tobytes()), v)
            if first is not v and v.uses():
                graph.replace_all_uses_with(v, first)
                merged.append(v)
        drop_unused_initializers(graph, merged)
        return bool(merged)


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for an attribute value (lists, numpy tensors, nested graphs by id)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (int, float, str, bytes, bool, type(None), np.generic)):
        return (type(value).__name__, value)
    return ("object", id(value))
