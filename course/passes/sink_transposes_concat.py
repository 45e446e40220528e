"""``SinkTransposesThroughConcat``: Concat of inputs all transposed the same way becomes one
Transpose of the Concat of the un-transposed inputs.

Concatenating along axis ``a`` of ``T_p(x_i)`` is concatenating along axis ``p[a]`` of the
``x_i`` (axis ``a`` of ``T_p(x)`` is axis ``p[a]`` of x): ``Concat(T_p(x1), .., T_p(xk), axis=a)
== T_p(Concat(x1, .., xk, axis=p[a]))``. A constant input is permuted back once, now. k
Transposes become one below the Concat, where it may meet its inverse (``SimplifyAlgebra``
cancels the pair). It applies only when every non-constant input is a Transpose with the same
permutation that the Concat alone reads: a Transpose another node also reads would stay, and the
moved one would be extra work.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, is_output, rank, \
    take_over


def perm_of(t: Node) -> Optional[list[int]]:
    """The permutation of Transpose ``t`` (the default reverses the axes: needs the rank)."""
    p = t.attrs.get("perm")
    if p is not None:
        return [int(i) for i in p]
    r = rank(t.inputs[0])
    return None if r is None else list(range(r))[::-1]


def transposed_here(graph: Graph, node: Node, v: Optional[Value]) -> Optional[Node]:
    """The Transpose producing ``v`` if ``node`` is its only reader (any number of slots)."""
    t = v.producer() if v is not None else None
    if t is None or t.op_type != "Transpose" or t.domain or is_output(graph, v):
        return None
    return t if all(u is node for u, _ in v.uses()) else None


class SinkTransposesThroughConcat(Pass):
    # pattern:   y = Concat(Transpose(x1, p), .., Transpose(xk, p) | constant c, axis=a)
    # rewrite:   y = Transpose(Concat(x1, .., xk | transpose(c, inverse(p)), axis=p[a]), perm=p)

    def call(self, graph: Graph) -> PassResult:
        if {"Transpose", "Concat"} & self.protected:
            return PassResult(graph, False)
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

    @staticmethod
    def match(graph: Graph, node: Node) -> Optional[list[int]]:
        """The permutation of the first transposed input of a Concat."""
        if node.op_type != "Concat" or node.domain or node.graph is not graph:
            return None
        for v in node.inputs:
            t = transposed_here(graph, node, v)
            if t is not None:
                return perm_of(t)
        return None

    @staticmethod
    def check(graph: Graph, node: Node, perm: list[int]) -> Optional[str]:
        """Why the Transposes cannot move below this Concat (None when they can)."""
        for v in node.inputs:
            t = transposed_here(graph, node, v)
            if t is not None and perm_of(t) == perm:
                continue
            c = constant(graph, v)
            if c is None or c.ndim != len(perm):
                return f"input {getattr(v, 'name', '')!r} is neither Transpose(perm={perm}) read only here " \
                       f"nor a constant of rank {len(perm)}"
        return None

    def rewrite(self, graph: Graph, node: Node, perm: list[int], namer: Namer) -> None:
        inverse = [int(i) for i in np.argsort(perm)]
        new_inputs, dropped = [], []
        for v in node.inputs:
            t = transposed_here(graph, node, v)
            if t is not None:
                new_inputs.append(t.inputs[0])
                dropped.append(t)
            else:
                c = np.ascontiguousarray(v.const_value.transpose(inverse))
                new_inputs.append(graph.add_initializer(namer(f"{v.name}_perm"), c))
        y = node.outputs[0]
        axis = perm[int(node.attrs["axis"]) % len(perm)]
        cat = Node("Concat", new_inputs, [Value(namer(f"{y.name}_pre"))], attrs={**node.attrs, "axis": axis},
                   name=node.name)
        t = Node("Transpose", [cat.outputs[0]], [Value(namer(f"{y.name}_sunk"))], attrs={"perm": perm},
                 name=namer(f"{dropped[0].name}_sunk"))
        graph.insert_before(node, [cat, t])
        take_over(graph, y, t.outputs[0])
        old_inputs = list(node.inputs)
        graph.remove(node)
        for d in dropped:
            if d.graph is graph:  # the same Transpose may feed several slots
                graph.remove(d)
        drop_unused_initializers(graph, old_inputs)
