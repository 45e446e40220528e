"""``FuseConvActivation``: Conv -> Relu / Clip (constant bounds) / LeakyRelu becomes one FusedConv.

The activation then runs in place on the convolution's fresh output: one pass over the tensor
instead of a second full-size array and a second node dispatch. FusedConv lives in the "course"
domain (course/ops/fused_conv.py), so the pass adds ``course`` version 1 to the opset imports.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, only_reader, take_over

DOMAIN, DOMAIN_VERSION = "course", 1
FLOAT_MAX = 3.4028234663852886e38  # Clip's default bounds in opsets 6-10


class FuseConvActivation(Pass):
    # pattern:   y = Act(Conv(x, W[, B]))        Act in Relu | Clip(min, max constant) | LeakyRelu
    # rewrite:   y = course.FusedConv(x, W[, B], activation="Act", activation_params=[...])

    def call(self, graph: Graph) -> PassResult:
        if "Conv" in self.protected:
            return PassResult(graph, False)
        namer = None
        modified = False
        for act in graph.nodes:
            conv = self.match(graph, act)
            if conv is None:
                continue
            params = self.activation_params(graph, act)
            if params is None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, conv, act, params, namer)
            modified = True
        return PassResult(graph, modified)

    def match(self, graph: Graph, act: Node) -> Optional[Node]:
        """The Conv whose output only ``act`` reads, if ``act`` is an activation we can fuse."""
        if act.op_type not in ("Relu", "Clip", "LeakyRelu") or act.domain or act.op_type in self.protected:
            return None
        x = act.inputs[0] if act.graph is graph and act.inputs else None
        conv = x.producer() if x is not None else None
        if conv is None or conv.op_type != "Conv" or conv.domain or only_reader(graph, x) is not act:
            return None
        return conv

    @staticmethod
    def activation_params(graph: Graph, act: Node) -> Optional[list[float]]:
        """FusedConv's ``activation_params`` for ``act``; None if they are not compile-time constants."""
        if act.op_type == "Relu":
            return []
        if act.op_type == "LeakyRelu":
            return [float(act.attrs.get("alpha", 0.01))]
        if (graph.opset("") or 0) < 11:  # bounds are attributes
            return [float(act.attrs.get("min", -FLOAT_MAX)), float(act.attrs.get("max", FLOAT_MAX))]
        bounds = []
        for i, default in ((1, float("-inf")), (2, float("inf"))):
            v = act.inputs[i] if len(act.inputs) > i else None
            c = constant(graph, v)
            if v is not None and (c is None or c.size != 1):
                return None  # a bound computed at run time (or fed) cannot become an attribute
            bounds.append(default if v is None else float(c.reshape(-1)[0]))
        return bounds

    def rewrite(self, graph: Graph, conv: Node, act: Node, params: list[float], namer: Namer) -> None:
        fused = Node("FusedConv", conv.inputs, [Value(namer(f"{act.outputs[0].name}_fused"))],
                     attrs={**conv.attrs, "activation": act.op_type, "activation_params": params},
                     name=conv.name, domain=DOMAIN)
        graph.opset_imports.setdefault(DOMAIN, DOMAIN_VERSION)
        graph.insert_before(act, fused)
        take_over(graph, act.outputs[0], fused.outputs[0])
        graph.remove(act)
        graph.remove(conv)
