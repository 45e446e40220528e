"""FuseSiblingConvs: convolutions reading the same input with the same attributes become one Conv
(filters stacked) and a Split whose sizes give back exactly each sibling's channels."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import FuseConvActivation, FuseSiblingConvs, PassManager
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

X = [2, 6, 7, 9]


def siblings(ms=(3, 5, 2), bias=(True, False, True), k=1, opset=17, relu=False, odd=None):
    """x -> one Conv per entry of ``ms`` (M filters each), joined by Concat; ``odd`` adds a Conv
    with other attributes that must stay apart."""
    inits, nodes, outs = {}, [], []
    for i, (mi, b) in enumerate(zip(ms, bias)):
        inits[f"W{i}"] = random_tensor((mi, X[1], k, k), seed=10 + i)
        ins = ["x", f"W{i}"]
        if b:
            inits[f"B{i}"] = random_tensor((mi,), seed=20 + i)
            ins.append(f"B{i}")
        nodes.append(h.make_node("Conv", ins, [f"c{i}"], name=f"conv{i}", pads=[k // 2] * 4))
        outs.append(f"c{i}")
        if relu:
            nodes.append(h.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
            outs[-1] = f"r{i}"
    if odd:
        inits["Wodd"] = random_tensor((4, X[1], 1, 1), seed=30)
        nodes.append(h.make_node("Conv", ["x", "Wodd"], ["codd"], name="odd", **odd))
        outs.append("codd")
    nodes.append(h.make_node("Concat", outs[:len(ms)], ["y"], name="cat", axis=1))
    graph_outs = [("y", T.FLOAT, None)] + ([("codd", T.FLOAT, None)] if odd else [])
    return model(nodes, [("x", T.FLOAT, X)], graph_outs, inits, opset=opset)


@pytest.mark.parametrize("kw", [dict(), dict(k=3), dict(opset=11), dict(bias=(False, False, False)),
                                dict(odd=dict(strides=[2, 2]))],
                         ids=["1x1", "3x3", "split-attribute", "no-bias", "other-strides-apart"])
def test_siblings_become_one_conv_and_a_split(kw):
    m = siblings(**kw)
    feeds = {"x": random_tensor(X, seed=1)}
    want = reference(m, feeds)
    g = graph_of(m)
    n_conv = ops(g).count("Conv")
    assert n_conv >= 3
    res = FuseSiblingConvs()(g)
    assert res.modified is True
    assert ops(g).count("Conv") == n_conv - 2 and ops(g).count("Split") == 1  # 3 convs -> 1 conv + 1 split
    conv = next(n for n in g.nodes if n.op_type == "Conv" and n.name.endswith("_siblings"))
    split = g.nodes[g.nodes.index(conv) + 1]
    sizes = split.attrs.get("split") or list(split.inputs[1].const_value)
    assert split.op_type == "Split" and split.attrs["axis"] == 1 and list(sizes) == [3, 5, 2]
    assert conv.inputs[1].const_value.shape == (10, 6, kw.get("k", 1), kw.get("k", 1))
    assert (len(conv.inputs) == 3) == any(kw.get("bias", (True,)))
    assert not any(k.startswith(("W", "B")) and k[1:].isdigit() for k in g.initializers)
    assert_same_outputs(reference(g, feeds), want)  # one GEMM instead of three: close, not bit-equal
    assert FuseSiblingConvs()(g).modified is False
    g.infer_types()  # the new Conv's output gets its type; declared outputs must agree
    g.verify()


def test_fused_activations_fuse_horizontally_too():
    m = siblings(relu=True)
    feeds = {"x": random_tensor(X, seed=2)}
    want = reference(m, feeds)
    g = graph_of(m)
    PassManager([FuseConvActivation(), FuseSiblingConvs()]).run(g)
    assert ops(g) == ["FusedConv", "Split", "Concat"]
    assert_same_outputs(reference(g, feeds), want)
    g.infer_types()  # the new Conv's output gets its type; declared outputs must agree
    g.verify()


def test_grouped_or_protected_siblings_stay():
    m = siblings()
    for node in m.graph.node[:3]:
        node.attribute.append(h.make_attribute("group", 2))
        for init in m.graph.initializer:
            if init.name == node.input[1]:
                init.dims[1] = 3
                arr = np.frombuffer(init.raw_data, np.float32)[: int(np.prod(init.dims))]
                init.raw_data = arr.tobytes()
    g = graph_of(m)
    assert FuseSiblingConvs()(g).modified is False
    g2 = graph_of(siblings())
    assert FuseSiblingConvs(protected={"Split"})(g2).modified is False and ops(g2).count("Conv") == 3
    g.infer_types()  # the new Conv's output gets its type; declared outputs must agree
    g.verify()
    g2.infer_types()
    g2.verify()
