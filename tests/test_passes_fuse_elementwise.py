"""FuseElementwise: connected elementwise regions become one course.FusedElementwise whose program
computes exactly what the nodes did; regions stop at values read twice, graph outputs, shape
changes and ops it cannot fuse. Each test: precondition, ``modified``, postcondition, equal outputs,
then ``graph.verify()``."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.ops.fused_elementwise import parse_program
from course.passes.fuse_elementwise import FuseElementwise
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

X = [2, 3, 5, 7]


def swish_chain(extra_reader=False, graph_output_mid=False, runtime_clip=False):
    """x -> Sigmoid -> Mul(x, .) -> Add(bias) -> LeakyRelu -> Clip -> y (plus options)."""
    inits = {"bias": random_tensor((3, 1, 1), seed=3), "lo": np.array(-0.2, np.float32), "hi": np.array(1.5, np.float32)}
    nodes = [h.make_node("Sigmoid", ["x"], ["s"], name="sig"),
             h.make_node("Mul", ["x", "s"], ["m"], name="mul"),
             h.make_node("Add", ["m", "bias"], ["a"], name="add"),
             h.make_node("LeakyRelu", ["a"], ["l"], name="leaky", alpha=0.2),
             h.make_node("Clip", ["l", "lo", "hi" if not runtime_clip else "hi_in"], ["y"], name="clip")]
    inputs, outputs = [("x", T.FLOAT, X)], [("y", T.FLOAT, None)]
    if extra_reader:
        nodes.append(h.make_node("Exp", ["m"], ["e"], name="exp"))
        outputs.append(("e", T.FLOAT, None))
    if graph_output_mid:
        outputs.append(("a", T.FLOAT, None))
    if runtime_clip:
        inputs.append(("hi_in", T.FLOAT, []))
        del inits["hi"]
    return model(nodes, inputs, outputs, inits, opset=17)


def feeds_of(m):
    f = {"x": random_tensor(X, seed=1, low=-6, high=6)}
    if any(i.name == "hi_in" for i in m.graph.input):
        f["hi_in"] = np.array(1.0, np.float32)
    return f


@pytest.mark.parametrize("kw,fused,left", [
    (dict(), [5], []),
    (dict(extra_reader=True), [2, 3], ["Exp"]),
    (dict(graph_output_mid=True), [3, 2], []),
    (dict(runtime_clip=True), [4], ["Clip"]),
], ids=["whole-chain", "value-read-twice", "graph-output-inside", "clip-bound-fed"])
def test_regions_become_one_node_each(kw, fused, left):
    m = swish_chain(**kw)
    feeds = feeds_of(m)
    want = reference(m, feeds)
    g = graph_of(m)
    assert "FusedElementwise" not in ops(g) and len(g.nodes) >= 5  # precondition
    res = FuseElementwise()(g)
    assert res.modified is True
    programs = [parse_program(n.attrs["program"]) for n in g.nodes if n.op_type == "FusedElementwise"]
    assert sorted(len(p) for p in programs) == sorted(fused)
    assert sorted(o for o in ops(g) if o != "FusedElementwise") == sorted(left)
    assert [v.name for v in g.outputs] == [o.name for o in m.graph.output]
    assert_same_outputs(reference(g, feeds), want, exact=True)  # the reference program rounds as the nodes
    g.verify()


def test_the_swish_region_reads_x_once():
    g = graph_of(swish_chain())
    FuseElementwise()(g)
    (node,) = g.nodes
    assert [v.name for v in node.inputs] == ["x", "bias"]  # x feeds Sigmoid and Mul: one input
    assert node.attrs["program"].splitlines()[1] == "t1 = Mul(x0, t0)"
    assert "lo" not in g.initializers and "hi" not in g.initializers  # Clip's bounds live in the program
    g.verify()


def test_nothing_to_fuse_is_not_modified():
    m = model([h.make_node("Relu", ["x"], ["r"]), h.make_node("Transpose", ["r"], ["t"], perm=[0, 1, 3, 2]),
               h.make_node("Exp", ["t"], ["y"])], [("x", T.FLOAT, X)], [("y", T.FLOAT, None)])
    g = graph_of(m)
    before = ops(g)
    res = FuseElementwise()(g)
    assert res.modified is False and ops(g) == before
    g.verify()


def test_a_broadcast_inside_the_region_stops_it():
    """Add(x (1,3,1,1) -> Relu, y (2,3,5,7)): the Relu's output is smaller than the Add's, so the
    Relu stays out (a region computes one element per output element)."""
    m = model([h.make_node("Relu", ["b"], ["r"]), h.make_node("Add", ["r", "x"], ["a"]),
               h.make_node("Tanh", ["a"], ["y"])],
              [("x", T.FLOAT, X), ("b", T.FLOAT, [1, 3, 1, 1])], [("y", T.FLOAT, None)])
    feeds = {"x": random_tensor(X, seed=2), "b": random_tensor((1, 3, 1, 1), seed=3)}
    want = reference(m, feeds)
    g = graph_of(m)
    res = FuseElementwise()(g)
    assert res.modified is True and ops(g) == ["Relu", "FusedElementwise"]
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


def test_protected_op_types_stay():
    g = graph_of(swish_chain())
    res = FuseElementwise(protected={"Mul"})(g)
    assert res.modified is True and "Mul" in ops(g)
    g.verify()
