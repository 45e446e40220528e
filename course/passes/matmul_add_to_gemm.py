"""``MatMulAddToGemm``: MatMul(A, B) followed by Add(., C) becomes one Gemm(A, B, C).

Gemm computes ``A @ B + C`` in one call (the bias added while the product's block is still in
cache); MatMul is n-dimensional and broadcasts, Gemm is strictly 2-D, so the rewrite needs what
Gemm's rules need: A and B of rank 2 and C unidirectionally broadcastable to (M, N) -- a scalar,
(N,), (1, N) or, with M known, (M, N) / (M, 1). A MatMul with other readers stays as it is.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, infer_quietly, only_reader, rank, take_over


class MatMulAddToGemm(Pass):
    # pattern:   y = Add(MatMul(a, b), c)    (or Add(c, MatMul(a, b)))
    # rewrite:   y = Gemm(a, b, c)

    def call(self, graph: Graph) -> PassResult:
        if {"MatMul", "Add", "Gemm"} & self.protected:
            return PassResult(graph, False)
        infer_quietly(graph)
        namer = None
        modified = False
        for add in graph.nodes:
            mm = self.match(graph, add)
            if mm is None or self.check(graph, mm, add) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, mm, add, namer)
            modified = True
        return PassResult(graph, modified)

    @staticmethod
    def match(graph: Graph, add: Node) -> Optional[Node]:
        """The MatMul feeding ``add`` that nothing else reads."""
        if add.op_type != "Add" or add.domain or len(add.inputs) != 2 or None in add.inputs:
            return None
        for v in add.inputs:
            mm = v.producer()
            if mm is not None and mm.op_type == "MatMul" and not mm.domain and only_reader(graph, v) is add:
                return mm
        return None

    @staticmethod
    def check(graph: Graph, mm: Node, add: Node) -> Optional[str]:
        """Why the pair cannot become a Gemm (None when it can)."""
        a, b = mm.inputs
        y = mm.outputs[0]
        c = add.inputs[1] if add.inputs[0] is y else add.inputs[0]
        if c is y:
            return "the Add reads the MatMul output twice"
        if rank(a) != 2 or rank(b) != 2:
            return "Gemm is 2-D: A and B must both have rank 2"
        if y.type is None or y.type.dtype.kind != "f":
            return "Gemm here is for float tensors"
        if c.type is None or c.type.shape is None:
            return "the shape of C is unknown"
        m, n = y.type.shape
        cs = tuple(c.type.shape)
        if len(cs) > 2 or (len(cs) >= 1 and cs[-1] not in (1, n)) or (len(cs) == 2 and cs[0] not in (1, m)):
            return f"C of shape {cs} does not broadcast to (M, N) = ({m}, {n}) in Gemm's one-way sense"
        if add.outputs[0].type is not None and add.outputs[0].type.shape != y.type.shape:
            return "the Add broadcasts the product to a bigger shape"
        return None

    @staticmethod
    def rewrite(graph: Graph, mm: Node, add: Node, namer: Namer) -> None:
        y = mm.outputs[0]
        c = add.inputs[1] if add.inputs[0] is y else add.inputs[0]
        gemm = Node("Gemm", [mm.inputs[0], mm.inputs[1], c], [Value(namer(f"{add.outputs[0].name}_gemm"))],
                    name=mm.name)
        graph.insert_before(add, gemm)
        take_over(graph, add.outputs[0], gemm.outputs[0])
        graph.remove(add)
        graph.remove(mm)
