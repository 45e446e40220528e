"""SliceForward: a Slice moves ahead of the elementwise op it reads (a constant operand sliced the
same way), so the op computes only what is kept. Each test checks the pattern was there,
``modified``, the new order and the smaller shape the op now sees, and exactly equal outputs
(the same elementwise arithmetic on fewer elements), then verify()."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import SliceForward, level_passes
from course.runtime.session import InferenceSession
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

SHAPE = [2, 6, 5, 4]


def sliced(op_nodes, inits=None, starts=(1,), ends=(5,), axes=(1,), steps=None, opset=17, extra_inputs=(),
           out=T.FLOAT, x_shape=SHAPE):
    """x -> op nodes (ending in value "e") -> Slice(starts, ends, axes[, steps]) -> y."""
    inits = dict(inits or {})
    if opset >= 10:
        for k, v in (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps)):
            if v is not None and not isinstance(v, str):
                inits[k] = np.array(v, np.int64)
        names = [v if isinstance(v, str) else k for k, v in
                 (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps)) if v is not None]
        cut = h.make_node("Slice", ["e", *names], ["y"], name="cut")
    else:
        cut = h.make_node("Slice", ["e"], ["y"], name="cut", starts=list(starts), ends=list(ends), axes=list(axes))
    m = model([*op_nodes, cut], [("x", T.FLOAT, list(x_shape)), *extra_inputs], [("y", out, None)], inits, opset=opset)
    return m, {"x": random_tensor(tuple(x_shape), seed=1, low=-2, high=2)}


def op(op_type, inputs=("x",), **attrs):
    return h.make_node(op_type, list(inputs), ["e"], name="op", **attrs)


CASES = {  # id: (model and feeds, the shape the moved op sees)
    "relu": (sliced([op("Relu")]), (2, 4, 5, 4)),
    "sigmoid-two-axes": (sliced([op("Sigmoid")], starts=(0, -3), ends=(1, 100), axes=(0, 2)), (1, 6, 3, 4)),
    "leaky-negative-step": (sliced([op("LeakyRelu", alpha=0.3)], starts=(-1,), ends=(-100,), axes=(3,),
                                   steps=(-2,)), (2, 6, 5, 2)),
    "clip-bounds": (sliced([op("Clip", ("x", "lo", "hi"))], {"lo": np.float32(-0.5), "hi": np.float32(1)}),
                    (2, 4, 5, 4)),
    "cast": (sliced([op("Cast", to=T.DOUBLE)], out=T.DOUBLE), (2, 4, 5, 4)),
    "opset9-attributes": (sliced([op("Tanh")], opset=9), (2, 4, 5, 4)),
    "add-per-channel": (sliced([op("Add", ("x", "c"))], {"c": random_tensor((6, 1, 1), seed=2)}), (2, 4, 5, 4)),
    "sub-constant-first-full": (sliced([op("Sub", ("c", "x"))], {"c": random_tensor(SHAPE, seed=3)},
                                       starts=(1, 0), ends=(2, 3), axes=(0, 3)), (1, 6, 5, 3)),
    "mul-scalar": (sliced([op("Mul", ("x", "c"))], {"c": np.float32(3.0)}, steps=(2,)), (2, 2, 5, 4)),
    "div-row-not-sliced": (sliced([op("Div", ("x", "c"))], {"c": random_tensor((4,), seed=4, low=1, high=2)}),
                           (2, 4, 5, 4)),
    "mul-x-by-itself": (sliced([op("Mul", ("x", "x"))]), (2, 4, 5, 4)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_slice_moves_ahead_of_elementwise_work(case):
    (m, feeds), seen = CASES[case]
    want = reference(m, feeds)
    g = graph_of(m)
    kind = m.graph.node[0].op_type
    assert ops(g) == [kind, "Slice"]  # precondition
    attrs = dict(g.nodes[0].attrs)
    res = SliceForward()(g)
    assert res.modified is True and res.graph is g
    assert ops(g) == ["Slice", kind]
    cut, moved = g.nodes
    assert cut.inputs[0].name == "x" and moved.name == "op" and moved.attrs == attrs
    assert [v.name for v in g.outputs] == ["y"] and g.outputs[0] is moved.outputs[0]
    g.infer_types()
    assert cut.outputs[0].type.shape == seen  # the op now runs on the slice only
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()
    assert SliceForward()(g).modified is False  # nothing left to move


def test_a_slice_with_starts_known_only_at_run_time_still_moves_ahead_of_a_unary_op():
    m, feeds = sliced([op("Relu")], starts="s", extra_inputs=[("s", T.INT64, [1])])
    feeds["s"] = np.array([2], np.int64)
    want = reference(m, feeds)
    g = graph_of(m)
    assert SliceForward()(g).modified is True and ops(g) == ["Slice", "Relu"]
    assert [v.name for v in g.nodes[0].inputs[:2]] == ["x", "s"]
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.infer_types()
    g.verify()


def _read_twice():
    m, _ = sliced([op("Relu")])
    m.graph.node.append(h.make_node("Neg", ["e"], ["n"], name="neg"))
    m.graph.output.append(h.make_tensor_value_info("n", T.FLOAT, None))
    return m


def _op_is_output():
    m, _ = sliced([op("Relu")])
    m.graph.output.append(h.make_tensor_value_info("e", T.FLOAT, None))
    return m


def _fed_operand():  # Add(x, z) with z fed: both would need a Slice
    return sliced([op("Add", ("x", "z"))], extra_inputs=[("z", T.FLOAT, SHAPE)])[0]


def _dynamic_starts_binary():  # the constant cannot be sliced now
    return sliced([op("Add", ("x", "c"))], {"c": random_tensor((6, 1, 1), seed=2)}, starts="s",
                  extra_inputs=[("s", T.INT64, [1])])[0]


def _broadcast_up():  # x is (2, 1, 5, 4), c is (6, 1, 1): the Slice cuts axis 1, which c grows
    return sliced([op("Mul", ("x", "c"))], {"c": random_tensor((6, 1, 1), seed=5)}, x_shape=(2, 1, 5, 4))[0]


def _softmax():  # mixes elements along its axis
    return sliced([op("Softmax", axis=1)])[0]


@pytest.mark.parametrize("build", [_read_twice, _op_is_output, _fed_operand, _dynamic_starts_binary, _broadcast_up,
                                   _softmax])
def test_slice_stays_where_moving_it_is_wrong_or_adds_work(build):
    g = graph_of(build())
    before = ops(g)
    assert SliceForward()(g).modified is False and ops(g) == before
    g.verify()


@pytest.mark.parametrize("protected", [{"Slice"}, {"Relu"}])
def test_slice_forward_respects_protected_ops(protected):
    g = graph_of(sliced([op("Relu")])[0])
    assert SliceForward(protected)(g).modified is False and ops(g) == ["Relu", "Slice"]


def test_the_extended_level_keeps_a_conv_activation_fused_and_moves_other_slices():
    # Conv -> Relu -> Slice: the Relu fuses into the Conv first (its epilogue is free), so the
    # Slice does not take it away; the Sigmoid after it is moved behind its own Slice.
    inits = {"W": random_tensor((6, 6, 3, 3), seed=6), "starts": np.array([1], np.int64),
             "ends": np.array([5], np.int64), "axes": np.array([1], np.int64)}
    nodes = [h.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1] * 4),
             h.make_node("Relu", ["c"], ["r"], name="relu"), h.make_node("Slice", ["r", "starts", "ends", "axes"],
                                                                         ["s"], name="cut1"),
             h.make_node("Sigmoid", ["s"], ["g"], name="sig"),
             h.make_node("Slice", ["g", "starts", "ends", "axes"], ["y"], name="cut2")]
    m = model(nodes, [("x", T.FLOAT, SHAPE)], [("y", T.FLOAT, None)], inits)
    feeds = {"x": random_tensor(SHAPE, seed=7)}
    s = InferenceSession(m, graph_optimization_level="extended", providers=["ReferenceExecutionProvider"])
    assert ops(s.graph) == ["FusedConv", "Slice", "Slice", "Sigmoid"]
    assert "SliceForward" in [p.name for p in level_passes("extended")]
    np.testing.assert_allclose(s.run(None, feeds)[0], reference(m, feeds)[0], rtol=1e-6, atol=1e-6)
    s.graph.verify()
