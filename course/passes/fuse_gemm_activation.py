"""``FuseGemmActivation``: Gemm -> Relu / Sigmoid / Tanh / LeakyRelu / Clip (constant bounds)
becomes one FusedGemm, onnxruntime's GemmActivationFusion.

A classifier's hidden layers (VGG's, an MLP's) are Gemm then an activation; fused, the
activation is the GEMM's epilogue: one node and no second full-size intermediate. FusedGemm lives
in the "course" domain (course/ops/fused_gemm.py), so the pass adds ``course`` version 1 to the
opset imports, as the Conv fusions do.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, only_reader, take_over
from course.passes.fuse_conv_activation import FuseConvActivation

DOMAIN, DOMAIN_VERSION = "course", 1
ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip")


class FuseGemmActivation(Pass):
    # pattern:   y = Act(Gemm(A, B[, C]))        Act in ACTIVATIONS, Clip's bounds constant
    # rewrite:   y = course.FusedGemm(A, B[, C], activation="Act", activation_params=[...])

    def call(self, graph: Graph) -> PassResult:
        if "Gemm" in self.protected:
            return PassResult(graph, False)
        namer = None
        modified = False
        for act in graph.nodes:
            gemm = self.match(graph, act)
            if gemm is None:
                continue
            params = self.activation_params(graph, act)
            if params is None:
                continue  # Clip with a bound known only at run time
            namer = namer or Namer(graph)
            self.rewrite(graph, gemm, act, params, namer)
            modified = True
        return PassResult(graph, modified)

    def match(self, graph: Graph, act: Node) -> Optional[Node]:
        """The Gemm whose output only ``act`` reads, if ``act`` is an activation we can fuse."""
        if act.op_type not in ACTIVATIONS or act.domain or act.op_type in self.protected:
            return None
        x = act.inputs[0] if act.graph is graph and act.inputs else None
        gemm = x.producer() if x is not None else None
        if gemm is None or gemm.op_type != "Gemm" or gemm.domain or only_reader(graph, x) is not act:
            return None
        return gemm

    @staticmethod
    def activation_params(graph: Graph, act: Node) -> Optional[list[float]]:
        """FusedGemm's ``activation_params`` for ``act`` (the Conv fusion's rule; none for Sigmoid
        and Tanh); None if they are not compile-time constants."""
        if act.op_type in ("Sigmoid", "Tanh"):
            return []
        return FuseConvActivation.activation_params(graph, act)

    def rewrite(self, graph: Graph, gemm: Node, act: Node, params: list[float], namer: Namer) -> None:
        fused = Node("FusedGemm", gemm.inputs, [Value(namer(f"{act.outputs[0].name}_fused"))],
                     attrs={**gemm.attrs, "activation": act.op_type, "activation_params": params},
                     name=gemm.name, domain=DOMAIN)
        graph.opset_imports.setdefault(DOMAIN, DOMAIN_VERSION)
        graph.insert_before(act, fused)
        take_over(graph, act.outputs[0], fused.outputs[0])
        graph.remove(act)
        graph.remove(gemm)
