"""FuseGemmActivation on small graphs: Gemm -> Relu / Sigmoid / Tanh / LeakyRelu / Clip becomes
one course.FusedGemm. Each test checks the pattern was there, ``modified``, the exact rewritten
node, and outputs bit for bit equal to the unfused graph's (FusedGemm runs the same reference
kernels one after the other), then verify(); the saved model still matches onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper as h

from course.errors import OpAttributeError
from course.ir.onnx_export import to_onnx
from course.ops.registry import lookup
from course.passes import FuseGemmActivation, optimize
from course.runtime.session import InferenceSession
from course.testing import random_tensor
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

M, K, N = 5, 7, 6
ORT_RTOL, ORT_ATOL = 1e-5, 1e-6  # float32, a GEMM of K=7 in another BLAS


def gemm_act(act_nodes, inits=None, opset=17, dtype=np.float32, c_shape=(N,), **gemm_attrs):
    """x[M, K] -> Gemm(W, C) -> g -> activation nodes -> y."""
    elem = {np.float32: T.FLOAT, np.float64: T.DOUBLE, np.float16: T.FLOAT16}[dtype]
    a_shape = (K, M) if gemm_attrs.get("transA") else (M, K)
    w_shape = (N, K) if gemm_attrs.get("transB") else (K, N)
    inits = {"W": random_tensor(w_shape, seed=1, dtype=dtype),
             **({"C": random_tensor(c_shape, seed=2, dtype=dtype)} if c_shape else {}), **(inits or {})}
    nodes = [h.make_node("Gemm", ["x", "W"] + (["C"] if c_shape else []), ["g"], name="fc", **gemm_attrs),
             *act_nodes]
    m = model(nodes, [("x", elem, list(a_shape))], [("y", elem, None)], inits, opset=opset)
    return m, {"x": random_tensor(a_shape, seed=3, low=-2, high=2, dtype=dtype)}


def act(op, inputs=("g",), **attrs):
    return h.make_node(op, list(inputs), ["y"], name="act", **attrs)


CASES = {  # id: (activation nodes, extra initializers, opset, expected activation, expected params)
    "relu": ([act("Relu")], None, 17, "Relu", []),
    "sigmoid": ([act("Sigmoid")], None, 17, "Sigmoid", []),
    "tanh": ([act("Tanh")], None, 17, "Tanh", []),
    "leaky": ([act("LeakyRelu", alpha=0.2)], None, 17, "LeakyRelu", [0.2]),
    "leaky-default": ([act("LeakyRelu")], None, 17, "LeakyRelu", [0.01]),
    "relu6": ([act("Clip", ("g", "lo", "hi"))], {"lo": np.float32(0), "hi": np.float32(6)}, 17, "Clip", [0, 6]),
    "clip-max-only": ([act("Clip", ("g", "", "hi"))], {"hi": np.float32(0.5)}, 17, "Clip", [-np.inf, 0.5]),
    "clip-opset10": ([act("Clip", min=-0.5, max=0.5)], None, 10, "Clip", [-0.5, 0.5]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fuse_gemm_activation(case):
    nodes, inits, opset, activation, params = CASES[case]
    m, feeds = gemm_act(nodes, inits, opset=opset, transB=1, alpha=0.5, beta=2.0)
    want = reference(m, feeds)
    g = graph_of(m)
    assert ops(g) == ["Gemm", nodes[0].op_type]  # precondition
    res = FuseGemmActivation()(g)
    assert res.modified is True and res.graph is g
    assert ops(g) == ["FusedGemm"]
    fused = g.nodes[0]
    assert fused.domain == "course" and g.opset_imports["course"] == 1 and fused.name == "fc"
    assert [v.name for v in fused.inputs] == ["x", "W", "C"]
    assert fused.attrs["activation"] == activation and fused.attrs["activation_params"] == pytest.approx(params)
    assert (fused.attrs["transB"], fused.attrs["alpha"], fused.attrs["beta"]) == (1, 0.5, 2.0)
    assert [v.name for v in g.outputs] == ["y"] and g.outputs[0] is fused.outputs[0]
    assert_same_outputs(reference(g, feeds), want, exact=True)
    assert_same_outputs(InferenceSession(g, graph_optimization_level="disable").run(None, feeds), want, exact=True)
    g.verify()


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("kw", [dict(transA=1), dict(c_shape=None), dict(c_shape=(M, 1))],
                         ids=["transA", "no-C", "C-column"])
def test_fused_gemm_other_dtypes_and_shapes_are_bit_exact(kw, dtype):
    m, feeds = gemm_act([act("Sigmoid")], dtype=dtype, **kw)
    want = reference(m, feeds)
    g = graph_of(m)
    assert FuseGemmActivation()(g).modified and ops(g) == ["FusedGemm"]
    assert len(g.nodes[0].inputs) == (2 if kw.get("c_shape", ()) is None else 3)
    got = reference(g, feeds)
    assert got[0].dtype == dtype and got[0].shape == (M, N)
    assert_same_outputs(got, want, exact=True)
    g.verify()


def _gemm_read_twice():  # the Gemm's output is also read by a Neg: it must stay
    return gemm_act([act("Relu"), h.make_node("Neg", ["g"], ["z"], name="neg")])[0]


def _gemm_is_graph_output():
    m = gemm_act([act("Relu")])[0]
    m.graph.output.append(h.make_tensor_value_info("g", T.FLOAT, None))
    return m


def _bound_is_fed():  # a Clip bound fed at run time cannot become an attribute
    m = gemm_act([act("Clip", ("g", "lo"))])[0]
    m.graph.input.append(h.make_tensor_value_info("lo", T.FLOAT, []))
    return m


def _softmax():  # not an activation FusedGemm has
    return gemm_act([act("Softmax")])[0]


@pytest.mark.parametrize("build", [_gemm_read_twice, _gemm_is_graph_output, _bound_is_fed, _softmax])
def test_fuse_gemm_activation_leaves_unsafe_patterns_alone(build):
    g = graph_of(build())
    before = ops(g)
    assert FuseGemmActivation()(g).modified is False
    assert ops(g) == before and "course" not in g.opset_imports
    g.verify()


@pytest.mark.parametrize("protected", [{"Gemm"}, {"Relu"}])
def test_fuse_gemm_activation_respects_protected_ops(protected):
    g = graph_of(gemm_act([act("Relu")])[0])
    assert FuseGemmActivation(protected)(g).modified is False and ops(g) == ["Gemm", "Relu"]


def test_fused_gemm_exports_with_the_course_domain_and_matches_onnxruntime():
    m, feeds = gemm_act([act("LeakyRelu", alpha=0.1)], transB=1)
    ort_y = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    g = graph_of(m)
    assert FuseGemmActivation()(g).modified
    proto = to_onnx(g)
    onnx.checker.check_model(proto, full_check=True)
    assert {(o.domain, o.version) for o in proto.opset_import} == {("", 17), ("course", 1)}
    assert [(n.domain, n.op_type) for n in proto.graph.node] == [("course", "FusedGemm")]
    ours = InferenceSession(proto, graph_optimization_level="disable").run(None, feeds)[0]
    np.testing.assert_array_equal(ours, reference(m, feeds)[0])
    np.testing.assert_allclose(ours, ort_y, rtol=ORT_RTOL, atol=ORT_ATOL)


def test_the_extended_level_fuses_matmul_add_relu_into_one_node():
    # MatMul+Add -> Gemm (MatMulAddToGemm), then Gemm+Relu -> FusedGemm in the same round
    inits = {"W": random_tensor((K, N), seed=1), "B": random_tensor((N,), seed=2)}
    nodes = [h.make_node("MatMul", ["x", "W"], ["mm"], name="mm"), h.make_node("Add", ["mm", "B"], ["g"], name="add"),
             act("Tanh")]
    m = model(nodes, [("x", T.FLOAT, ["batch", K])], [("y", T.FLOAT, None)], inits)
    feeds = {"x": random_tensor((3, K), seed=4)}
    s = InferenceSession(m, graph_optimization_level="extended")
    assert ops(s.graph) == ["FusedGemm"] and s.graph.nodes[0].attrs["activation"] == "Tanh"
    np.testing.assert_allclose(s.run(None, feeds)[0], reference(m, feeds)[0], rtol=1e-6, atol=1e-7)
    s.graph.verify()


def test_fused_gemm_kernel_checks_its_activation():
    fused = lookup("FusedGemm", 1, "course")
    a, b = random_tensor((2, 3), seed=1), random_tensor((3, 4), seed=2)
    with pytest.raises(OpAttributeError, match="activation 'Gelu'"):
        fused.compute(a, b, activation="Gelu", activation_params=[])
    with pytest.raises(OpAttributeError, match="activation 'Clip' with 1 parameter"):
        fused.compute(a, b, activation="Clip", activation_params=[0.0])
    g = graph_of(gemm_act([act("Relu")])[0])
    FuseGemmActivation()(g)
    g.nodes[0].attrs["activation"] = "Gelu"
    with pytest.raises(OpAttributeError, match=r"node 'fc' \(FusedGemm\): activation 'Gelu'"):
        InferenceSession(g, graph_optimization_level="disable")
