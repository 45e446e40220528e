"""``SinkTransposes``: move a Transpose below the elementwise op that reads it, so that two
Transposes end up next to each other and ``SimplifyAlgebra`` merges or cancels them.

Elementwise ops commute with any permutation of axes: ``Relu(T(x)) == T(Relu(x))``, and
``Add(T(x), T(z)) == T(Add(x, z))`` when both operands are transposed the same way. A constant
operand is permuted back once, now: ``Add(T_p(x), c) == T_p(Add(x, c'))`` with
``c' = transpose(c, inverse(p))`` (c first given x's rank with leading 1s). The node count does
not change; the Transposes move down until they meet (layout conversions at region borders,
NHWC <-> NCHW pairs an exporter left behind).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, infer_quietly, \
    only_reader, rank, take_over

UNARY = frozenset({"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Sqrt", "Reciprocal", "Cast",
                   "Clip"})
BINARY = frozenset({"Add", "Sub", "Mul", "Div"})


class SinkTransposes(Pass):
    # pattern:   y = Elementwise(Transpose(x, perm=p), ...)   Transpose read only here
    # rewrite:   y = Transpose(Elementwise(x, ... permuted back), perm=p)

    def call(self, graph: Graph) -> PassResult:
        if "Transpose" in self.protected:
            return PassResult(graph, False)
        infer_quietly(graph)
        namer = None
        modified = False
        for node in graph.nodes:
            perm = self.match(graph, node)
            if perm is None or self.check(graph, node, perm) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, node, perm, namer)
            modified = True
        return PassResult(graph, modified)

    def match(self, graph: Graph, node: Node) -> Optional[list[int]]:
        """The permutation on ``node``'s first data input, if it is a Transpose only ``node`` reads."""
        if node.domain or node.op_type in self.protected or node.op_type not in UNARY | BINARY:
            return None
        if len(node.outputs) != 1 or not node.inputs or node.inputs[0] is None:
            return None
        data = node.inputs[:2] if node.op_type in BINARY else node.inputs[:1]
        for v in data:
            t = v.producer() if v is not None else None
            if t is not None and t.op_type == "Transpose" and not t.domain and only_reader(graph, v) is node:
                r = rank(t.inputs[0])
                p = t.attrs.get("perm")
                p = [int(i) for i in p] if p is not None else (None if r is None else list(range(r))[::-1])
                return p
        return None

    @staticmethod
    def check(graph: Graph, node: Node, perm: list[int]) -> Optional[str]:
        """Why the Transpose cannot move below ``node`` (None when it can)."""
        if node.op_type in UNARY:
            extra = [constant(graph, v) for v in node.inputs[1:] if v is not None]
            if any(c is None or c.size != 1 for c in extra):
                return "its extra inputs (Clip bounds) are not constant scalars"
            return None
        for v in node.inputs:
            if _transposed_by(graph, node, v, perm) is None and not _permutable_constant(graph, v, len(perm)):
                return f"input {v.name!r} is neither Transpose(perm={perm}) read only here nor a constant"
        if rank(node.outputs[0]) not in (None, len(perm)):
            return "the op broadcasts to a higher rank than the Transpose's"
        return None

    def rewrite(self, graph: Graph, node: Node, perm: list[int], namer: Namer) -> None:
        inverse = list(np.argsort(perm))
        new_inputs, dropped = [], []
        for i, v in enumerate(node.inputs):
            t = _transposed_by(graph, node, v, perm) if (i < 2 or node.op_type in BINARY) else None
            if t is not None:
                new_inputs.append(t.inputs[0])
                dropped.append(t)
            elif i < 2 and node.op_type in BINARY:
                c = v.const_value
                c = c.reshape((1,) * (len(perm) - c.ndim) + c.shape).transpose(inverse)
                new_inputs.append(graph.add_initializer(namer(f"{v.name}_perm"), np.ascontiguousarray(c)))
            else:
                new_inputs.append(v)  # Clip bounds: scalars, unchanged
        y = node.outputs[0]
        moved = Node(node.op_type, new_inputs, [Value(namer(f"{y.name}_pre"))], attrs=dict(node.attrs),
                     name=node.name, domain=node.domain)
        t = Node("Transpose", [moved.outputs[0]], [Value(namer(f"{y.name}_sunk"))], attrs={"perm": perm},
                 name=namer(f"{dropped[0].name}_sunk"))
        graph.insert_before(node, [moved, t])
        take_over(graph, y, t.outputs[0])
        old_inputs = list(node.inputs)
        graph.remove(node)
        for d in dropped:
            if d.graph is graph:  # the same Transpose may feed both operands
                graph.remove(d)
        drop_unused_initializers(graph, old_inputs)


def _transposed_by(graph: Graph, node: Node, v: Optional[Value], perm: list[int]) -> Optional[Node]:
    t = v.producer() if v is not None else None
    if t is None or t.op_type != "Transpose" or t.domain:
        return None
    if any(u is not node for u, _ in v.uses()) or any(o is v for o in graph.outputs):
        return None
    p = t.attrs.get("perm")
    r = rank(t.inputs[0])
    p = [int(i) for i in p] if p is not None else (None if r is None else list(range(r))[::-1])
    return t if p == perm else None


def _permutable_constant(graph: Graph, v: Optional[Value], r: int) -> bool:
    c = constant(graph, v)
    return c is not None and c.ndim <= r
