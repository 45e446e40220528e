"""EliminateDeadCode: nodes and initializers nothing needs go; graph inputs stay (they are the
model's interface) except initializer-inputs, which only carried a default."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto as T, helper as h

from course.passes import EliminateDeadCode
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference


def dead_branch():
    """x -> Neg -> y is live; x -> Relu -> Abs (read by nothing) and the Mul reading w are dead."""
    nodes = [h.make_node("Relu", ["x"], ["r"], name="relu"),
             h.make_node("Neg", ["x"], ["y"], name="neg"),
             h.make_node("Abs", ["r"], ["a"], name="abs"),
             h.make_node("Mul", ["x", "w"], ["m"], name="mul")]
    m = model(nodes, [("x", T.FLOAT, [2, 3]), ("unused", T.FLOAT, [1])], [("y", T.FLOAT, None)],
              {"w": np.ones(3, np.float32), "spare": np.zeros(4, np.float32), "default": np.zeros(2, np.float32)})
    m.graph.input.append(h.make_tensor_value_info("default", T.FLOAT, [2]))  # an initializer-input, unused
    return m


def test_dead_nodes_and_initializers_go():
    m = dead_branch()
    feeds = {"x": random_tensor((2, 3), seed=1), "unused": random_tensor((1,), seed=2)}
    want = reference(m, feeds)
    g = graph_of(m)
    assert ops(g) == ["Relu", "Neg", "Abs", "Mul"] and {"w", "spare", "default"} <= set(g.initializers)
    res = EliminateDeadCode()(g)
    assert res.modified is True and res.graph is g
    assert ops(g) == ["Neg"]  # three nodes fewer: Abs, then Relu (only Abs read it), and Mul
    assert g.initializers == {}
    assert [v.name for v in g.inputs] == ["x", "unused"]  # a real input stays, even unused
    assert_same_outputs(reference(g, feeds), want, exact=True)
    assert EliminateDeadCode()(g).modified is False
    g.verify()


def test_outputs_and_their_producers_stay():
    nodes = [h.make_node("Relu", ["x"], ["r"], name="relu"), h.make_node("Neg", ["r"], ["y"], name="neg")]
    m = model(nodes, [("x", T.FLOAT, [2])], [("y", T.FLOAT, None), ("r", T.FLOAT, None)], {})
    g = graph_of(m)
    assert EliminateDeadCode()(g).modified is False
    assert ops(g) == ["Relu", "Neg"]
    g.verify()
