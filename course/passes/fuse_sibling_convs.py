"""``FuseSiblingConvs`` (horizontal fusion): convolutions that read the same input with the same
attributes become one Conv with their filters stacked, followed by a Split along channels.

Inception's parallel 1x1 "reduce" convolutions are the classic case: one Conv reads the input
once and runs one larger GEMM instead of several thin ones. Each output channel of a Conv
depends only on its own filter, so channel block i of the fused output is exactly sibling i's
output; the Split sizes are the siblings' filter counts, in node order. Siblings must agree on
everything but the number of filters (kernel, strides, pads, dilations, group = 1, a fused
activation); a missing bias becomes zeros when another sibling has one.
"""
from __future__ import annotations

from typing import Hashable, Optional

import numpy as np

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, take_over
from course.passes.eliminate_common_subexpressions import _freeze

KINDS = {("", "Conv"), ("course", "FusedConv")}


class FuseSiblingConvs(Pass):
    # pattern:   y1 = Conv(x, W1, B1);  y2 = Conv(x, W2, B2);  ...   (same attributes)
    # rewrite:   y1, y2, ... = Split(Conv(x, concat(W1, W2, ...), concat(B1, B2, ...)), [M1, M2, ...])

    def call(self, graph: Graph) -> PassResult:
        if {"Conv", "FusedConv", "Split"} & self.protected:
            return PassResult(graph, False)
        groups: dict[Hashable, list[Node]] = {}
        for node in graph.nodes:
            key = self.key(graph, node)
            if key is not None:
                groups.setdefault(key, []).append(node)
        namer = None
        modified = False
        for siblings in groups.values():
            if self.check(graph, siblings) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, siblings, namer)
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def key(graph: Graph, node: Node) -> Optional[Hashable]:
        """What siblings share: input, op, attributes, filter shape but M, dtype; None if not a
        candidate (grouped, a residual input, weights not constant)."""
        if (node.domain, node.op_type) not in KINDS or len(node.inputs) > 3 or node.inputs[0] is None:
            return None
        w = constant(graph, node.inputs[1])
        b = constant(graph, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
        if w is None or w.dtype.kind != "f" or node.attrs.get("group", 1) != 1:
            return None
        if len(node.inputs) > 2 and node.inputs[2] is not None and (b is None or b.shape != w.shape[:1]):
            return None
        return (id(node.inputs[0]), node.domain, node.op_type, _freeze(node.attrs), w.shape[1:], w.dtype.str)

    @staticmethod
    def check(graph: Graph, siblings: list[Node]) -> Optional[str]:
        if len(siblings) < 2:
            return "only one convolution reads this input with these attributes"
        return None

    @staticmethod
    def rewrite(graph: Graph, siblings: list[Node], namer: Namer) -> None:
        first = siblings[0]
        ws = [s.inputs[1].const_value for s in siblings]
        bs = [s.inputs[2].const_value if len(s.inputs) > 2 and s.inputs[2] is not None
              else np.zeros(w.shape[0], w.dtype) for s, w in zip(siblings, ws)]
        sizes = [w.shape[0] for w in ws]
        w = graph.add_initializer(namer(f"{first.name}_W_siblings"), np.concatenate(ws))
        conv_in = [first.inputs[0], w]
        if any(len(s.inputs) > 2 and s.inputs[2] is not None for s in siblings):
            conv_in.append(graph.add_initializer(namer(f"{first.name}_B_siblings"), np.concatenate(bs)))
        name = namer(f"{first.name}_siblings")
        conv = Node(first.op_type, conv_in, [Value(namer(f"{name}_y"))], attrs=dict(first.attrs), name=name,
                    domain=first.domain)
        outs = [Value(namer(f"{s.outputs[0].name}_part")) for s in siblings]
        if (graph.opset("") or 0) >= 13:
            split = Node("Split", [conv.outputs[0], graph.add_initializer(namer(f"{first.name}_split"),
                                                                          np.array(sizes, np.int64))],
                         outs, attrs={"axis": 1}, name=namer(f"{first.name}_split"))
        else:
            split = Node("Split", [conv.outputs[0]], outs, attrs={"axis": 1, "split": sizes},
                         name=namer(f"{first.name}_split"))
        graph.insert_before(first, [conv, split])
        old_inputs = []
        for s, part in zip(siblings, outs):
            take_over(graph, s.outputs[0], part)
            old_inputs.extend(s.inputs[1:])
            graph.remove(s)
        drop_unused_initializers(graph, old_inputs)
