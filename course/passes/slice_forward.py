"""``SliceForward``: move a Slice ahead of the elementwise op it reads, so the op computes only
the part that is kept.

``Slice(U(x)) == U(Slice(x))`` for any elementwise unary U (Relu, Sigmoid, Clip, Cast, ...), so
U then runs on the slice instead of the whole tensor (and our Slice is a view: it costs nothing).
For a binary op with a constant operand c, ``Slice(B(x, c)) == B(Slice(x), c')``, where c' is c
(given x's rank with leading 1s) sliced the same way on every sliced axis where c is not 1.

It applies when:
- the op's output is read by this Slice only and is not a graph output (otherwise the op still
  runs on the whole tensor, and the moved copy is extra work);
- for a unary op, always (starts/ends may even be computed at run time);
- for a binary op, when the other operand is a constant (or x itself, ``Mul(x, x)``), the
  Slice's starts/ends/axes/steps are constants, and the constant does not broadcast x up along
  a sliced axis (there c's dim is 1, or x's dim is known and equal to it): slicing the output
  would then not be slicing x.
It does not apply to two non-constant operands (both would need a Slice), nor to ops that mix
elements (Conv, Softmax, reductions). The node count does not change.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from course.errors import EngineError
from course.ir.graph import Graph, Node, Value
from course.ops.slice import slices
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, infer_quietly, \
    only_reader, rank, take_over
from course.passes.sink_transposes import BINARY, UNARY


class SliceForward(Pass):
    # pattern:   y = Slice(U(x, ...), starts, ends[, axes, steps])      U elementwise, read only here
    # rewrite:   y = U(Slice(x, starts, ends[, axes, steps]), ... constants sliced the same way)

    def call(self, graph: Graph) -> PassResult:
        if "Slice" in self.protected:
            return PassResult(graph, False)
        infer_quietly(graph)
        namer = None
        modified = False
        for node in graph.nodes:
            op = self.match(graph, node)
            if op is None or self.check(graph, node, op) is not None:
                continue
            namer = namer or Namer(graph)
            self.rewrite(graph, node, op, namer)
            modified = True
        return PassResult(graph, modified)

    def match(self, graph: Graph, node: Node) -> Optional[Node]:
        """The elementwise op whose output only the Slice ``node`` reads."""
        if node.op_type != "Slice" or node.domain or node.graph is not graph or not node.inputs:
            return None
        v = node.inputs[0]
        op = v.producer() if v is not None else None
        if op is None or op.domain or op.op_type not in UNARY | BINARY or op.op_type in self.protected:
            return None
        return op if len(op.outputs) == 1 and only_reader(graph, v) is node else None

    @staticmethod
    def check(graph: Graph, node: Node, op: Node) -> Optional[str]:
        """Why the Slice cannot move ahead of ``op`` (None when it can)."""
        if op.op_type in UNARY:
            return None
        x, c = _split_operands(graph, op)
        if x is None:
            return "the binary op has no constant operand (both would need a Slice)"
        sl = _python_slices(graph, node, rank(x))
        if sl is None:
            return "the Slice's starts/ends/axes/steps or x's rank are not known now"
        if c is not None and _sliced_constant(c, sl, x) is None:
            return "the constant broadcasts x up along a sliced axis"
        return None

    def rewrite(self, graph: Graph, node: Node, op: Node, namer: Namer) -> None:
        y = node.outputs[0]
        x = op.inputs[0] if op.op_type in UNARY else _split_operands(graph, op)[0]
        cut = Node("Slice", [x, *node.inputs[1:]], [Value(namer(f"{x.name}_sliced"))], attrs=dict(node.attrs),
                   name=node.name)
        inputs = [cut.outputs[0], *op.inputs[1:]] if op.op_type in UNARY else \
            self.binary_inputs(graph, node, op, cut.outputs[0], namer)
        moved = Node(op.op_type, inputs, [Value(namer(f"{y.name}_fwd"))], attrs=dict(op.attrs), name=op.name,
                     domain=op.domain)
        graph.insert_before(node, [cut, moved])  # after every input of both nodes (the Slice's may be late)
        take_over(graph, y, moved.outputs[0])
        old_inputs = list(op.inputs)
        graph.remove(node)
        graph.remove(op)
        drop_unused_initializers(graph, old_inputs)

    @staticmethod
    def binary_inputs(graph: Graph, node: Node, op: Node, sliced: Value, namer: Namer) -> list[Value]:
        x, c = _split_operands(graph, op)
        sl = _python_slices(graph, node, rank(x))
        out = []
        for v in op.inputs:
            if v is x:
                out.append(sliced)
            else:
                new_c = np.ascontiguousarray(_sliced_constant(c, sl, x))
                out.append(graph.add_initializer(namer(f"{v.name}_sliced"), new_c))
        return out


def _split_operands(graph: Graph, op: Node) -> tuple[Optional[Value], Optional[np.ndarray]]:
    """(x, the constant operand, or None for B(x, x)) of a binary op; (None, None) if neither fits."""
    a, b = op.inputs[0], op.inputs[1]
    if a is b:
        return a, None
    for v, other in ((a, b), (b, a)):
        c = constant(graph, other)
        if c is not None and constant(graph, v) is None:
            return v, c
    return None, None


def _python_slices(graph: Graph, node: Node, r: Optional[int]) -> Optional[tuple]:
    """One Python slice per axis of the Slice ``node`` (rank ``r``), if all of it is known now."""
    if r is None:
        return None
    if "starts" in node.attrs:  # opsets 1-9: attributes
        a = node.attrs
        starts, ends, axes, steps = list(a["starts"]), list(a.get("ends", ())), a.get("axes"), None
    else:
        given = [node.inputs[i] if i < len(node.inputs) else None for i in range(1, 5)]
        vals = [constant(graph, v) for v in given]
        if any(v is not None and c is None for v, c in zip(given, vals)):
            return None
        starts, ends, axes, steps = (None if c is None else [int(i) for i in c.reshape(-1)] for c in vals)
    if starts is None or ends is None:
        return None
    try:
        return slices(r, starts, ends, axes, steps)
    except EngineError:
        return None  # a malformed Slice: left for the session to report


def _sliced_constant(c: np.ndarray, sl: tuple, x: Value) -> Optional[np.ndarray]:
    """c at x's rank, sliced where the Slice cuts and c is not 1; None where c would broadcast x
    up along a sliced axis (c's dim not 1 and not x's known dim), or c has a higher rank."""
    r = len(sl)
    if c.ndim > r:
        return None
    full = c.reshape((1,) * (r - c.ndim) + c.shape)
    shape = x.type.shape
    cut = []
    for axis, s in enumerate(sl):
        if s == slice(None) or full.shape[axis] == 1:
            cut.append(slice(None))
        elif shape[axis] == full.shape[axis]:
            cut.append(s)
        else:
            return None
    return full[tuple(cut)]
