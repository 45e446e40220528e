"""``SimplifyAlgebra``: local rewrites that make a node unnecessary, one rule per line of ``RULES``.

Each rule looks at one node and returns the value that can stand for its output (an existing
value, or the output of one new node the pass inserts), or None when it does not apply. A rule
is only right where shapes and dtypes cannot change: ``x * 1`` is ``x`` only if the constant's
broadcast leaves x's shape alone, ``Cast`` is a no-op only when the input already has the
target dtype. Rules reading shapes use the types inference gives (unknown means "don't").
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, forward, \
    infer_quietly, is_output, rank, static_shape
from course.passes.eliminate_identity import EliminateIdentity

Rule = Callable[[Graph, Node, Namer], Optional[Value]]


class SimplifyAlgebra(Pass):
    # pattern:   one row of RULES matches the node
    # rewrite:   readers of the node's output read what the rule returns

    def call(self, graph: Graph) -> PassResult:
        infer_quietly(graph)
        namer = Namer(graph)
        modified = False
        for node in graph.nodes:
            if node.graph is not graph or node.domain or node.op_type in self.protected:
                continue  # (a node removed as dead earlier in this walk is skipped)
            for op_type, rule in RULES:
                if op_type == node.op_type and self.apply(graph, node, rule, namer):
                    modified = True
                    break
        return PassResult(graph, modified)

    def apply(self, graph: Graph, node: Node, rule: Rule, namer: Namer) -> bool:
        new = rule(graph, node, namer)
        if new is None:
            return False
        made = new.producer()
        if made is not None and made.graph is None:
            if made.op_type in self.protected:
                return False
            graph.insert_before(node, made)
        if not forward(graph, node.outputs[0], new):
            if made is not None and made.graph is graph and not new.uses():
                graph.remove(made)
            return False
        inputs = list(node.inputs)
        graph.remove(node)
        for v in inputs:  # a producer the rule bypassed may now be dead (Transpose o Transpose)
            p = None if v is None else v.producer()
            if p is not None and p.graph is graph and not any(o is not None and (o.uses() or is_output(graph, o))
                                                               for o in p.outputs):
                inputs.extend(p.inputs)
                graph.remove(p)
        drop_unused_initializers(graph, inputs)
        return True


# --- the rules ----------------------------------------------------------------------------------
def identity(graph, node, namer):
    return node.inputs[0]


def dropout(graph, node, namer):
    return node.inputs[0] if EliminateIdentity.check(graph, node) is None else None


def neutral(value: float, positions=(0, 1)) -> Rule:
    """x op c -> x when c is a constant filled with ``value`` whose broadcast keeps x's shape;
    ``positions`` lists where x may stand (both for Add/Mul, only first for Sub/Div)."""

    def rule(graph, node, namer):
        for i in positions:
            x, c = node.inputs[i], constant(graph, node.inputs[1 - i])
            if c is None or x is None or not np.all(c == value):
                continue
            shape = static_shape(x)
            if shape is not None and _broadcast(shape, c.shape) == shape:
                return x
            if c.size == 1 and rank(x) is not None and c.ndim <= rank(x):
                return x
        return None

    return rule


def _perm(node: Node, r: Optional[int]) -> Optional[list[int]]:
    p = node.attrs.get("perm")
    if p is not None:
        return [int(i) for i in p]
    return None if r is None else list(range(r))[::-1]


def transpose_transpose(graph, node, namer):
    x = node.inputs[0]
    inner = x.producer()
    r = rank(x)
    q = _perm(node, r if r is not None else rank(node.outputs[0]))
    if q is None:
        return None
    if q == list(range(len(q))):
        return x  # an identity permutation
    if inner is None or inner.op_type != "Transpose" or inner.domain:
        return None
    p = _perm(inner, len(q))
    composed = [p[i] for i in q]
    if composed == list(range(len(composed))):
        return inner.inputs[0]
    t = Node("Transpose", [inner.inputs[0]], [Value(namer(f"{node.outputs[0].name}_merged"))],
             attrs={"perm": composed}, name=namer(f"{node.name}_merged"))
    return t.outputs[0]


def reshape_reshape(graph, node, namer):
    x, s = node.inputs[0], constant(graph, node.inputs[1])
    if static_shape(x) is not None and static_shape(x) == static_shape(node.outputs[0]):
        return x  # already that shape
    inner = x.producer()
    if s is None or inner is None or inner.op_type not in ("Reshape", "Flatten") or inner.domain:
        return None
    if np.any(s == 0):
        return None  # 0 copies a dim of the intermediate shape, which the outer input would change
    r = Node("Reshape", [inner.inputs[0], node.inputs[1]], [Value(namer(f"{node.outputs[0].name}_merged"))],
             attrs=dict(node.attrs), name=namer(f"{node.name}_merged"))
    return r.outputs[0]


def same_shape(graph, node, namer):
    x = node.inputs[0]
    shape = static_shape(x)
    return x if shape is not None and shape == static_shape(node.outputs[0]) else None


def cast_same(graph, node, namer):
    x, y = node.inputs[0], node.outputs[0]
    if x.type is None or y.type is None or x.type.dtype != y.type.dtype:
        return None
    return x


def _axes(graph, node: Node) -> Optional[list[int]]:
    if "axes" in node.attrs:
        return [int(a) for a in node.attrs["axes"]]
    c = constant(graph, node.inputs[1]) if len(node.inputs) > 1 else None
    return None if c is None else [int(a) for a in c.reshape(-1)]


def squeeze_unsqueeze(graph, node, namer):
    """Squeeze(Unsqueeze(x, a), a) -> x and Unsqueeze(Squeeze(x, a), a) -> x: axes are
    normalised against the rank with the axes present (the larger one) in both."""
    inner = node.inputs[0].producer()
    partner = {"Squeeze": "Unsqueeze", "Unsqueeze": "Squeeze"}[node.op_type]
    if inner is None or inner.op_type != partner or inner.domain:
        return None
    a, b = _axes(graph, node), _axes(graph, inner)
    big = rank(node.inputs[0]) if node.op_type == "Squeeze" else rank(inner.inputs[0])
    if a is None or b is None or big is None:
        return None
    return inner.inputs[0] if sorted(i % big for i in a) == sorted(i % big for i in b) else None


def single_input(graph, node, namer):
    ins = [v for v in node.inputs if v is not None]
    return ins[0] if len(ins) == 1 and len(node.outputs) == 1 else None


def single_split(graph, node, namer):
    return node.inputs[0] if len(node.outputs) == 1 else None


def zero_pad(graph, node, namer):
    pads = node.attrs.get("pads")
    if pads is None:
        pads = constant(graph, node.inputs[1]) if len(node.inputs) > 1 else None
    return node.inputs[0] if pads is not None and not np.any(np.asarray(pads)) else None


RULES: list[tuple[str, Rule]] = [
    ("Identity", identity),                          # Identity(x) -> x
    ("Dropout", dropout),                            # Dropout(x) in inference, mask unused -> x
    ("Mul", neutral(1.0)),                           # x*1 -> x, 1*x -> x
    ("Add", neutral(0.0)),                           # x+0 -> x, 0+x -> x
    ("Sub", neutral(0.0, positions=(0,))),           # x-0 -> x
    ("Div", neutral(1.0, positions=(0,))),           # x/1 -> x
    ("Transpose", transpose_transpose),              # Transpose(Transpose(x, p), q) -> x or Transpose(x, p.q)
    ("Reshape", reshape_reshape),                    # Reshape(Reshape(x, s1), s2) -> Reshape(x, s2); to x's shape -> x
    ("Flatten", same_shape),                         # Flatten of an already flat x -> x
    ("Cast", cast_same),                             # Cast(x, to=dtype(x)) -> x
    ("Squeeze", squeeze_unsqueeze),                  # Squeeze(Unsqueeze(x, a), a) -> x
    ("Unsqueeze", squeeze_unsqueeze),                # Unsqueeze(Squeeze(x, a), a) -> x
    ("Concat", single_input),                        # Concat(x) -> x
    ("Sum", single_input),                           # Sum(x) -> x
    ("Split", single_split),                         # Split(x) into one part -> x
    ("Pad", zero_pad),                               # Pad(x, pads=0) -> x
]


def _broadcast(a, b):
    """numpy's broadcast of two shapes, or None where they do not broadcast (type inference, not
    a pass, reports that error, naming the node)."""
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None
