"""``EliminateIdentity``: drop Identity nodes, and Dropout nodes (an identity in inference).

Readers of the node's output read its input instead. When the output is a graph output, the
input's producer takes the output's name (the model keeps its interface); that is impossible
when the input is itself a graph input, an initializer or another graph output, so such a node
stays. A Dropout stays when its mask is used or its ``training_mode`` is not a constant false.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.passes.base import Pass, PassResult, constant, take_over


class EliminateIdentity(Pass):
    # pattern:   y = Identity(x)  |  y = Dropout(x[, ratio[, training_mode=false]])
    # rewrite:   readers of y read x

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for node in graph.nodes:
            if node.op_type not in ("Identity", "Dropout") or node.domain or node.op_type in self.protected:
                continue
            if self.check(graph, node) is None:
                self.rewrite(graph, node)
                modified = True
        return PassResult(graph, modified)

    @staticmethod
    def check(graph: Graph, node: Node) -> Optional[str]:
        """Why ``node`` must stay (None when it can go)."""
        x, y = node.inputs[0], node.outputs[0]
        if x is None or y is None:
            return "it has no data input or output"
        if any(v is not None and (v.uses() or _is_output(graph, v)) for v in node.outputs[1:]):
            return "its mask output is used"
        if node.op_type == "Dropout" and len(node.inputs) > 2 and node.inputs[2] is not None:
            mode = constant(graph, node.inputs[2])
            if mode is None or bool(mode.reshape(-1)[0]):
                return "training_mode is not a constant false"
        if _is_output(graph, y) and (x.producer() is None or _is_output(graph, x)):
            return "its output is a graph output that its input cannot be renamed to"
        return None

    @staticmethod
    def rewrite(graph: Graph, node: Node) -> None:
        x, y = node.inputs[0], node.outputs[0]
        if _is_output(graph, y):
            take_over(graph, y, x)  # x now carries the graph output's name
        else:
            graph.replace_all_uses_with(y, x)
        graph.remove(node)


def _is_output(graph: Graph, v: Value) -> bool:
    return any(o is v for o in graph.outputs)
