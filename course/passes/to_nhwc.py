"""``ToNHWC``: run the layout-sensitive ops channels last, with Transposes only at region borders.

Three steps, as onnxruntime's layout transformer and transpose optimizer do:

1. **Wrap.** Every Conv, FusedConv, MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool on
   4-D data becomes its ``course.nhwc`` version between two Transposes:
   ``y = T_nchw(op_nhwc(T_nhwc(x)))`` with ``T_nhwc`` = perm (0, 2, 3, 1) and ``T_nchw`` = perm
   (0, 3, 1, 2). The graph computes the same thing; it now has two Transposes per op.
2. **Sink.** ``SinkTransposes`` moves each ``T_nchw`` below the elementwise ops that read it
   (``Relu(T(x)) == T(Relu(x))``), so it ends up right in front of the next op's ``T_nhwc``.
3. **Cancel.** ``T_nhwc(T_nchw(v))`` is ``v``: its readers read ``v`` and the pair goes (the
   first Transpose stays while it has other readers, e.g. a graph output or a Flatten).

Between two channels-last ops the data now stays channels last; Transposes remain only where a
region meets an op that needs NCHW, and at the graph's inputs and outputs.
"""
from __future__ import annotations

from typing import Callable, Optional

from course.ir.graph import Graph, Node, Value
from course.ops.nhwc import DOMAIN, TO_NCHW, TO_NHWC
from course.passes.base import Namer, Pass, PassResult, forward, infer_quietly, rank, take_over
from course.passes.sink_transposes import SinkTransposes

# (domain, op type) -> input slots that are channels last in the NHWC version (X, and FusedConv's Z)
LAYOUT_SENSITIVE = {("", "Conv"): (0,), ("course", "FusedConv"): (0, 3), ("", "MaxPool"): (0,),
                    ("", "AveragePool"): (0,), ("", "GlobalAveragePool"): (0,), ("", "GlobalMaxPool"): (0,)}


def perm_of(node: Node) -> Optional[tuple[int, ...]]:
    """The permutation of a Transpose node (its default reverses the axes), None if unknown."""
    p = node.attrs.get("perm")
    if p is not None:
        return tuple(int(i) for i in p)
    r = rank(node.inputs[0])
    return None if r is None else tuple(range(r))[::-1]


def cancel_transpose_pairs(graph: Graph) -> int:
    """Make readers of ``T2(T1(v))`` read ``v`` when the two permutations compose to the identity;
    drop Transposes nobody reads any more. Returns the number of pairs bypassed."""
    cancelled = 0
    for t2 in graph.nodes:
        if t2.graph is not graph or t2.op_type != "Transpose" or t2.domain:
            continue
        t1 = t2.inputs[0].producer()
        if t1 is None or t1.op_type != "Transpose" or t1.domain:
            continue
        p1, p2 = perm_of(t1), perm_of(t2)
        if p1 is None or p2 is None or len(p1) != len(p2) or any(p1[p2[i]] != i for i in range(len(p2))):
            continue
        if not forward(graph, t2.outputs[0], t1.inputs[0]):
            continue  # both ends are graph interface names: keep the pair
        graph.remove(t2)
        if not t1.outputs[0].uses() and not any(o is t1.outputs[0] for o in graph.outputs):
            graph.remove(t1)
        cancelled += 1
    return cancelled


class ToNHWC(Pass):
    """Put layout-sensitive ops channels last (see the module). ``eligible(node)`` may restrict
    which nodes are converted (default: every 4-D one)."""

    def __init__(self, eligible: Optional[Callable[[Node], bool]] = None, protected=()):
        super().__init__(protected)
        self.eligible = eligible

    def call(self, graph: Graph) -> PassResult:
        infer_quietly(graph)
        namer = Namer(graph)
        wrapped = [self.wrap(graph, n, namer) for n in graph.nodes if self.convertible(graph, n)]
        if not wrapped:
            return PassResult(graph, False)
        graph.opset_imports.setdefault(DOMAIN, 1)
        sink = SinkTransposes(self.protected)
        while sink.call(graph).modified | (cancel_transpose_pairs(graph) > 0):
            pass
        return PassResult(graph, True)

    def convertible(self, graph: Graph, node: Node) -> bool:
        slots = LAYOUT_SENSITIVE.get((node.domain, node.op_type))
        if slots is None or node.op_type in self.protected or len(node.outputs) != 1:
            return False
        if any(rank(node.inputs[i]) != 4 for i in slots if i < len(node.inputs) and node.inputs[i] is not None):
            return False
        return rank(node.outputs[0]) == 4 and (self.eligible is None or self.eligible(node))

    @staticmethod
    def wrap(graph: Graph, node: Node, namer: Namer) -> Node:
        """Replace ``node`` by Transpose -> its NHWC version -> Transpose; returns the NHWC node."""
        slots = LAYOUT_SENSITIVE[(node.domain, node.op_type)]
        before, inputs = [], list(node.inputs)
        for i in slots:
            if i < len(inputs) and inputs[i] is not None:
                t = Node("Transpose", [inputs[i]], [Value(namer(f"{inputs[i].name}_nhwc"))],
                         attrs={"perm": list(TO_NHWC)}, name=namer(f"{node.name}_to_nhwc"))
                before.append(t)
                inputs[i] = t.outputs[0]
        y = node.outputs[0]
        nhwc = Node(node.op_type, inputs, [Value(namer(f"{y.name}_nhwc"))], attrs=dict(node.attrs),
                    name=node.name, domain=DOMAIN)
        back = Node("Transpose", [nhwc.outputs[0]], [Value(namer(f"{y.name}_nchw"))],
                    attrs={"perm": list(TO_NCHW)}, name=namer(f"{node.name}_to_nchw"))
        graph.insert_before(node, before + [nhwc, back])
        take_over(graph, y, back.outputs[0])
        graph.remove(node)
        return nhwc
