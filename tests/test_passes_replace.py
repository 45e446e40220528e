"""Op replacement: BatchNormalization (not after a Conv) -> Mul + Add, MatMul + Add -> Gemm where
Gemm's 2-D rules hold, ReduceMean over the spatial axes (keepdims) -> GlobalAveragePool."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper as h

from course.ir.graph import Graph, Node, Value
from course.ir.types import TensorType
from course.passes import BatchNormToMulAdd, MatMulAddToGemm, ReduceMeanToGlobalAveragePool, run_graph
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, bn_params, graph_of, ops, reference


# --- BatchNormalization -> Mul + Add ---------------------------------------------------------------
def bn_after(first: str, rank=4, eps=1e-2):
    """x -> first (Relu or Conv) -> BatchNormalization -> y."""
    c = 4
    inits = dict(bn_params(c))
    if first == "Conv":
        inits["W"] = random_tensor((c, c, 1, 1), seed=1)
    nodes = [h.make_node(first, ["x", "W"] if first == "Conv" else ["x"], ["a"], name="first"),
             h.make_node("BatchNormalization", ["a", "gamma", "beta", "mean", "var"], ["y"], name="bn", epsilon=eps)]
    shape = [2, c] + [5] * (rank - 2)
    return model(nodes, [("x", T.FLOAT, shape)], [("y", T.FLOAT, None)], inits), random_tensor(shape, seed=2)


@pytest.mark.parametrize("rank", [2, 3, 4, 5])
def test_batchnorm_becomes_mul_add(rank):
    m, x = bn_after("Relu", rank)
    want = reference(m, {"x": x})
    g = graph_of(m)
    assert ops(g) == ["Relu", "BatchNormalization"]
    res = BatchNormToMulAdd()(g)
    assert res.modified is True
    assert ops(g) == ["Relu", "Mul", "Add"]  # one node more: BN's one pass becomes two
    scale = g.nodes[1].inputs[1].const_value
    assert scale.shape == (4,) + (1,) * (rank - 2) and scale.dtype == np.float32
    p = {k: v.astype(np.float64) for k, v in bn_params(4).items()}
    np.testing.assert_allclose(scale.reshape(-1), p["gamma"] / np.sqrt(p["var"] + 1e-2), rtol=1e-7)
    assert g.outputs[0].name == "y" and not {"gamma", "beta", "mean", "var"} & set(g.initializers)
    assert_same_outputs(reference(g, {"x": x}), want)
    assert BatchNormToMulAdd()(g).modified is False
    g.verify()


def test_batchnorm_after_conv_is_left_to_foldbatchnorm():
    m, _ = bn_after("Conv")
    g = graph_of(m)
    assert BatchNormToMulAdd()(g).modified is False and ops(g) == ["Conv", "BatchNormalization"]
    assert BatchNormToMulAdd(protected={"Mul"})(graph_of(bn_after("Relu")[0])).modified is False
    g.verify()


# --- MatMul + Add -> Gemm -----------------------------------------------------------------------
def matmul_add(a_shape, b_shape, c_shape, c_first=False, extra_reader=False):
    inits = {"B": random_tensor(b_shape, seed=1), "C": random_tensor(c_shape, seed=2)}
    add_in = ["C", "p"] if c_first else ["p", "C"]
    nodes = [h.make_node("MatMul", ["a", "B"], ["p"], name="mm"), h.make_node("Add", add_in, ["y"], name="add")]
    outs = [("y", T.FLOAT, None)]
    if extra_reader:
        nodes.append(h.make_node("Relu", ["p"], ["z"], name="relu"))
        outs.append(("z", T.FLOAT, None))
    return model(nodes, [("a", T.FLOAT, a_shape)], outs, inits)


@pytest.mark.parametrize("c_shape, c_first", [((5,), False), ((1, 5), True), ((3, 5), False), ((3, 1), False),
                                              ((), True)])
def test_matmul_add_becomes_gemm(c_shape, c_first):
    m = matmul_add([3, 4], (4, 5), c_shape, c_first)
    feeds = {"a": random_tensor((3, 4), seed=3)}
    want = reference(m, feeds)
    g = graph_of(m)
    assert ops(g) == ["MatMul", "Add"]
    res = MatMulAddToGemm()(g)
    assert res.modified is True
    assert ops(g) == ["Gemm"] and g.outputs[0].name == "y"  # one node fewer, same interface
    assert_same_outputs(reference(g, feeds), want)
    g.verify()


@pytest.mark.parametrize("a_shape, b_shape, c_shape, extra", [
    ([2, 3, 4], (4, 5), (5,), False),   # batched MatMul: Gemm is 2-D only
    ([3, 4], (4, 5), (2, 3, 5), False),  # C broadcasts the result to rank 3
    ([3, 4], (4, 5), (5,), True),        # the product is read elsewhere too
], ids=["rank-3", "c-rank-3", "product-reused"])
def test_matmul_add_that_is_not_a_gemm_stays(a_shape, b_shape, c_shape, extra):
    m = matmul_add(a_shape, b_shape, c_shape, extra_reader=extra)
    feeds = {"a": random_tensor(a_shape, seed=4)}
    want = reference(m, feeds)
    g = graph_of(m)
    before = ops(g)
    assert MatMulAddToGemm()(g).modified is False and ops(g) == before
    assert_same_outputs(reference(g, feeds), want, exact=True)
    g.verify()


# --- ReduceMean -> GlobalAveragePool --------------------------------------------------------------
# The engine has no ReduceMean kernel (so no importer accepts it): the graph is built by hand and
# the original model runs on onnxruntime.
def reduce_mean(axes, keepdims=1, shape=(2, 3, 5, 7), opset=17):
    attrs = {"keepdims": keepdims}
    ins = ["x"]
    inits = {}
    if opset >= 18:
        ins.append("axes")
        inits["axes"] = np.array(axes, np.int64)
    else:
        attrs["axes"] = axes
    m = model([h.make_node("Relu", ["x"], ["r"], name="relu"),
               h.make_node("ReduceMean", ["r", *ins[1:]], ["y"], name="mean", **attrs)],
              [("x", T.FLOAT, list(shape))], [("y", T.FLOAT, None)], inits, opset=opset)
    x = Value("x", TensorType(np.dtype(np.float32), shape))
    consts = [Value(k, TensorType(v.dtype, v.shape), const_value=v) for k, v in inits.items()]
    r, y = Value("r"), Value("y")
    g = Graph([x], [y], consts, [Node("Relu", [x], [r], name="relu"),
                                 Node("ReduceMean", [r, *consts], [y], attrs=attrs, name="mean")],
              opset_imports={"": opset})
    return m, g


def ort_outputs(m, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("axes, shape, opset", [([2, 3], (2, 3, 5, 7), 17), ([-1, -2], (2, 3, 5, 7), 17),
                                                ([2, 3], (2, 3, 5, 7), 18), ([2, 3, 4], (1, 4, 3, 5, 2), 13),
                                                ([2], (2, 3, 9), 17)])
def test_spatial_reduce_mean_becomes_global_average_pool(axes, shape, opset):
    m, g = reduce_mean(axes, shape=shape, opset=opset)
    feeds = {"x": random_tensor(shape, seed=5)}
    want = ort_outputs(m, feeds)
    assert [n.op_type for n in g.nodes] == ["Relu", "ReduceMean"]
    res = ReduceMeanToGlobalAveragePool()(g)
    assert res.modified is True
    assert ops(g) == ["Relu", "GlobalAveragePool"] and g.outputs[0].name == "y" and "axes" not in g.initializers
    assert_same_outputs(run_graph(g, feeds), want)
    g.infer_types()  # now possible: every op of the graph is one the engine has
    g.verify()


@pytest.mark.parametrize("axes, keepdims", [([2, 3], 0), ([1, 2, 3], 1), ([3], 1)],
                         ids=["keepdims-0", "channels-too", "one-spatial-axis"])
def test_other_reduce_means_stay(axes, keepdims):
    _, g = reduce_mean(axes, keepdims)
    assert ReduceMeanToGlobalAveragePool()(g).modified is False
    assert ops(g) == ["Relu", "ReduceMean"]
    g.verify(check_types=False)  # the engine has no ReduceMean to infer its type
