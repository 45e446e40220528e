"""Whole-graph shape/dtype inference: symbolic batch, constant propagation, errors naming nodes."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.errors import DTypeError, ModelError, OpAttributeError, ShapeError
from course.ir import TensorType
from course.ir.onnx_import import from_onnx
from course.ops import registry
from course.ops.base import Op
from ir_builders import convnet, mlp, model


def types(g):
    return {v.name: v.type for v in g.values()}


def inferred(m):
    g = from_onnx(m)
    g.infer_types()
    g.verify()
    return g


def test_mlp_types_keep_the_symbolic_batch():
    t = types(inferred(mlp()))
    assert t["h0"] == TensorType(np.float32, ("N", 5))
    assert t["h3"] == TensorType(np.float32, ("N", 3))
    assert t["y"] == TensorType(np.float32, ("N", 3))


def test_static_batch_gives_static_shapes():
    t = types(inferred(mlp(batch=2)))
    assert all(v.is_static for v in t.values())
    assert t["h2"].shape == (2, 5)


def test_reshape_reads_its_shape_from_an_initializer():
    t = types(inferred(convnet()))
    assert t["p"] == TensorType(np.float32, ("N", 4, 4, 4))
    assert t["y"].shape == ("N", 64)  # needs the constant [0, -1]


def test_overridable_initializer_is_not_a_constant():
    m = convnet()
    m.ir_version = 3
    m.graph.input.append(h.make_tensor_value_info("shape", T.INT64, [2]))  # IR<4: a feed may override it
    m.graph.output[0].type.tensor_type.ClearField("shape")
    y = types(inferred(m))["y"]
    assert y.shape is not None and len(y.shape) == 2 and not y.is_static


def test_symbolic_broadcast():
    m = model([h.make_node("Add", ["a", "b"], ["c"], name="add")],
              [("a", T.FLOAT, ["N", 1, 4]), ("b", T.FLOAT, [3, 1])], [("c", T.FLOAT, None)])
    assert types(inferred(m))["c"].shape == ("N", 3, 4)


def test_declared_output_type_merges_with_inferred():
    m = model([h.make_node("Relu", ["a"], ["c"], name="r")],
              [("a", T.FLOAT, [2, 3])], [("c", T.FLOAT, ["batch", None])])
    assert types(inferred(m))["c"].shape == (2, 3)


@pytest.mark.parametrize("declared, err, match", [
    ((T.FLOAT, [2, 4]), ShapeError, r"node 'r' \(Relu\): output 'c' is declared \(2, 4\) but computes \(2, 3\)"),
    ((T.FLOAT, [2, 3, 1]), ShapeError, r"node 'r' \(Relu\): output 'c' is declared with rank 3"),
    ((T.INT64, [2, 3]), DTypeError, r"node 'r' \(Relu\): output 'c' is declared int64 but computes float32"),
])
def test_declared_output_conflicts_are_errors(declared, err, match):
    m = model([h.make_node("Relu", ["a"], ["c"], name="r")], [("a", T.FLOAT, [2, 3])], [("c", *declared)])
    g = from_onnx(m)
    with pytest.raises(err, match=match):
        g.infer_types()


@pytest.mark.parametrize("node, inputs, err, match", [
    (h.make_node("Add", ["a", "b"], ["c"], name="add1"), [("a", T.FLOAT, [2, 3]), ("b", T.FLOAT, [4])],
     ShapeError, r"^node 'add1' \(Add\): .*broadcast"),
    (h.make_node("Add", ["a", "b"], ["c"], name="add2"), [("a", T.FLOAT, [2]), ("b", T.INT64, [2])],
     DTypeError, r"^node 'add2' \(Add\): .*float32.*int64|^node 'add2' \(Add\): .*int64.*float32"),
    (h.make_node("Relu", ["a"], ["c"], name="relu1", alpha=0.5), [("a", T.FLOAT, [2])],
     OpAttributeError, r"^node 'relu1' \(Relu\): unknown attribute.*alpha"),
    (h.make_node("Add", ["a"], ["c"], name="add3"), [("a", T.FLOAT, [2])],
     ModelError, r"^node 'add3' \(Add\): takes 2 input\(s\), got 1"),
    (h.make_node("Relu", ["a"], ["c", "d"], name="relu2"), [("a", T.FLOAT, [2])],
     ModelError, r"^node 'relu2' \(Relu\): takes 1 output\(s\), got 2"),
    (h.make_node("Conv", ["a", "w"], ["c"], name="conv1"), [("a", T.FLOAT, [1, 3, 5, 5]), ("w", T.FLOAT, [2, 4, 3, 3])],
     ShapeError, r"^node 'conv1' \(Conv\): "),
])
def test_op_errors_are_prefixed_with_the_node(node, inputs, err, match):
    g = from_onnx(model([node], inputs, [("c", T.FLOAT, None)]))
    with pytest.raises(err, match=match):
        g.infer_types()


class _CrashingInfer(Op):
    def infer(self, ctx):
        return [None][ctx.attrs["k"]]  # IndexError: a buggy op must not crash the engine

    attrs = {"k": 1}


registry.register("CrashingInfer", since=1, domain="test.ir.infer")(_CrashingInfer)


def test_a_crashing_infer_becomes_a_shape_error():
    node = h.make_node("CrashingInfer", ["a"], ["c"], name="bad", domain="test.ir.infer")
    m = model([node], [("a", T.FLOAT, [2])], [("c", T.FLOAT, None)], extra_opsets=[("test.ir.infer", 1)])
    g = from_onnx(m)
    with pytest.raises(ShapeError, match=r"node 'bad' \(CrashingInfer\): shape inference failed \(IndexError"):
        g.infer_types()


def test_reinference_after_an_edit_recomputes_types():
    g = inferred(mlp(batch=2))
    relu = next(n for n in g if n.op_type == "Relu")
    fc2 = next(n for n in g if n.name == "fc2")
    fc2.set_input(0, relu.inputs[0].producer().inputs[0])  # feed MatMul's output h0 instead of h2
    g.remove(relu)
    g.infer_types()
    g.verify()
    assert types(g)["y"].shape == (2, 3) and "h2" not in types(g)


def test_constant_chain_folds_into_reshape():
    """Shape of a static tensor -> Gather -> Concat with a Constant -> Reshape: all known at build time."""
    missing = {"Shape", "Gather", "Concat", "Constant", "Unsqueeze"} - set(registry.supported_ops())
    assert not missing, f"ops this test needs are not registered: {sorted(missing)}"
    k = h.make_tensor("k", T.INT64, [1], [-1])
    nodes = [
        h.make_node("Shape", ["x"], ["s"], name="shape"),
        h.make_node("Constant", [], ["i0"], name="i0", value=h.make_tensor("i", T.INT64, [], [0])),
        h.make_node("Gather", ["s", "i0"], ["n"], name="gather", axis=0),
        h.make_node("Unsqueeze", ["n", "ax"], ["n1"], name="unsq"),
        h.make_node("Constant", [], ["minus1"], name="c", value=k),
        h.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        h.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
    ]
    m = model(nodes, [("x", T.FLOAT, [2, 3, 4])], [("y", T.FLOAT, None)], {"ax": np.array([0], np.int64)})
    t = types(inferred(m))
    assert t["s"] == TensorType(np.int64, (3,))
    assert t["y"] == TensorType(np.float32, (2, 12))
