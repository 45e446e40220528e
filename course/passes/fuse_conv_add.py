"""``FuseConvAdd``: Conv -> Add(residual) [-> Relu / Clip / LeakyRelu] becomes one FusedConv.

This is the residual connection of ResNet (Conv -> Add(skip) -> Relu) and of MobileNetV2's
linear bottlenecks (Conv -> Add(skip)). The skip tensor becomes FusedConv's fourth input Z:
bias, residual and activation are then one pass over the convolution's fresh output, instead
of an Add that writes a new tensor and an activation that reads it again. Addition commutes
exactly in floating point, so the result is bit for bit that of the separate nodes.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, only_reader, take_over
from course.passes.fuse_conv_activation import DOMAIN, DOMAIN_VERSION, FuseConvActivation


class FuseConvAdd(Pass):
    # pattern:   s = Add(Conv(x, W[, B]), z)   (or Add(z, Conv(...)));   y = Act(s) optionally
    # rewrite:   y = course.FusedConv(x, W, B, z, activation="Act" | "Identity", activation_params)

    def call(self, graph: Graph) -> PassResult:
        if {"Conv", "Add"} & self.protected:
            return PassResult(graph, False)
        namer = None
        modified = False
        for add in graph.nodes:
            conv = self.match(graph, add)
            if conv is None:
                continue
            act, params = self.activation(graph, add)
            namer = namer or Namer(graph)
            self.rewrite(graph, conv, add, act, params, namer)
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def match(graph: Graph, add: Node) -> Optional[Node]:
        """The Conv feeding ``add`` whose output nothing else reads; the last such input wins (the
        residual branch, which comes second in the course models)."""
        if add.op_type != "Add" or add.domain or add.graph is not graph or len(add.inputs) != 2:
            return None
        a, b = add.inputs
        if a is None or b is None or a is b:
            return None
        for v in (b, a):
            conv = v.producer()
            if conv is not None and conv.op_type == "Conv" and not conv.domain and only_reader(graph, v) is add:
                return conv
        return None

    def activation(self, graph: Graph, add: Node) -> tuple[Optional[Node], list[float]]:
        """The activation node that alone reads the Add's output, with its parameters, if any."""
        act = only_reader(graph, add.outputs[0])
        if act is None or act.op_type not in ("Relu", "Clip", "LeakyRelu") or act.domain \
                or act.op_type in self.protected or act.inputs[0] is not add.outputs[0]:
            return None, []
        params = FuseConvActivation.activation_params(graph, act)
        return (act, params) if params is not None else (None, [])

    @staticmethod
    def rewrite(graph: Graph, conv: Node, add: Node, act: Optional[Node], params: list[float],
                namer: Namer) -> None:
        y = conv.outputs[0]
        z = add.inputs[1] if add.inputs[0] is y else add.inputs[0]
        x, w = conv.inputs[0], conv.inputs[1]
        b = conv.inputs[2] if len(conv.inputs) > 2 else None
        last = act if act is not None else add
        fused = Node("FusedConv", [x, w, b, z], [Value(namer(f"{last.outputs[0].name}_fused"))],
                     attrs={**conv.attrs, "activation": act.op_type if act else "Identity",
                            "activation_params": params},
                     name=conv.name, domain=DOMAIN)
        graph.opset_imports.setdefault(DOMAIN, DOMAIN_VERSION)
        graph.insert_before(last, fused)
        take_over(graph, last.outputs[0], fused.outputs[0])
        for node in (act, add, conv):
            if node is not None:
                graph.remove(node)
