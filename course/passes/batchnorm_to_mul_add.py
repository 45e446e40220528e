"""``BatchNormToMulAdd``: an inference BatchNormalization that FoldBatchNorm cannot fold (it does
not follow a Conv) becomes y = x * a + b' with per-channel constants.

    a = gamma / sqrt(var + eps)        b' = beta - mean * a        (computed in float64)

shaped [C, 1, ..., 1] so they broadcast over [N, C, spatial...]. The Mul and Add are ops every
backend has (and that a following elementwise fusion or a later Conv can absorb), where a
BatchNormalization kernel is one more op to write. The pass is in no level by default: on this
engine one BatchNormalization node is one pass over the tensor and Mul + Add are two.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, infer_quietly, \
    is_output, only_reader, rank, take_over


class BatchNormToMulAdd(Pass):
    # pattern:   y = BatchNormalization(x, gamma, beta, mean, var)   x not a Conv's output
    # rewrite:   y = Add(Mul(x, a), b')

    def call(self, graph: Graph) -> PassResult:
        if {"BatchNormalization", "Mul", "Add"} & self.protected:
            return PassResult(graph, False)
        infer_quietly(graph)
        namer = None
        modified = False
        for bn in graph.nodes:
            if bn.op_type != "BatchNormalization" or bn.domain or self.check(graph, bn) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, bn, namer)
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def check(graph: Graph, bn: Node) -> Optional[str]:
        """Why ``bn`` stays (None when it can be replaced)."""
        x = bn.inputs[0]
        p = x.producer()
        if p is not None and p.op_type == "Conv" and not p.domain and only_reader(graph, x) is bn:
            return "it follows a Conv: FoldBatchNorm folds it into the weights instead"
        if any(v is not None and (v.uses() or is_output(graph, v)) for v in bn.outputs[1:]):
            return "its running-statistics outputs are used"
        if bn.attrs.get("training_mode", 0) or bn.attrs.get("spatial", 1) != 1:
            return "it is not in inference mode with per-channel statistics"
        r = rank(x)
        if r is None or r < 2:
            return "the rank of x is unknown (the constants must be shaped [C, 1, ...])"
        params = [constant(graph, v) for v in bn.inputs[1:5]]
        if len(params) != 4 or any(q is None or q.ndim != 1 or q.shape != params[0].shape for q in params):
            return "scale, bias, mean and var are not all constants of shape (C,)"
        if x.type is None or x.type.dtype.kind != "f":
            return "x is not a float tensor"
        return None

    @staticmethod
    def rewrite(graph: Graph, bn: Node, namer: Namer) -> None:
        x, y = bn.inputs[0], bn.outputs[0]
        gamma, beta, mean, var = (v.const_value.astype(np.float64) for v in bn.inputs[1:5])
        a = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
        b = beta - mean * a
        shape = (-1,) + (1,) * (len(x.type.shape) - 2)
        dtype = x.type.dtype
        a_v = graph.add_initializer(namer(f"{bn.name or y.name}_scale"), a.reshape(shape).astype(dtype))
        b_v = graph.add_initializer(namer(f"{bn.name or y.name}_shift"), b.reshape(shape).astype(dtype))
        mul = Node("Mul", [x, a_v], [Value(namer(f"{y.name}_scaled"))], name=namer(f"{bn.name}_mul"))
        add = Node("Add", [mul.outputs[0], b_v], [Value(namer(f"{y.name}_shifted"))], name=namer(f"{bn.name}_add"))
        graph.insert_before(bn, [mul, add])
        take_over(graph, y, add.outputs[0])
        inputs = list(bn.inputs)
        graph.remove(bn)
        drop_unused_initializers(graph, inputs)
