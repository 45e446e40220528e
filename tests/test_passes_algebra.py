"""SimplifyAlgebra: each row of the rule table on the smallest graph that shows it, plus the
look-alikes a rule must leave alone (a constant that broadcasts x bigger, Cast to another type,
Reshape with a 0 that would copy a different dim...). Every case sits between two real nodes
(Neg before, Relu after) so the rewrite has to reconnect both sides."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import RULES, SimplifyAlgebra
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

SHAPE = [2, 3, 4]
f32 = np.float32


def case(middle, inits=None, opset=17, shape=SHAPE, dtype=T.FLOAT):
    nodes = [h.make_node("Neg", ["x"], ["a"], name="neg"), *middle, h.make_node("Relu", ["b"], ["y"], name="relu")]
    return model(nodes, [("x", dtype, shape)], [("y", dtype, None)], inits or {}, opset=opset)


def n(op, ins, outs=("b",), **attrs):
    return h.make_node(op, list(ins), list(outs), name=f"{op.lower()}_{outs[0]}", **attrs)


REMOVED = {  # id: (model, ops left between Neg and Relu)
    "x*1": (case([n("Mul", "ac")], {"c": np.ones((1, 4), f32)}), []),
    "1*x": (case([n("Mul", "ca")], {"c": f32(1)}), []),
    "x+0": (case([n("Add", "ac")], {"c": np.zeros((3, 1), f32)}), []),
    "0+x": (case([n("Add", "ca")], {"c": np.zeros(4, f32)}), []),
    "x-0": (case([n("Sub", "ac")], {"c": f32(0)}), []),
    "x/1": (case([n("Div", "ac")], {"c": f32(1)}), []),
    "identity": (case([n("Identity", "a")]), []),
    "dropout": (case([n("Dropout", ["a", "r"])], {"r": f32(0.5)}), []),
    "transpose-pair-cancels": (case([n("Transpose", "a", "t", perm=[1, 2, 0]),
                                     n("Transpose", "t", perm=[2, 0, 1])]), []),
    "transpose-pair-composes": (case([n("Transpose", "a", "t", perm=[1, 0, 2]),
                                      n("Transpose", "t", perm=[0, 2, 1])]), ["Transpose"]),
    "identity-transpose": (case([n("Transpose", "a", perm=[0, 1, 2])]), []),
    "reshape-reshape": (case([n("Reshape", ["a", "s1"], "t"), n("Reshape", ["t", "s2"])],
                             {"s1": np.array([6, 4], np.int64), "s2": np.array([4, -1], np.int64)}), ["Reshape"]),
    "flatten-reshape": (case([n("Flatten", "a", "t", axis=2), n("Reshape", ["t", "s2"])],
                             {"s2": np.array([2, 12], np.int64)}), ["Reshape"]),
    "reshape-to-own-shape": (case([n("Reshape", ["a", "s"])], {"s": np.array([2, 3, -1], np.int64)}), []),
    "cast-same-type": (case([n("Cast", "a", to=T.FLOAT)]), []),
    "unsqueeze-squeeze-13": (case([n("Unsqueeze", ["a", "ax"], "t"), n("Squeeze", ["t", "ax"])],
                                  {"ax": np.array([-1, 1], np.int64)}), []),
    "squeeze-unsqueeze-11": (case([n("Squeeze", "a", "t", axes=[1]), n("Unsqueeze", "t", axes=[1])],
                                  opset=11, shape=[2, 1, 4]), []),
    "concat-one": (case([n("Concat", "a", axis=1)]), []),
    "split-one": (case([n("Split", "a", axis=0)]), []),
    "pad-zero": (case([n("Pad", ["a", "p"])], {"p": np.zeros(6, np.int64)}), []),
    "flatten-flat": (case([n("Flatten", "a", axis=1)], shape=[2, 12]), []),
}


@pytest.mark.parametrize("name", list(REMOVED))
def test_rule_removes_or_merges(name):
    m, left = REMOVED[name]
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    feeds = {"x": random_tensor(shape, seed=1)}
    want = reference(m, feeds)
    g = graph_of(m)
    before = ops(g)
    assert len(before) > 2 + len(left)  # precondition: something to simplify
    res = SimplifyAlgebra()(g)
    assert res.modified is True and res.graph is g
    assert ops(g) == ["Neg", *left, "Relu"]
    assert not any(v.uses() == [] and v.name in ("c", "r", "s1", "s2", "p", "ax") for v in g.initializers.values())
    assert_same_outputs(reference(g, feeds), want, exact=True)  # no arithmetic changes: exactly equal
    assert SimplifyAlgebra()(g).modified is False
    g.verify()


KEPT = {  # look-alikes that must stay
    "x*1-broadcasts-bigger": case([n("Mul", "ac")], {"c": np.ones((5, 1, 1, 1), f32)}),
    "x*2": case([n("Mul", "ac")], {"c": np.full(4, 2, f32)}),
    "0-x": case([n("Sub", "ca")], {"c": f32(0)}),
    "1/x": case([n("Div", "ca")], {"c": f32(1)}),
    "reshape-with-0": case([n("Reshape", ["a", "s1"], "t"), n("Reshape", ["t", "s2"])],
                           {"s1": np.array([6, 4], np.int64), "s2": np.array([0, 2, -1], np.int64)}),
    "cast-other-type": case([n("Cast", "a", "t", to=T.DOUBLE), n("Cast", "t", to=T.FLOAT)]),
    "squeeze-other-axes": case([n("Unsqueeze", ["a", "a1"], "t"), n("Squeeze", ["t", "a2"])],
                               {"a1": np.array([0], np.int64), "a2": np.array([2], np.int64)}, shape=[2, 1, 4]),
    "pad-nonzero": case([n("Pad", ["a", "p"])], {"p": np.array([0, 1, 0, 0, 0, 0], np.int64)}),
}


@pytest.mark.parametrize("name", list(KEPT))
def test_look_alikes_stay(name):
    m = KEPT[name]
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    feeds = {"x": random_tensor(shape, seed=2)}
    want = reference(m, feeds)
    g = graph_of(m)
    before = ops(g)
    res = SimplifyAlgebra()(g)
    assert res.modified is False and ops(g) == before
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


def test_graph_output_name_survives_and_protected_ops_stay():
    m = model([n("Neg", "x", "a"), n("Identity", "a", "y")], [("x", T.FLOAT, [3])], [("y", T.FLOAT, None)])
    g = graph_of(m)
    assert SimplifyAlgebra(protected={"Identity"})(g).modified is False
    assert SimplifyAlgebra()(g).modified is True
    assert ops(g) == ["Neg"] and g.outputs[0].name == "y" and g.nodes[0].outputs[0] is g.outputs[0]
    g.verify()


def test_every_rule_has_a_comment_line():
    import inspect
    import course.passes.simplify_algebra as mod

    table = inspect.getsource(mod).split("RULES: list")[1]
    rows = [line for line in table.splitlines() if line.strip().startswith("(\"")]
    assert len(rows) == len(RULES) and all("# " in r and "->" in r for r in rows)
