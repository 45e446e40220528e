"""EliminateCommonSubexpressions: a node with the same op, domain, attributes and inputs as an
earlier one goes; equal small constants are merged first so their readers can match."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import EliminateCommonSubexpressions
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

X = ("x", T.FLOAT, [2, 3, 4])


def twin_branches():
    """Two Relu -> Reshape branches (each Reshape with its own copy of the shape) joined by Add."""
    nodes = [h.make_node("Relu", ["x"], ["r1"], name="relu1"),
             h.make_node("Relu", ["x"], ["r2"], name="relu2"),
             h.make_node("Reshape", ["r1", "s1"], ["a"], name="reshape1"),
             h.make_node("Reshape", ["r2", "s2"], ["b"], name="reshape2"),
             h.make_node("Add", ["a", "b"], ["y"], name="add")]
    shape = np.array([2, 12], np.int64)
    return model(nodes, [X], [("y", T.FLOAT, None)], {"s1": shape, "s2": shape.copy()})


def test_duplicate_chains_collapse_in_one_pass():
    m = twin_branches()
    feeds = {"x": random_tensor((2, 3, 4), seed=1)}
    want = reference(m, feeds)
    g = graph_of(m)
    assert ops(g) == ["Relu", "Relu", "Reshape", "Reshape", "Add"]
    res = EliminateCommonSubexpressions()(g)
    assert res.modified is True
    assert ops(g) == ["Relu", "Reshape", "Add"]  # two nodes fewer
    add = g.nodes[-1]
    assert add.inputs[0] is add.inputs[1] and set(g.initializers) == {"s1"}
    assert_same_outputs(reference(g, feeds), want, exact=True)
    assert EliminateCommonSubexpressions()(g).modified is False
    g.verify()


def _different_attrs():
    nodes = [h.make_node("LeakyRelu", ["x"], ["a"], name="l1", alpha=0.1),
             h.make_node("LeakyRelu", ["x"], ["b"], name="l2", alpha=0.2),
             h.make_node("Add", ["a", "b"], ["y"], name="add")]
    return model(nodes, [X], [("y", T.FLOAT, None)])


def _both_outputs():
    nodes = [h.make_node("Relu", ["x"], ["y"], name="r1"), h.make_node("Relu", ["x"], ["z"], name="r2")]
    return model(nodes, [X], [("y", T.FLOAT, None), ("z", T.FLOAT, None)])


def _different_inputs():
    nodes = [h.make_node("Relu", ["x"], ["a"], name="r1"), h.make_node("Neg", ["x"], ["n"], name="neg"),
             h.make_node("Relu", ["n"], ["b"], name="r2"), h.make_node("Add", ["a", "b"], ["y"], name="add")]
    return model(nodes, [X], [("y", T.FLOAT, None)])


@pytest.mark.parametrize("build", [_different_attrs, _both_outputs, _different_inputs],
                         ids=["attributes-differ", "both-are-graph-outputs", "inputs-differ"])
def test_nodes_that_are_not_duplicates_stay(build):
    m = build()
    feeds = {"x": random_tensor((2, 3, 4), seed=2)}
    want = reference(m, feeds)
    g = graph_of(m)
    before = ops(g)
    assert EliminateCommonSubexpressions()(g).modified is False
    assert ops(g) == before
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


def test_protected_duplicates_stay():
    g = graph_of(twin_branches())
    # The shape constants still merge; the Relus stay, so the Reshapes read different values.
    assert EliminateCommonSubexpressions(protected={"Relu"})(g).modified is True
    assert ops(g) == ["Relu", "Relu", "Reshape", "Reshape", "Add"] and set(g.initializers) == {"s1"}
    g.verify()
