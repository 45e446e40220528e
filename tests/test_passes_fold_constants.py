"""FoldConstants: nodes whose inputs are all constants (or Shapes of static shapes) become
initializers; nothing is folded that a feed may change, that a custom kernel must see, that is a
graph output, or whose result would multiply weight storage."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import FoldConstants
from course.passes.fold_constants import SMALL
from course.testing import random_tensor
from ir_builders import constant_chain, ir3_model, model
from test_passes import assert_same_outputs, graph_of, ops, reference


def test_shape_chain_folds_once_the_shape_is_static():
    m = constant_chain()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 3  # x: [3, 6], no symbolic dim left
    x = random_tensor((3, 6), seed=1)
    want = reference(m, {"x": x})
    g = graph_of(m)
    assert ops(g) == ["Shape", "Constant", "Concat", "Slice", "Reshape"]  # precondition
    res = FoldConstants()(g)
    assert res.modified is True and res.graph is g
    assert ops(g) == ["Reshape"]  # four nodes fewer
    target = g.nodes[0].inputs[1]
    np.testing.assert_array_equal(target.const_value, [-1, 3])
    assert not {"zero", "two"} & set(g.initializers)  # the inputs only the folded nodes read went
    assert_same_outputs(reference(g, {"x": x}), want, exact=True)
    assert FoldConstants()(g).modified is False
    g.verify()


def test_symbolic_batch_folds_only_the_constant_node():
    m = constant_chain()  # x: [N, 6]: Shape(x) is not known, so neither is anything after it
    x = random_tensor((4, 6), seed=2)
    want = reference(m, {"x": x})
    g = graph_of(m)
    assert "Constant" in ops(g)
    assert FoldConstants()(g).modified is True
    assert ops(g) == ["Shape", "Concat", "Slice", "Reshape"]  # only the Constant became an initializer
    assert_same_outputs(reference(g, {"x": x}), want, exact=True)
    g.verify()


def _transposed_weight(shared: bool):
    w = random_tensor((90, 80), seed=3)  # 7200 elements: above SMALL, so only "freed" storage allows it
    nodes = [h.make_node("Transpose", ["w"], ["wt"], name="t", perm=[1, 0]),
             h.make_node("MatMul", ["x", "wt"], ["y"], name="mm")]
    outs = [("y", T.FLOAT, None)]
    if shared:
        nodes.append(h.make_node("MatMul", ["x2", "w"], ["z"], name="mm2"))
        outs.append(("z", T.FLOAT, None))
    ins = [("x", T.FLOAT, [2, 80])] + ([("x2", T.FLOAT, [3, 90])] if shared else [])
    return model(nodes, ins, outs, {"w": w})


def test_a_weight_only_the_folded_node_reads_is_replaced_not_copied():
    m = _transposed_weight(shared=False)
    assert 80 * 90 > SMALL
    feeds = {"x": random_tensor((2, 80), seed=4)}
    want = reference(m, feeds)
    g = graph_of(m)
    assert ops(g) == ["Transpose", "MatMul"]
    assert FoldConstants()(g).modified is True
    assert ops(g) == ["MatMul"] and "w" not in g.initializers
    assert sum(v.const_value.size for v in g.initializers.values()) == 80 * 90  # storage did not grow
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


def _big_constant_of_shape():
    nodes = [h.make_node("ConstantOfShape", ["shape"], ["big"], name="fill",
                         value=h.make_tensor("v", T.FLOAT, [1], [0.5])),
             h.make_node("Add", ["x", "big"], ["y"], name="add")]
    return model(nodes, [("x", T.FLOAT, [100, 100])], [("y", T.FLOAT, None)],
                 {"shape": np.array([100, 100], np.int64)})


def _ir3():
    m = ir3_model()  # 'b' may be overridden by a feed: not a constant
    m.graph.node.insert(0, h.make_node("Neg", ["b"], ["nb"], name="neg"))
    m.graph.node[1].input[1] = "nb"
    return m


def _output_is_folded():
    return model([h.make_node("Neg", ["c"], ["y"], name="neg")], [("x", T.FLOAT, [3])], [("y", T.FLOAT, None)],
                 {"c": np.ones(3, np.float32)})


@pytest.mark.parametrize("build, feeds", [
    (lambda: _transposed_weight(shared=True), {"x": random_tensor((2, 80)), "x2": random_tensor((3, 90))}),
    (_big_constant_of_shape, {"x": random_tensor((100, 100))}),
    (_ir3, {"x": random_tensor((2, 3))}),
    (_output_is_folded, {"x": random_tensor((3,))}),
], ids=["would-copy-a-shared-weight", "would-materialize-a-big-fill", "overridable-initializer", "graph-output"])
def test_nodes_that_must_not_fold(build, feeds):
    m = build()
    want = reference(m, feeds)
    g = graph_of(m)
    before = ops(g)
    assert FoldConstants()(g).modified is False
    assert ops(g) == before
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


def test_protected_op_types_are_not_folded():
    m = constant_chain()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 3
    g = graph_of(m)
    assert FoldConstants(protected={"Concat"})(g).modified is True
    assert ops(g) == ["Concat", "Slice", "Reshape"]  # Shape and Constant folded; Concat kept for its kernel
    g.verify()
