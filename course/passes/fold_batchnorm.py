"""``FoldBatchNorm``: Conv -> BatchNormalization (inference) becomes one Conv with new weights.

In inference BN is a per-channel affine map, y = a * (conv(x, W) + B - mean) + beta with
a = gamma / sqrt(var + eps), and a scales whole output channels, so it folds into the weights:

    W' = W * a   (a broadcast over output channel m)      B' = (B - mean) * a + beta

The new constants are computed in float64 and cast back to W's dtype, so the folded model agrees
with the unfused one to float32 rounding (~1e-6 relative), not to the error of float32 algebra.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, only_reader, \
    take_over


class FoldBatchNorm(Pass):
    # pattern:   y = BatchNormalization(Conv(x, W[, B]), gamma, beta, mean, var)
    # rewrite:   y = Conv(x, W', B')

    def call(self, graph: Graph) -> PassResult:
        if {"Conv", "BatchNormalization"} & self.protected:
            return PassResult(graph, False)
        namer = None
        modified = False
        for bn in graph.nodes:
            conv = self.match(graph, bn)
            if conv is None or self.check(graph, conv, bn) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, conv, bn, namer)
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def match(graph: Graph, bn: Node) -> Optional[Node]:
        """The Conv feeding ``bn`` if ``bn`` is a BatchNormalization reading a Conv's output."""
        if bn.op_type != "BatchNormalization" or bn.domain or bn.graph is not graph or not bn.inputs:
            return None
        x = bn.inputs[0]
        conv = x.producer() if x is not None else None
        if conv is None or conv.op_type != "Conv" or conv.domain:
            return None
        return conv

    @staticmethod
    def check(graph: Graph, conv: Node, bn: Node) -> Optional[str]:
        """Why the pair cannot be folded (None when it can)."""
        if only_reader(graph, conv.outputs[0]) is not bn:
            return "the Conv output has other readers (they need the unnormalized values)"
        if any(v is not None and (v.uses() or any(o is v for o in graph.outputs)) for v in bn.outputs[1:]):
            return "the BatchNormalization's running-statistics outputs are used"
        if bn.attrs.get("training_mode", 0) or bn.attrs.get("spatial", 1) != 1:
            return "the BatchNormalization is not in inference mode with per-channel statistics"
        w = constant(graph, conv.inputs[1])
        if w is None or w.dtype.kind != "f" or w.ndim < 3:
            return "the Conv weights are not a constant float tensor"
        if len(conv.inputs) > 2 and conv.inputs[2] is not None:
            b = constant(graph, conv.inputs[2])
            if b is None or b.shape != (w.shape[0],):
                return "the Conv bias is not a constant of shape (M,)"
        params = [constant(graph, v) for v in bn.inputs[1:5]]
        if len(params) != 4 or any(p is None or p.shape != (w.shape[0],) for p in params):
            return "scale, bias, mean and var are not all constants of shape (M,)"
        return None

    def rewrite(self, graph: Graph, conv: Node, bn: Node, namer: Namer) -> None:
        x, w_val = conv.inputs[0], conv.inputs[1]
        b_val = conv.inputs[2] if len(conv.inputs) > 2 else None
        w = conv.inputs[1].const_value
        gamma, beta, mean, var = (v.const_value.astype(np.float64) for v in bn.inputs[1:5])
        a = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
        b = np.zeros(w.shape[0]) if b_val is None else b_val.const_value.astype(np.float64)
        w_new = (w.astype(np.float64) * a.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        b_new = ((b - mean) * a + beta).astype(w.dtype)
        folded = Node("Conv", [x, graph.add_initializer(namer(f"{w_val.name}_bnfold"), w_new),
                               graph.add_initializer(namer(f"{conv.name}_B_bnfold"), b_new)],
                      [Value(namer(f"{bn.outputs[0].name}_bnfold"))], attrs=conv.attrs, name=conv.name)
        graph.insert_before(bn, folded)
        take_over(graph, bn.outputs[0], folded.outputs[0])
        graph.remove(bn)
        graph.remove(conv)
        drop_unused_initializers(graph, [w_val, b_val, *bn.inputs[1:5]])
