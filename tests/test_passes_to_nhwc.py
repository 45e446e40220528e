"""ToNHWC: layout-sensitive ops run channels last (course.nhwc), Transposes are inserted at their
borders and cancelled in pairs between them, so a chain of convolutions keeps only the two at the
graph's ends. Four-part tests: precondition, ``modified``, postcondition, equal outputs (exact:
the layout pass only moves data), then ``graph.verify()``."""
from __future__ import annotations

from collections import Counter

import pytest
from onnx import TensorProto as T, helper as h

from course.ir.onnx_import import from_onnx
from course.models import build_model
from course.passes import optimize
from course.passes.to_nhwc import ToNHWC, cancel_transpose_pairs
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

X = [2, 4, 9, 7]


def conv_chain(residual=False, flatten=False):
    """x -> Conv -> Relu -> MaxPool -> Conv [-> Add(skip)] -> GlobalAveragePool [-> Flatten]."""
    inits = {"W1": random_tensor((6, 4, 3, 3), seed=1), "B1": random_tensor((6,), seed=2),
             "W2": random_tensor((6, 6, 1, 1), seed=3)}
    nodes = [h.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             h.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("Conv", ["p1", "W2"], ["c2"], name="conv2")]
    last = "c2"
    if residual:
        nodes.append(h.make_node("Add", ["c2", "p1"], ["s"], name="add"))
        last = "s"
    nodes.append(h.make_node("GlobalAveragePool", [last], ["g"], name="gap"))
    out = "g"
    if flatten:
        nodes.append(h.make_node("Flatten", ["g"], ["f"], name="flat"))
        out = "f"
    return model(nodes, [("x", T.FLOAT, X)], [(out, T.FLOAT, None)], inits)


@pytest.mark.parametrize("kw", [dict(), dict(residual=True), dict(flatten=True)], ids=["chain", "residual", "flatten"])
def test_a_conv_region_keeps_transposes_only_at_its_borders(kw):
    m = conv_chain(**kw)
    feeds = {"x": random_tensor(X, seed=5)}
    want = reference(m, feeds)
    g = graph_of(m)
    assert "Transpose" not in ops(g)  # precondition
    res = ToNHWC()(g)
    assert res.modified is True
    assert all(n.domain == "course.nhwc" for n in g.nodes if n.op_type in ("Conv", "MaxPool", "GlobalAveragePool"))
    assert ops(g).count("Transpose") == 2  # into the region, and out of it
    assert ops(g)[0] == "Transpose" and g.nodes[0].attrs["perm"] == [0, 2, 3, 1]
    assert g.opset("course.nhwc") == 1
    assert [v.name for v in g.outputs] == [o.name for o in m.graph.output]
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


def test_no_layout_sensitive_op_is_not_modified():
    m = model([h.make_node("Relu", ["x"], ["y"])], [("x", T.FLOAT, X)], [("y", T.FLOAT, None)])
    g = graph_of(m)
    res = ToNHWC()(g)
    assert res.modified is False and ops(g) == ["Relu"]
    g.verify()


def test_cancel_keeps_a_transpose_other_nodes_still_read():
    m = model([h.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 3, 1]),
               h.make_node("Transpose", ["a"], ["b"], perm=[0, 3, 1, 2]),
               h.make_node("Transpose", ["a"], ["c"], perm=[0, 3, 2, 1]),
               h.make_node("Relu", ["b"], ["y"])],
              [("x", T.FLOAT, X)], [("y", T.FLOAT, None), ("c", T.FLOAT, None)])
    feeds = {"x": random_tensor(X, seed=6)}
    want = reference(m, feeds)
    g = graph_of(m)
    assert cancel_transpose_pairs(g) == 1
    assert ops(g) == ["Transpose", "Transpose", "Relu"] and g.nodes[2].inputs[0].name == "x"
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


@pytest.mark.parametrize("name", ["resnet", "mobilenetv2"])
def test_whole_models_keep_two_transposes(name):
    m = build_model(name, image_size=32, width=0.25, num_classes=10)
    g = from_onnx(m)
    optimize(g, "extended")
    feeds = {g.inputs[0].name: random_tensor([d.dim_value or 1 for d in m.graph.input[0].type.tensor_type.shape.dim])}
    want = reference(g, feeds)
    convs = Counter(ops(g))["FusedConv"] + Counter(ops(g))["Conv"]
    res = ToNHWC()(g)
    assert res.modified is True and ops(g).count("Transpose") == 2
    assert sum(n.domain == "course.nhwc" for n in g.nodes) >= convs
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()
