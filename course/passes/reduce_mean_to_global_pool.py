"""``ReduceMeanToGlobalAveragePool``: ReduceMean over every spatial axis, keepdims=1, becomes
GlobalAveragePool.

Exporters write ``x.mean((2, 3), keepdim=True)`` as a ReduceMean; GlobalAveragePool says the
same thing for an [N, C, spatial...] tensor and has a kernel (and a layout) of its own. The
axes come as an attribute before opset 18 and as an input from 18 on; they must be exactly
2..rank-1 (negative ones counted from the end), so the rank of x must be known.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, infer_quietly, \
    rank, take_over


class ReduceMeanToGlobalAveragePool(Pass):
    # pattern:   y = ReduceMean(x, axes=[2, ..., r-1], keepdims=1)
    # rewrite:   y = GlobalAveragePool(x)

    def call(self, graph: Graph) -> PassResult:
        if {"ReduceMean", "GlobalAveragePool"} & self.protected:
            return PassResult(graph, False)
        infer_quietly(graph)
        namer = None
        modified = False
        for node in graph.nodes:
            if node.op_type != "ReduceMean" or node.domain or self.check(graph, node) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, node, namer)
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def axes(graph: Graph, node: Node) -> Optional[list[int]]:
        if "axes" in node.attrs:
            return [int(a) for a in node.attrs["axes"]]
        c = constant(graph, node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None else None
        return None if c is None else [int(a) for a in c.reshape(-1)]

    def check(self, graph: Graph, node: Node) -> Optional[str]:
        """Why ``node`` is not a global average pool (None when it is)."""
        r = rank(node.inputs[0])
        if r is None or r < 3:
            return "x must be known to have rank 3 or more ([N, C, spatial...])"
        if not node.attrs.get("keepdims", 1):
            return "keepdims=0 drops the spatial axes; GlobalAveragePool keeps them as 1s"
        axes = self.axes(graph, node)
        if axes is None:
            return "the axes are not a constant (or are omitted: that reduces every axis)"
        if sorted(a % r for a in axes) != list(range(2, r)):
            return f"axes {axes} are not exactly the spatial axes 2..{r - 1}"
        return None

    @staticmethod
    def rewrite(graph: Graph, node: Node, namer: Namer) -> None:
        pool = Node("GlobalAveragePool", [node.inputs[0]], [Value(namer(f"{node.outputs[0].name}_gap"))],
                    name=node.name)
        graph.insert_before(node, pool)
        take_over(graph, node.outputs[0], pool.outputs[0])
        inputs = list(node.inputs)
        graph.remove(node)
        drop_unused_initializers(graph, inputs)
