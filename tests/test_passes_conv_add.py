"""FuseConvAdd on small graphs: Conv -> Add(residual) [-> activation] becomes one FusedConv with
the residual as its input Z. Each test checks the pattern was there, ``modified``, the exact
rewritten node list, and bit-for-bit equal outputs (same kernels, same rounding), then verify()."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.ir.onnx_export import to_onnx
from course.ir.onnx_import import from_onnx
from course.ops.registry import lookup
from course.passes import FuseConvAdd, PassManager, default_passes
from course.runtime.session import InferenceSession
from course.testing import random_tensor
from ir_builders import model

X_SHAPE = (2, 4, 7, 9)


def conv_add(tail=(), first="c", z_shape=X_SHAPE, group=1, out="y", extra_out=(), bias=True):
    """x -> Conv(W[, B]) -> c;  s = Add(c, z) (or Add(z, c));  then ``tail`` nodes reading s."""
    c = X_SHAPE[1]
    inits = {"W": random_tensor((c, c // group, 3, 3), seed=1, low=-2, high=2)}
    conv_in = ["x", "W"]
    if bias:
        inits["B"] = random_tensor((c,), seed=2)
        conv_in.append("B")
    add_in = ["c", "z"] if first == "c" else ["z", "c"]
    nodes = [h.make_node("Conv", conv_in, ["c"], name="conv", pads=[1, 1, 1, 1], group=group),
             h.make_node("Add", add_in, ["s" if tail else out], name="add"), *tail]
    outputs = [(out, T.FLOAT, None)] + [(n, T.FLOAT, None) for n in extra_out]
    m = model(nodes, [("x", T.FLOAT, list(X_SHAPE)), ("z", T.FLOAT, list(z_shape))], outputs, inits)
    feeds = {"x": random_tensor(X_SHAPE, seed=3, low=-3, high=3), "z": random_tensor(z_shape, seed=4, low=-3, high=3)}
    return m, feeds


def graph_of(m):
    g = from_onnx(m)
    g.infer_types()
    return g


def run(m_or_g, feeds):
    return InferenceSession(m_or_g, graph_optimization_level="disable").run(None, feeds)


def ops(g):
    return [n.op_type for n in g.nodes]


TAILS = {  # id: (nodes after the Add, expected activation, expected params)
    "none": ((), "Identity", []),
    "relu": ((h.make_node("Relu", ["s"], ["y"], name="act"),), "Relu", []),
    "leaky": ((h.make_node("LeakyRelu", ["s"], ["y"], name="act", alpha=0.3),), "LeakyRelu", [0.3]),
}


@pytest.mark.parametrize("first", ["c", "z"])
@pytest.mark.parametrize("tail", list(TAILS))
def test_fuse_conv_add(tail, first):
    nodes, act, params = TAILS[tail]
    m, feeds = conv_add(nodes, first=first)
    want = run(m, feeds)[0]
    g = graph_of(m)
    assert ops(g) == ["Conv", "Add"] + [n.op_type for n in nodes]
    res = FuseConvAdd()(g)
    assert res.modified is True
    assert ops(g) == ["FusedConv"]
    fused = g.nodes[0]
    assert fused.domain == "course" and g.opset_imports["course"] == 1 and fused.name == "conv"
    assert [v.name for v in fused.inputs] == ["x", "W", "B", "z"]
    assert fused.attrs["activation"] == act and fused.attrs["activation_params"] == pytest.approx(params)
    assert [v.name for v in g.outputs] == ["y"] and g.outputs[0] is fused.outputs[0]
    np.testing.assert_array_equal(run(g, feeds)[0], want)
    g.verify()


def test_fuse_conv_add_depthwise_without_bias():
    m, feeds = conv_add(TAILS["relu"][0], group=X_SHAPE[1], bias=False)
    want = run(m, feeds)[0]
    g = graph_of(m)
    assert FuseConvAdd()(g).modified and ops(g) == ["FusedConv"]
    assert g.nodes[0].inputs[2] is None and g.nodes[0].inputs[3].name == "z"
    np.testing.assert_array_equal(run(g, feeds)[0], want)
    g.verify()
    proto = to_onnx(g)  # the omitted bias is written as "", and the saved model runs the same
    assert [list(n.input) for n in proto.graph.node] == [["x", "W", "", "z"]]
    np.testing.assert_array_equal(run(proto, feeds)[0], want)


def test_fuse_conv_add_with_a_broadcast_residual_grows_the_output():
    # Z of shape (1, C, 1, W) broadcasts into the conv output: the numpy route, same result.
    m, feeds = conv_add(TAILS["relu"][0], z_shape=(1, X_SHAPE[1], 1, X_SHAPE[3]))
    want = run(m, feeds)[0]
    g = graph_of(m)
    assert FuseConvAdd()(g).modified and ops(g) == ["FusedConv"]
    g.infer_types()
    assert g.outputs[0].type.shape == X_SHAPE
    np.testing.assert_array_equal(run(g, feeds)[0], want)


def test_fused_conv_residual_broadcasting_and_mismatch_in_the_kernel():
    fused, conv = lookup("FusedConv", 1, "course"), lookup("Conv", 17)
    x, w = random_tensor((1, 3, 5, 5), seed=1), random_tensor((4, 3, 3, 3), seed=2)
    z = random_tensor((2, 4, 5, 5), seed=3)  # a bigger batch: the output grows, as Add's would
    got = fused.compute(x, w, None, z, activation="Relu", activation_params=[], pads=[1] * 4)
    np.testing.assert_array_equal(got, np.maximum(np.add(conv.compute(x, w, pads=[1] * 4), z), 0))
    with pytest.raises(ValueError):
        fused.compute(x, w, None, z[:, :3], activation="Identity", activation_params=[], pads=[1] * 4)


def _z_feeds_twice():  # the conv output is also a graph output: the Add must stay
    return conv_add(TAILS["relu"][0], out="y", extra_out=("c",))[0]


def _act_reads_twice():  # the Add output is read by the Relu and a graph output: Add fuses, Relu stays
    return conv_add(TAILS["relu"][0], extra_out=("s",))[0]


def test_fuse_conv_add_leaves_what_it_must():
    g = graph_of(_z_feeds_twice())
    assert FuseConvAdd()(g).modified is False and ops(g) == ["Conv", "Add", "Relu"]
    g = graph_of(_act_reads_twice())
    assert FuseConvAdd()(g).modified is True and ops(g) == ["FusedConv", "Relu"]
    assert g.nodes[0].attrs["activation"] == "Identity" and g.nodes[0].outputs[0].name == "s"
    g.verify()
    for protected in ({"Conv"}, {"Add"}):
        g = graph_of(conv_add(TAILS["relu"][0])[0])
        assert FuseConvAdd(protected)(g).modified is False and ops(g) == ["Conv", "Add", "Relu"]


def test_add_of_two_convs_fuses_the_second_and_keeps_the_first():
    inits = {"W1": random_tensor((4, 4, 1, 1), seed=1), "W2": random_tensor((4, 4, 3, 3), seed=2)}
    nodes = [h.make_node("Conv", ["x", "W1"], ["a"], name="shortcut"),
             h.make_node("Conv", ["x", "W2"], ["b"], name="main", pads=[1] * 4),
             h.make_node("Add", ["a", "b"], ["s"], name="add"), h.make_node("Relu", ["s"], ["y"], name="act")]
    m = model(nodes, [("x", T.FLOAT, list(X_SHAPE))], [("y", T.FLOAT, None)], inits)
    feeds = {"x": random_tensor(X_SHAPE, seed=3)}
    g = graph_of(m)
    assert FuseConvAdd()(g).modified and ops(g) == ["Conv", "FusedConv"]
    assert g.nodes[1].name == "main" and g.nodes[1].inputs[3] is g.nodes[0].outputs[0]
    np.testing.assert_array_equal(run(g, feeds)[0], run(m, feeds)[0])
    g.verify()


def test_default_passes_fuse_activation_first_then_residual():
    # Conv -> Relu -> Add: the Relu fuses (FuseConvActivation); the Add reads a FusedConv, so
    # FuseConvAdd must leave it (the activation would otherwise run after the residual).
    inits = {"W": random_tensor((4, 4, 3, 3), seed=1)}
    nodes = [h.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1] * 4),
             h.make_node("Relu", ["c"], ["r"], name="act"), h.make_node("Add", ["r", "x"], ["y"], name="add")]
    m = model(nodes, [("x", T.FLOAT, list(X_SHAPE))], [("y", T.FLOAT, None)], inits)
    feeds = {"x": random_tensor(X_SHAPE, seed=3)}
    g = graph_of(m)
    res = PassManager(default_passes()).run(g)
    assert res.modified and ops(g) == ["FusedConv", "Add"] and g.nodes[0].attrs["activation"] == "Relu"
    np.testing.assert_array_equal(run(g, feeds)[0], run(m, feeds)[0])
