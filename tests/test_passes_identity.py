"""EliminateIdentity: Identity and inference-mode Dropout disappear; graph outputs keep their
names; nodes that cannot go (mask used, training mode unknown, input is a graph input) stay."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import EliminateIdentity
from course.testing import random_tensor
from ir_builders import model
from test_passes import graph_of, ops, run_graph, run_model

X = ("x", T.FLOAT, [2, 3])


def chain(middle, out="y", extra_outputs=(), inits=None, opset=17):
    """x -> Neg -> middle node(s) -> Relu -> y (so the identity sits between two real nodes)."""
    nodes = [h.make_node("Neg", ["x"], ["a"], name="neg"), *middle,
             h.make_node("Relu", ["b"], [out], name="relu")]
    outs = [(out, T.FLOAT, None), *((n, T.BOOL, None) for n in extra_outputs)]  # extra: Dropout masks
    return model(nodes, [X], outs, inits or {}, opset=opset)


CASES = {  # id: (model, nodes removed)
    "identity": (chain([h.make_node("Identity", ["a"], ["b"], name="id")]), 1),
    "two-identities": (chain([h.make_node("Identity", ["a"], ["m"], name="id1"),
                              h.make_node("Identity", ["m"], ["b"], name="id2")]), 2),
    "dropout-7": (chain([h.make_node("Dropout", ["a"], ["b"], name="drop", ratio=0.3)], opset=7), 1),
    "dropout-12-ratio": (chain([h.make_node("Dropout", ["a", "r"], ["b"], name="drop")],
                               inits={"r": np.float32(0.5)}), 1),
    "dropout-12-mask-unused": (chain([h.make_node("Dropout", ["a", "r", "t"], ["b", "mask"], name="drop")],
                                     inits={"r": np.float32(0.5), "t": np.bool_(False)}), 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_identities_are_removed(case):
    m, removed = CASES[case]
    x = random_tensor((2, 3), seed=1)
    want = run_model(m, {"x": x})
    g = graph_of(m)
    before = ops(g)
    assert {"Identity", "Dropout"} & set(before)
    res = EliminateIdentity()(g)
    assert res.modified is True
    assert ops(g) == ["Neg", "Relu"] and len(before) - len(g.nodes) == removed
    assert g.nodes[1].inputs[0] is g.nodes[0].outputs[0]
    np.testing.assert_array_equal(run_graph(g, {"x": x}), want)  # nothing is computed differently
    assert EliminateIdentity()(g).modified is False
    g.verify()


def test_identity_producing_a_graph_output_renames_its_input():
    m = model([h.make_node("Neg", ["x"], ["a"], name="neg"), h.make_node("Identity", ["a"], ["y"], name="id")],
              [X], [("y", T.FLOAT, [2, 3])])
    x = random_tensor((2, 3), seed=2)
    g = graph_of(m)
    assert ops(g) == ["Neg", "Identity"]
    assert EliminateIdentity()(g).modified
    assert ops(g) == ["Neg"] and [v.name for v in g.outputs] == ["y"] and g.outputs[0] is g.nodes[0].outputs[0]
    np.testing.assert_array_equal(run_graph(g, {"x": x}), -x)
    g.verify()


def _graph_input_to_output():
    return model([h.make_node("Identity", ["x"], ["y"], name="id")], [X], [("y", T.FLOAT, None)])


def _mask_used():
    return chain([h.make_node("Dropout", ["a", "r"], ["b", "mask"], name="drop")], extra_outputs=["mask"],
                 inits={"r": np.float32(0.5)})


def _training_mode_fed():
    m = chain([h.make_node("Dropout", ["a", "", "t"], ["b"], name="drop")])
    m.graph.input.append(h.make_tensor_value_info("t", T.BOOL, []))
    return m


def _training_mode_true():
    return chain([h.make_node("Dropout", ["a", "", "t"], ["b"], name="drop")], inits={"t": np.bool_(True)})


@pytest.mark.parametrize("build", [_graph_input_to_output, _mask_used, _training_mode_fed, _training_mode_true],
                         ids=["input-to-output", "mask-used", "training-mode-fed", "training-mode-true"])
def test_identities_that_must_stay(build):
    g = graph_of(build())
    before = ops(g)
    assert {"Identity", "Dropout"} & set(before)
    assert EliminateIdentity()(g).modified is False
    assert ops(g) == before
    g.verify()


def test_protected_identity_stays():
    g = graph_of(CASES["identity"][0])
    assert EliminateIdentity(protected={"Identity"})(g).modified is False and "Identity" in ops(g)
    g.verify()
