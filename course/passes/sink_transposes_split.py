"""``SinkTransposesThroughSplit``: a Split of a transposed tensor becomes a Split of the tensor
itself, each part then transposed, when every part's Transpose has somewhere to go.

Splitting ``T_p(x)`` along axis ``a`` is splitting x along axis ``p[a]`` (same sizes) and
transposing each part: ``Split(T_p(x), axis=a)[i] == T_p(Split(x, axis=p[a])[i])``. One
Transpose becomes one per part, so the pass applies only when each part leads (down a chain of
unary elementwise ops, each read only by the next, that ``SinkTransposes`` moves it through) to

- Transposes only: the moved ``T_p`` meets that ``T_q`` and ``SimplifyAlgebra`` merges the pair
  into one Transpose, or none where q undoes p; or
- a Concat whose every input comes (down such chains) from this Split, or is a constant:
  ``SinkTransposesThroughConcat`` turns the k Transposes back into one below the Concat
  (an NHWC island ``T -> Split -> Relu each -> Concat -> T^-1`` then loses both Transposes).

So, with those passes in the same manager (the "extended" level), the count never grows. A part
that is a graph output, or read by anything else, blocks the move.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, is_output, only_reader, take_over
from course.passes.sink_transposes import UNARY, SinkTransposes
from course.passes.sink_transposes_concat import perm_of

MAX_CHAIN = 16  # elementwise ops followed from a part before giving up


class SinkTransposesThroughSplit(Pass):
    # pattern:   y1..yk = Split(Transpose(x, p), axis=a)      each yi leads to Transposes or a Concat of them
    # rewrite:   s1..sk = Split(x, axis=p[a]);  yi = Transpose(si, p)

    def call(self, graph: Graph) -> PassResult:
        if {"Transpose", "Split"} & self.protected:
            return PassResult(graph, False)
        namer = None
        modified = False
        for node in graph.nodes:
            t = self.match(graph, node)
            if t is None or self.check(graph, node, t) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, node, t, namer)
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def match(graph: Graph, node: Node) -> Optional[Node]:
        """The Transpose feeding a Split, if the Split is its only reader."""
        if node.op_type != "Split" or node.domain or node.graph is not graph or not node.inputs:
            return None
        x = node.inputs[0]
        t = x.producer() if x is not None else None
        if t is None or t.op_type != "Transpose" or t.domain or only_reader(graph, x) is not node:
            return None
        return t

    @staticmethod
    def check(graph: Graph, node: Node, t: Node) -> Optional[str]:
        """Why the Transpose cannot move below this Split (None when it can)."""
        perm = perm_of(t)
        if perm is None:
            return "the Transpose reverses the axes of a tensor of unknown rank"
        for y in node.outputs:
            if y is None or (not y.uses() and not is_output(graph, y)):
                continue  # a part nothing reads gets no Transpose
            if not _leads_on(graph, y, node, perm, MAX_CHAIN):
                return f"part {y.name!r} leads neither to Transposes nor to a Concat of this Split's parts"
        return None

    def rewrite(self, graph: Graph, node: Node, t: Node, namer: Namer) -> None:
        perm = perm_of(t)
        axis = perm[int(node.attrs.get("axis", 0)) % len(perm)]
        parts = [None if y is None else Value(namer(f"{y.name}_pre")) for y in node.outputs]
        split = Node("Split", [t.inputs[0], *node.inputs[1:]], parts, attrs={**node.attrs, "axis": axis},
                     name=node.name)
        graph.insert_before(node, split)
        for y, part in zip(node.outputs, parts):
            if y is None or not y.uses():
                continue  # a part nothing reads needs no Transpose
            moved = Node("Transpose", [part], [Value(namer(f"{y.name}_sunk"))], attrs={"perm": perm},
                         name=namer(f"{t.name}_sunk"))
            graph.insert_before(node, moved)
            take_over(graph, y, moved.outputs[0])
        graph.remove(node)
        graph.remove(t)


def _leads_on(graph: Graph, v: Value, split: Node, perm: list[int], depth: int) -> bool:
    """True if a ``T_p`` on ``v`` would reach Transposes or a Concat it can pass (see the docstring)."""
    if is_output(graph, v) or not v.uses():
        return False
    if all(u.op_type == "Transpose" and not u.domain for u, _ in v.uses()):
        return True
    node = only_reader(graph, v)
    if node is None or node.domain or depth == 0:
        return False
    if node.op_type == "Concat":
        return all(_comes_from(graph, u, split, len(perm), MAX_CHAIN) for u in node.inputs)
    if node.op_type in UNARY and len(node.outputs) == 1 and SinkTransposes.check(graph, node, perm) is None:
        return _leads_on(graph, node.outputs[0], split, perm, depth - 1)
    return False


def _comes_from(graph: Graph, v: Value, split: Node, r: int, depth: int) -> bool:
    """True if ``v`` is a part of ``split`` down a chain of single-reader unary ops, or a constant."""
    c = constant(graph, v)
    if c is not None:
        return c.ndim == r
    p = v.producer() if v is not None else None
    if p is split:
        return True
    if p is None or p.domain or p.op_type not in UNARY or depth == 0 or only_reader(graph, p.inputs[0]) is not p:
        return False
    return _comes_from(graph, p.inputs[0], split, r, depth - 1)
