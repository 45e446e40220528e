"""``FuseElementwise``: a connected region of elementwise ops becomes one ``course.FusedElementwise``.

Unfused, every elementwise node reads its inputs from memory and writes a full-size result that
the next node reads again: a chain of k ops moves about 2k tensors. Fused, the region reads each
of its inputs once and writes its output once; the intermediates live in registers. The pass only
*groups* nodes: it writes the region as a program (``course/ops/fused_elementwise.py``), and a
provider compiles that program into one kernel (``kernels/fused_elementwise.py`` generates the
Numba ``@njit`` and ``@cuda.jit`` source).

A region grows along edges ``p -> n`` where both nodes are fusable (an op of ``ELEMENTWISE``,
Clip with constant scalar bounds), ``p``'s output is read only by ``n`` (once) and is not a graph
output, and both have the same static shape (broadcasting happens only at the region's inputs).
Every node but one then has exactly one reader inside the region, so a region is a tree with
one output, and no value is computed twice. Regions of one node are left alone.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.ops.fused_elementwise import ELEMENTWISE, Step, format_step
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, infer_quietly, \
    only_reader, static_shape, take_over

DOMAIN, DOMAIN_VERSION = "course", 1


class FuseElementwise(Pass):
    # pattern:   y = f_k(... f_2(f_1(x0, x1), x2) ...)     elementwise ops, intermediates read once
    # rewrite:   y = course.FusedElementwise(x0, x1, x2, program="t0 = f_1(x0, x1)\n...")

    def call(self, graph: Graph) -> PassResult:
        infer_quietly(graph)
        regions = self.regions(graph)
        namer = Namer(graph) if regions else None
        for region in regions:
            self.rewrite(graph, region, namer)
        return PassResult(graph, bool(regions))

    def fusable(self, graph: Graph, node: Node) -> Optional[dict]:
        """The step attributes of ``node`` if it may join a region (None if not)."""
        if node.domain or node.op_type not in ELEMENTWISE or node.op_type in self.protected:
            return None
        y = node.outputs[0] if len(node.outputs) == 1 else None
        if y is None or y.type is None or y.type.dtype.kind != "f" or static_shape(y) is None:
            return None
        arity = ELEMENTWISE[node.op_type][0]
        if len(node.inputs) < arity or any(v is None for v in node.inputs[:arity]):
            return None
        if node.op_type == "LeakyRelu":
            return {"alpha": float(node.attrs.get("alpha", 0.01))}
        if node.op_type == "Clip":
            return _clip_bounds(graph, node)
        return {}

    def regions(self, graph: Graph) -> list[list[Node]]:
        """Regions of two or more nodes, each in graph order (its last node writes the output)."""
        steps = {id(n): self.fusable(graph, n) for n in graph.nodes}
        parent = {id(n): id(n) for n in graph.nodes if steps[id(n)] is not None}

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i
        for n in graph.nodes:
            if id(n) not in parent:
                continue
            for v in n.inputs[:ELEMENTWISE[n.op_type][0]]:
                p = v.producer()
                if (p is not None and id(p) in parent and only_reader(graph, v) is n
                        and static_shape(v) == static_shape(n.outputs[0])):
                    parent[root(id(p))] = root(id(n))
        groups: dict[int, list[Node]] = {}
        for n in graph.nodes:
            if id(n) in parent:
                groups.setdefault(root(id(n)), []).append(n)
        return [g for g in groups.values() if len(g) > 1]

    def rewrite(self, graph: Graph, region: list[Node], namer: Namer) -> None:
        inside = {id(n.outputs[0]) for n in region}
        names: dict[int, str] = {}
        inputs: list[Value] = []
        lines = []
        for k, n in enumerate(region):
            args = []
            for v in n.inputs[:ELEMENTWISE[n.op_type][0]]:
                if id(v) not in inside and id(v) not in names:
                    names[id(v)] = f"x{len(inputs)}"
                    inputs.append(v)
                args.append(names[id(v)])
            names[id(n.outputs[0])] = f"t{k}"
            lines.append(format_step(Step(f"t{k}", n.op_type, tuple(args), self.fusable(graph, n))))
        last = region[-1]
        fused = Node("FusedElementwise", inputs, [Value(namer(f"{last.outputs[0].name}_fused"))],
                     attrs={"program": "\n".join(lines)}, name=namer(f"{last.name or last.op_type}_fused"),
                     domain=DOMAIN)
        graph.opset_imports.setdefault(DOMAIN, DOMAIN_VERSION)
        graph.insert_before(last, fused)
        take_over(graph, last.outputs[0], fused.outputs[0])
        old_inputs = [v for n in region for v in n.inputs]
        for n in reversed(region):
            graph.remove(n)
        drop_unused_initializers(graph, old_inputs)


def _clip_bounds(graph: Graph, node: Node) -> Optional[dict]:
    """Clip's bounds as floats (attributes before opset 11, constant scalar inputs after)."""
    big = 3.4028234663852886e38
    if (graph.opset("") or 0) < 11:
        return {"min": float(node.attrs.get("min", -big)), "max": float(node.attrs.get("max", big))}
    bounds = {}
    for i, key, default in ((1, "min", -big), (2, "max", big)):
        v = node.inputs[i] if len(node.inputs) > i else None
        c = constant(graph, v)
        if v is not None and (c is None or c.size != 1):
            return None  # a bound computed at run time cannot be compiled into the program
        bounds[key] = default if v is None else float(c.reshape(-1)[0])
    return bounds
