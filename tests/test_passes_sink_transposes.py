"""SinkTransposes: a Transpose moves below the elementwise ops reading it (constants permuted
back once) until it meets its inverse, which SimplifyAlgebra then cancels."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import PassManager, SimplifyAlgebra, SinkTransposes
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

NHWC, NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
SHAPE = [2, 3, 4, 5]


def nhwc_island(middle, inits=None, second=None):
    """x (NCHW) -> Transpose to NHWC -> middle (elementwise) -> Transpose back -> y."""
    nodes = [h.make_node("Transpose", ["x"], ["t"], name="to_nhwc", perm=NHWC), *middle,
             h.make_node("Transpose", ["m"], ["y"], name="to_nchw", perm=NCHW)]
    ins = [("x", T.FLOAT, SHAPE)] + ([("z", T.FLOAT, SHAPE)] if second else [])
    if second:
        nodes.insert(1, h.make_node("Transpose", ["z"], ["tz"], name="z_to_nhwc", perm=NHWC))
    return model(nodes, ins, [("y", T.FLOAT, None)], inits or {})


CASES = {  # id: (model, ops left)
    "relu": (nhwc_island([h.make_node("Relu", ["t"], ["m"], name="relu")]), ["Relu"]),
    "clip-sigmoid": (nhwc_island([h.make_node("Clip", ["t", "lo", "hi"], ["c"], name="clip"),
                                  h.make_node("Sigmoid", ["c"], ["m"], name="sig")],
                                 {"lo": np.float32(-0.5), "hi": np.float32(0.5)}), ["Clip", "Sigmoid"]),
    "add-per-channel-constant": (nhwc_island([h.make_node("Add", ["t", "c"], ["m"], name="add")],
                                             {"c": random_tensor((3,), seed=7)}), ["Add"]),
    "constant-minus": (nhwc_island([h.make_node("Sub", ["c", "t"], ["m"], name="sub")],
                                   {"c": random_tensor((4, 1, 3), seed=8)}), ["Sub"]),
    "mul-two-transposed": (nhwc_island([h.make_node("Mul", ["t", "tz"], ["m"], name="mul")], second=True),
                           ["Mul"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_transposes_sink_and_cancel(name):
    m, left = CASES[name]
    feeds = {"x": random_tensor(SHAPE, seed=1), "z": random_tensor(SHAPE, seed=2)}
    feeds = {k: v for k, v in feeds.items() if k in [i.name for i in m.graph.input]}
    want = reference(m, feeds)
    g = graph_of(m)
    assert ops(g).count("Transpose") >= 2  # precondition
    res = SinkTransposes()(g)
    assert res.modified is True
    assert len(g.nodes) == len(m.graph.node) - (1 if name == "mul-two-transposed" else 0)  # moved, not added
    done = PassManager([SinkTransposes(), SimplifyAlgebra()]).run(g)
    assert done.modified is True
    assert ops(g) == left and g.outputs[0].name == "y"  # both Transposes gone
    assert_same_outputs(reference(g, feeds), want, exact=True)  # elementwise ops commute exactly
    g.verify()


def test_transpose_with_another_reader_or_a_fed_operand_stays():
    for nodes, ins in (
        ([h.make_node("Relu", ["t"], ["m"], name="relu"), h.make_node("Neg", ["t"], ["n"], name="neg")], []),
        ([h.make_node("Add", ["t", "w"], ["m"], name="add")], [("w", T.FLOAT, [2, 4, 5, 3])]),
    ):
        nodes = [h.make_node("Transpose", ["x"], ["t"], name="to_nhwc", perm=NHWC), *nodes]
        outs = [("m", T.FLOAT, None)] + ([("n", T.FLOAT, None)] if len(nodes) == 3 else [])
        g = graph_of(model(nodes, [("x", T.FLOAT, SHAPE), *ins], outs))
        before = ops(g)
        assert SinkTransposes()(g).modified is False and ops(g) == before
        g.verify()
