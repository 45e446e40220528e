"""``EliminateDeadCode``: drop nodes whose outputs nothing needs, and initializers nothing reads.

A value is needed if it is a graph output or an input of a needed node; walking the nodes from
last to first, a node none of whose outputs is needed goes (its inputs may then die in turn,
which the same backward walk sees). Graph inputs are the model's interface and stay even when
unused; only an initializer that is listed among the inputs too (ONNX IR < 4, a feed may
override it) leaves the inputs with its payload, since it only carried a default.
"""
from __future__ import annotations

from course.ir.graph import Graph
from course.passes.base import Pass, PassResult, is_output


class EliminateDeadCode(Pass):
    # pattern:   a node none of whose outputs is a graph output or read by a live node
    # rewrite:   remove it; then remove initializers no node reads

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for node in reversed(graph.nodes):
            if self.check(graph, node) is None:
                graph.remove(node)
                modified = True
        for name, v in list(graph.initializers.items()):
            if v.uses() or is_output(graph, v):
                continue
            del graph.initializers[name]
            graph.inputs = [x for x in graph.inputs if x is not v]  # an initializer-input: a default only
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def check(graph: Graph, node) -> str | None:
        """Why ``node`` is live (None when it is dead). Nodes are visited last to first, so the
        readers of its outputs have already been removed if they were dead."""
        for v in node.outputs:
            if v is None:
                continue
            if is_output(graph, v):
                return f"its output {v.name!r} is a graph output"
            if v.uses():
                return f"its output {v.name!r} is read by {v.uses()[0][0].name!r}"
        return None
