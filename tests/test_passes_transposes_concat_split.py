"""SinkTransposesThroughConcat and SinkTransposesThroughSplit: Transposes move below a Concat
(k become one) and below a Split (one per part, each meeting the Transpose below it), where
SimplifyAlgebra cancels or merges the pairs. Data only moves, so outputs are exactly equal."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import PassManager, SimplifyAlgebra, SinkTransposesThroughConcat, SinkTransposesThroughSplit, \
    level_passes
from course.runtime.session import InferenceSession
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

NHWC, NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
SHAPE = [2, 3, 4, 5]  # NCHW


def tr(src, dst, perm, name=None):
    return h.make_node("Transpose", [src], [dst], name=name or f"t_{dst}", perm=perm)


def nhwc_concat(n_inputs=2, const=None, axis=3, back=NCHW):
    """x_i (NCHW) -> Transpose to NHWC each -> Concat(axis) [+ a constant input] -> Transpose back -> y."""
    nodes = [tr(f"x{i}", f"t{i}", NHWC) for i in range(n_inputs)]
    cat_in = [f"t{i}" for i in range(n_inputs)] + (["c"] if const is not None else [])
    nodes.append(h.make_node("Concat", cat_in, ["cat"], name="cat", axis=axis))
    nodes.append(tr("cat", "y", back, name="back"))
    ins = [(f"x{i}", T.FLOAT, SHAPE) for i in range(n_inputs)]
    m = model(nodes, ins, [("y", T.FLOAT, None)], {} if const is None else {"c": const})
    return m, {f"x{i}": random_tensor(SHAPE, seed=i + 1) for i in range(n_inputs)}


CONCATS = {  # id: (model and feeds, ops after sinking + SimplifyAlgebra)
    "two-channels": (nhwc_concat(2), ["Concat"]),
    "three-negative-axis": (nhwc_concat(3, axis=-1), ["Concat"]),
    "on-width": (nhwc_concat(2, axis=2), ["Concat"]),
    "with-constant": (nhwc_concat(2, const=random_tensor((2, 4, 5, 2), seed=9)), ["Concat"]),
    "not-the-inverse": (nhwc_concat(2, back=[0, 1, 2, 3]), ["Concat", "Transpose"]),
}


@pytest.mark.parametrize("case", list(CONCATS))
def test_transposes_sink_through_concat_and_cancel(case):
    (m, feeds), left = CONCATS[case]
    want = reference(m, feeds)
    g = graph_of(m)
    n_in = len(feeds)
    assert ops(g).count("Transpose") == n_in + 1  # precondition: one per input, one after
    res = SinkTransposesThroughConcat()(g)
    assert res.modified is True
    assert ops(g).count("Transpose") == 2 and len(g.nodes) == 3  # k Transposes became one
    cat = next(n for n in g.nodes if n.op_type == "Concat")
    assert cat.attrs["axis"] == NHWC[CONCATS[case][0][0].graph.node[n_in].attribute[0].i % 4]
    assert all(v.producer() is None for v in cat.inputs)  # reads the NCHW inputs (and the constant) directly
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.infer_types()
    g.verify()
    assert PassManager([SinkTransposesThroughConcat(), SimplifyAlgebra()]).run(g).modified
    assert ops(g) == left and g.outputs[0].name == "y"
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


def _other_reader():  # the first Transpose is also read by a Relu
    m, _ = nhwc_concat(2)
    m.graph.node.append(h.make_node("Relu", ["t0"], ["r"], name="relu"))
    m.graph.output.append(h.make_tensor_value_info("r", T.FLOAT, None))
    return m


def _mixed_perms():  # x1 is (N, W, H, C): perm [0, 2, 1, 3] gives it t0's shape, but not p
    m, _ = nhwc_concat(2)
    m.graph.node[1].attribute[0].ints[:] = [0, 2, 1, 3]
    for d, n in zip(m.graph.input[1].type.tensor_type.shape.dim, (2, 5, 4, 3)):
        d.dim_value = n
    return m


def _plain_input():  # x1 joins the Concat untransposed (a fed value, not a constant)
    m, _ = nhwc_concat(2)
    del m.graph.node[1]
    m.graph.node[1].input[1] = "x1"
    m.graph.input[1].type.tensor_type.shape.dim[1].dim_value = 4
    m.graph.input[1].type.tensor_type.shape.dim[2].dim_value = 5
    m.graph.input[1].type.tensor_type.shape.dim[3].dim_value = 3
    return m


@pytest.mark.parametrize("build", [_other_reader, _mixed_perms, _plain_input])
def test_concat_keeps_transposes_it_cannot_move(build):
    g = graph_of(build())
    before = ops(g)
    assert SinkTransposesThroughConcat()(g).modified is False and ops(g) == before
    assert SinkTransposesThroughConcat({"Concat"})(graph_of(nhwc_concat(2)[0])).modified is False
    g.verify()


# --- Split -----------------------------------------------------------------------------------------
def nhwc_split(sizes=(1, 2), axis=3, backs=(NCHW, NCHW), opset=17):
    """x (NCHW) -> Transpose to NHWC -> Split(axis) -> each part Transposed by backs[i] -> y_i."""
    parts = [f"p{i}" for i in range(len(sizes))]
    inits = {"sizes": np.array(sizes, np.int64)} if opset >= 13 else {}
    split = h.make_node("Split", ["t", "sizes"] if opset >= 13 else ["t"], parts, name="split", axis=axis,
                        **({} if opset >= 13 else {"split": list(sizes)}))
    nodes = [tr("x", "t", NHWC), split] + [tr(p, f"y{i}", b, name=f"back{i}") for i, (p, b) in
                                            enumerate(zip(parts, backs))]
    outs = [(f"y{i}", T.FLOAT, None) for i in range(len(sizes))]
    return model(nodes, [("x", T.FLOAT, SHAPE)], outs, inits, opset=opset), {"x": random_tensor(SHAPE, seed=5)}


SPLITS = {  # id: (model and feeds, Transposes left after sinking + SimplifyAlgebra)
    "channels": (nhwc_split(), 0),
    "channels-opset11": (nhwc_split(opset=11), 0),
    "height-three-parts": (nhwc_split((1, 1, 2), axis=1, backs=(NCHW,) * 3), 0),
    "one-part-elsewhere": (nhwc_split(backs=(NCHW, [0, 1, 3, 2])), 1),  # merged into one Transpose
}


@pytest.mark.parametrize("case", list(SPLITS))
def test_transpose_sinks_through_split_and_pairs_cancel(case):
    (m, feeds), left = SPLITS[case]
    want = reference(m, feeds)
    g = graph_of(m)
    k = len(g.outputs)
    assert ops(g) == ["Transpose", "Split"] + ["Transpose"] * k  # precondition
    res = SinkTransposesThroughSplit()(g)
    assert res.modified is True
    assert ops(g) == ["Split"] + ["Transpose"] * (2 * k)  # one moved Transpose per part, meeting its T_q
    split = g.nodes[0]
    axis = next(a.i for a in m.graph.node[1].attribute if a.name == "axis")
    assert split.inputs[0].name == "x" and split.attrs["axis"] == NHWC[axis]
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.infer_types()
    g.verify()
    PassManager([SinkTransposesThroughSplit(), SimplifyAlgebra()]).run(g)
    assert ops(g) == ["Split"] + ["Transpose"] * left
    assert [v.name for v in g.outputs] == [f"y{i}" for i in range(k)]
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


def _part_is_output():
    m, _ = nhwc_split()
    m.graph.output.append(h.make_tensor_value_info("p0", T.FLOAT, None))
    return m


def _part_read_by_relu():
    m, _ = nhwc_split()
    m.graph.node.append(h.make_node("Relu", ["p1"], ["r"], name="relu"))
    m.graph.output.append(h.make_tensor_value_info("r", T.FLOAT, None))
    return m


def _transpose_read_twice():
    m, _ = nhwc_split()
    m.graph.output.append(h.make_tensor_value_info("t", T.FLOAT, None))
    return m


@pytest.mark.parametrize("build", [_part_is_output, _part_read_by_relu, _transpose_read_twice])
def test_split_keeps_a_transpose_whose_move_would_add_work(build):
    g = graph_of(build())
    before = ops(g)
    assert SinkTransposesThroughSplit()(g).modified is False and ops(g) == before
    g.verify()
    assert SinkTransposesThroughSplit({"Split"})(graph_of(nhwc_split()[0])).modified is False


def nhwc_island(tail="Relu", concat_order=("rb", "ra")):
    """A converter's NHWC island: x -> Transpose to NHWC -> Split(channels) -> ``tail`` each ->
    Concat(channels) -> Transpose back to NCHW -> y."""
    nodes = [tr("x", "t", NHWC), h.make_node("Split", ["t", "sizes"], ["a", "b"], name="split", axis=3),
             h.make_node(tail, ["a"], ["ra"], name="ra"), h.make_node(tail, ["b"], ["rb"], name="rb"),
             h.make_node("Concat", list(concat_order), ["cat"], name="cat", axis=3), tr("cat", "y", NCHW, name="back")]
    m = model(nodes, [("x", T.FLOAT, SHAPE)], [("y", T.FLOAT, None)], {"sizes": np.array([1, 2], np.int64)})
    return m, {"x": random_tensor(SHAPE, seed=6)}


def test_an_nhwc_split_concat_island_loses_both_transposes_at_the_extended_level():
    # Split sinking puts T_p on each part (they lead through the Relus to one Concat),
    # SinkTransposes moves them below the Relus, Concat sinking makes them one again, and that
    # one cancels the Transpose back: two Transposes in, none out.
    m, feeds = nhwc_island()
    want = reference(m, feeds)
    g = graph_of(m)
    assert ops(g) == ["Transpose", "Split", "Relu", "Relu", "Concat", "Transpose"]
    assert SinkTransposesThroughSplit()(g).modified is True
    assert ops(g) == ["Split", "Transpose", "Transpose", "Relu", "Relu", "Concat", "Transpose"]
    assert_same_outputs(reference(g, feeds), want, exact=True)
    s = InferenceSession(m, graph_optimization_level="extended", providers=["ReferenceExecutionProvider"])
    assert ops(s.graph) == ["Split", "Relu", "Relu", "Concat"]
    assert s.graph.nodes[0].attrs["axis"] == 1 and s.graph.nodes[-1].attrs["axis"] == 1
    assert_same_outputs(s.run(None, feeds), want, exact=True)
    assert {"SinkTransposesThroughConcat", "SinkTransposesThroughSplit"} <= {p.name for p in level_passes("extended")}
    s.graph.verify()


def _island_with_softmax():  # Softmax is not elementwise: the Transposes would be stuck on the parts
    return nhwc_island(tail="Softmax")[0]


def _island_concat_with_a_stranger():  # the Concat also reads a fed NHWC tensor z: no Transpose to merge
    m, _ = nhwc_island(concat_order=("rb", "ra", "z"))
    m.graph.input.append(h.make_tensor_value_info("z", T.FLOAT, [2, 4, 5, 2]))
    return m


@pytest.mark.parametrize("build", [_island_with_softmax, _island_concat_with_a_stranger])
def test_split_does_not_move_a_transpose_that_would_be_stuck(build):
    g = graph_of(build())
    before = ops(g)
    assert SinkTransposesThroughSplit()(g).modified is False and ops(g) == before
    g.verify()


def test_split_part_reaching_its_transpose_through_an_activation():
    # part a goes Sigmoid -> Transpose back, part b straight to its Transpose back: both cancel
    nodes = [tr("x", "t", NHWC), h.make_node("Split", ["t", "sizes"], ["a", "b"], name="split", axis=3),
             h.make_node("Sigmoid", ["a"], ["sa"], name="sig"), tr("sa", "y0", NCHW), tr("b", "y1", NCHW)]
    m = model(nodes, [("x", T.FLOAT, SHAPE)], [("y0", T.FLOAT, None), ("y1", T.FLOAT, None)],
              {"sizes": np.array([1, 2], np.int64)})
    feeds = {"x": random_tensor(SHAPE, seed=8)}
    want = reference(m, feeds)
    s = InferenceSession(m, graph_optimization_level="extended", providers=["ReferenceExecutionProvider"])
    assert ops(s.graph) == ["Split", "Sigmoid"] and [v.name for v in s.graph.outputs] == ["y0", "y1"]
    assert_same_outputs(s.run(None, feeds), want, exact=True)
    s.graph.verify()
