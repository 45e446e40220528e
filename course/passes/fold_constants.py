"""``FoldConstants``: compute now every node whose inputs are all constants; its outputs become
initializers.

"Constant" means a fixed initializer (not one a feed may override) or a ``Shape`` of a tensor
whose shape is static (the shape is known even if the data is not): so the
``Shape -> Gather -> Concat -> Reshape`` chains exporters write fold away once the input shape is
fixed. Each node is computed by its reference op (``course.passes.evaluate.run_node``).

Folding must never multiply weight storage: a node is folded only if its outputs hold at most
``SMALL`` elements or no more than the constant inputs that die with it (``Expand`` of a scalar
to a 1000x1000 tensor stays a node; ``Transpose`` of a weight only this node reads folds).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from course.ir.graph import Graph, Node
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, infer_quietly, \
    is_output, static_shape
from course.passes.evaluate import run_node

SMALL = 4096  # elements; shape arithmetic and scalars are far below this
NONDETERMINISTIC = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                              "Multinomial", "Bernoulli"})


class FoldConstants(Pass):
    # pattern:   y = Op(c1, c2, ...)   every input a constant (or Shape of a static shape)
    # rewrite:   y becomes an initializer holding Op(c1, c2, ...)

    def call(self, graph: Graph) -> PassResult:
        infer_quietly(graph)  # Shape folds need the static shapes
        namer = None
        modified = False
        for node in graph.nodes:
            args = self.constant_args(graph, node)
            if args is None or self.check(graph, node, args) is not None:
                continue
            outs = run_node(graph, node, args)
            if self.check_outputs(graph, node, outs) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, node, outs, namer)
            modified = True
        return PassResult(graph, modified)

    def constant_args(self, graph: Graph, node: Node) -> Optional[list[Optional[np.ndarray]]]:
        """The node's inputs as arrays, if all are known now; None otherwise."""
        if node.op_type in self.protected or node.op_type in NONDETERMINISTIC:
            return None
        if node.op_type == "Shape" and not node.domain and node.inputs and node.inputs[0] is not None:
            shape = static_shape(node.inputs[0])
            if shape is None:
                return None
            # Only the shape matters: a zero-strided view holds it without allocating the tensor.
            return [np.broadcast_to(np.zeros((), node.inputs[0].type.dtype), shape)]
        args = [None if v is None else constant(graph, v) for v in node.inputs]
        if any(a is None and v is not None for a, v in zip(args, node.inputs)):
            return None
        return args

    @staticmethod
    def check(graph: Graph, node: Node, args) -> Optional[str]:
        """Why ``node`` cannot be folded (None when it can), before computing it."""
        if any(is_output(graph, v) for v in node.outputs):
            return "an output is a graph output (it would become an initializer the plan cannot return)"
        if all(v is None or not v.uses() for v in node.outputs):
            return "nothing reads its outputs (dead-code elimination removes it)"
        return None

    @staticmethod
    def check_outputs(graph: Graph, node: Node, outs) -> Optional[str]:
        """Why the computed outputs must not be stored (None when they may)."""
        if len(outs) < sum(v is not None for v in node.outputs):
            return "the op computed fewer outputs than the node declares"
        size = sum(np.asarray(o).size for o, v in zip(outs, node.outputs) if v is not None)
        freed = sum(v.const_value.size for v in set(x for x in node.inputs if x is not None)
                    if v.const_value is not None and all(u is node for u, _ in v.uses()))
        if size > max(SMALL, freed):
            return f"its outputs hold {size} elements, more than the {max(SMALL, freed)} folding may add"
        return None

    @staticmethod
    def rewrite(graph: Graph, node: Node, outs, namer: Namer) -> None:
        for v, arr in zip(node.outputs, outs):
            if v is None:
                continue
            arr = np.array(arr, order="C")  # own the memory (not a view of another initializer)
            folded = graph.add_initializer(namer(f"{v.name}_folded"), arr)
            graph.replace_all_uses_with(v, folded)
        inputs = list(node.inputs)
        graph.remove(node)
        drop_unused_initializers(graph, inputs)
