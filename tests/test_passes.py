"""FoldBatchNorm and FuseConvActivation on small graphs. Each test checks four things: the
pattern was there before, ``modified`` is right, the graph changed exactly as intended, and the
rewritten graph computes what the original did (explicit tolerances) -- then ``graph.verify()``."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.ir.onnx_import import from_onnx
from course.passes import FoldBatchNorm, FuseConvActivation
from course.runtime.session import InferenceSession
from course.bench import relative_error
from course.testing import random_tensor
from ir_builders import model

# Folding rounds W' and B' once in float32 and changes the order of the float32 operations, so
# elementwise equality is not expected: the bound is on max|folded - unfused| / max|unfused|.
FOLD_RTOL = 1e-5


def assert_folded_close(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    err = relative_error(got, want)
    assert err <= FOLD_RTOL, f"folded result differs from the unfused one: relative error {err:.2e}"


def graph_of(m):
    g = from_onnx(m)
    g.infer_types()
    return g


def run_graph(g, feeds):
    return InferenceSession(g, graph_optimization_level="disable").run(None, feeds)[0]


def run_model(m, feeds):
    return InferenceSession(m, graph_optimization_level="disable").run(None, feeds)[0]


# Explicit tolerances for rewrites that change float arithmetic (folding, re-association):
# (rtol, atol) per dtype. Rewrites that only move data (identities, transposes) are compared exactly.
PASS_TOLS = {np.dtype(np.float16): (1e-2, 1e-3), np.dtype(np.float32): (1e-5, 1e-6),
             np.dtype(np.float64): (1e-12, 1e-14)}


def reference(g_or_model, feeds):
    """All outputs of a Graph or an ONNX model, computed by the reference ops (no session)."""
    from course.passes import run_graph as run_reference

    g = g_or_model if hasattr(g_or_model, "nodes") else from_onnx(g_or_model)
    return run_reference(g, feeds)


def assert_same_outputs(got, want, exact=False):
    """Every output has the same shape and dtype; equal, or within PASS_TOLS for its dtype."""
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
        if exact or a.dtype.kind != "f":
            np.testing.assert_array_equal(a, b)
        else:
            rtol, atol = PASS_TOLS[a.dtype]
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def ops(g):
    return [n.op_type for n in g.nodes]


def bn_params(c, seed=10):
    """Clearly non-trivial BN constants: a forgotten eps, a swapped gamma/beta or a missing mean
    would all move the outputs far outside the tolerance (see test_the_data_catches_wrong_folds)."""
    g = np.random.default_rng(seed)
    return {"gamma": g.uniform(0.5, 2.0, c).astype(np.float32), "beta": g.uniform(-1, 1, c).astype(np.float32),
            "mean": g.uniform(-0.5, 0.5, c).astype(np.float32), "var": g.uniform(0.01, 0.1, c).astype(np.float32)}


def conv_bn(c_in=3, c_out=4, k=3, group=1, bias=True, rank=2, tail=None, eps=1e-2, x_shape=None):
    """x -> Conv -> BatchNormalization -> [tail op] -> y."""
    sp = (6,) * rank
    inits = {"W": random_tensor((c_out, c_in // group) + (k,) * rank, seed=1), **bn_params(c_out)}
    conv_in = ["x", "W"]
    if bias:
        inits["B"] = random_tensor((c_out,), seed=2)
        conv_in.append("B")
    nodes = [h.make_node("Conv", conv_in, ["c"], name="conv", group=group, pads=[1] * (2 * rank)),
             h.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"],
                         ["n" if tail else "y"], name="bn", epsilon=eps)]
    if tail:
        nodes.append(h.make_node(tail, ["n"], ["y"], name="tail"))
    xs = x_shape or [2, c_in, *sp]
    return model(nodes, [("x", T.FLOAT, xs)], [("y", T.FLOAT, None)], inits), random_tensor(xs, seed=3)


# --- FoldBatchNorm -------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(bias=False), dict(group=2, c_in=4), dict(rank=1), dict(rank=3),
                                dict(c_in=4, c_out=4, group=4)], ids=["bias", "no-bias", "grouped", "conv1d",
                                                                      "conv3d", "depthwise"])
def test_fold_batchnorm(kw):
    m, x = conv_bn(tail="Relu", **kw)
    want = run_model(m, {"x": x})
    g = graph_of(m)
    assert ops(g) == ["Conv", "BatchNormalization", "Relu"]  # precondition
    res = FoldBatchNorm()(g)
    assert res.modified is True and res.graph is g
    assert ops(g) == ["Conv", "Relu"]
    conv = g.nodes[0]
    assert conv.name == "conv" and len(conv.inputs) == 3 and conv.attrs["group"] == kw.get("group", 1)
    assert conv.outputs[0].name == "n" and g.nodes[1].inputs[0] is conv.outputs[0]
    assert not {"W", "B", "gamma", "beta", "mean", "var"} & set(g.initializers)  # old constants dropped
    assert_folded_close(run_graph(g, {"x": x}), want)
    g.verify()


def test_folded_constants_match_the_formula_in_float64():
    m, _ = conv_bn()
    g = graph_of(m)
    FoldBatchNorm()(g)
    conv = g.nodes[0]
    w, b = conv.inputs[1].const_value, conv.inputs[2].const_value
    p = {k: v.astype(np.float64) for k, v in bn_params(4).items()}
    a = p["gamma"] / np.sqrt(p["var"] + 1e-2)
    w0, b0 = random_tensor((4, 3, 3, 3), seed=1).astype(np.float64), random_tensor((4,), seed=2).astype(np.float64)
    assert w.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_allclose(w, w0 * a[:, None, None, None], rtol=1e-7, atol=0)  # one float32 rounding
    np.testing.assert_allclose(b, (b0 - p["mean"]) * a + p["beta"], rtol=1e-7, atol=1e-7)
    g.verify()


def test_the_data_catches_wrong_folds():
    """The BN constants above are far enough from identity that common folding mistakes fail."""
    p = {k: v.astype(np.float64) for k, v in bn_params(4).items()}
    right = p["gamma"] / np.sqrt(p["var"] + 1e-2)
    for wrong in (p["gamma"] / np.sqrt(p["var"]),            # eps forgotten
                  p["beta"] / np.sqrt(p["var"] + 1e-2),       # gamma and beta swapped
                  p["gamma"] / (p["var"] + 1e-2)):            # variance used as std
        assert np.max(np.abs(wrong - right) / np.abs(right)) > 100 * FOLD_RTOL


def test_bn_graph_output_keeps_its_name():
    m, x = conv_bn()
    want = run_model(m, {"x": x})
    g = graph_of(m)
    assert FoldBatchNorm()(g).modified
    assert ops(g) == ["Conv"] and [v.name for v in g.outputs] == ["y"] and g.outputs[0].producer() is g.nodes[0]
    assert_folded_close(run_graph(g, {"x": x}), want)
    g.verify()


def test_shared_weights_fold_into_separate_copies():
    """Two Conv+BN pairs read the same W: each gets its own folded copy; W goes once unused."""
    c = 4
    inits = {"W": random_tensor((c, c, 3, 3), seed=1), **bn_params(c, 10)}
    inits.update({f"{k}2": v for k, v in bn_params(c, 11).items()})
    nodes = [h.make_node("Conv", ["x", "W"], ["c1"], name="conv1", pads=[1] * 4),
             h.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["n1"], name="bn1"),
             h.make_node("Conv", ["n1", "W"], ["c2"], name="conv2", pads=[1] * 4),
             h.make_node("BatchNormalization", ["c2", "gamma2", "beta2", "mean2", "var2"], ["y"], name="bn2")]
    m = model(nodes, [("x", T.FLOAT, [1, c, 5, 5])], [("y", T.FLOAT, None)], inits)
    x = random_tensor((1, c, 5, 5), seed=4)
    want = run_model(m, {"x": x})
    g = graph_of(m)
    assert ops(g).count("BatchNormalization") == 2
    assert FoldBatchNorm()(g).modified
    assert ops(g) == ["Conv", "Conv"] and g.nodes[0].inputs[1] is not g.nodes[1].inputs[1]
    assert "W" not in g.initializers and "gamma" not in g.initializers
    assert_folded_close(run_graph(g, {"x": x}), want)
    g.verify()


def _second_reader():
    m, x = conv_bn()
    m.graph.node.append(h.make_node("Relu", ["c"], ["r"], name="other"))
    m.graph.output.append(h.make_tensor_value_info("r", T.FLOAT, None))
    return m, x


def _weights_fed():
    m, x = conv_bn()
    w = [i for i in m.graph.initializer if i.name == "W"][0]
    m.graph.initializer.remove(w)
    m.graph.input.append(h.make_tensor_value_info("W", T.FLOAT, [4, 3, 3, 3]))
    return m, x


def _stats_overridable():
    m, x = conv_bn()
    m.ir_version = 3
    m.graph.input.append(h.make_tensor_value_info("var", T.FLOAT, [4]))  # a feed may replace it
    return m, x


def _training_mode():
    m, x = conv_bn()
    m.graph.node[1].attribute.append(h.make_attribute("training_mode", 1))
    return m, x


@pytest.mark.parametrize("build", [_second_reader, _weights_fed, _stats_overridable, _training_mode],
                         ids=["conv-output-read-twice", "weights-are-a-feed", "stats-overridable",
                              "training-mode"])
def test_fold_batchnorm_leaves_unsafe_pairs_alone(build):
    m, _ = build()
    g = graph_of(m) if build is not _training_mode else from_onnx(m)
    before = ops(g)
    assert "BatchNormalization" in before
    assert FoldBatchNorm()(g).modified is False
    assert ops(g) == before
    g.verify(check_types=build is not _training_mode)


def test_fold_batchnorm_is_idempotent_and_respects_protected_ops():
    m, _ = conv_bn(tail="Relu")
    g = graph_of(m)
    assert FoldBatchNorm(protected={"BatchNormalization"})(g).modified is False
    assert FoldBatchNorm(protected={"Conv"})(g).modified is False
    assert ops(g) == ["Conv", "BatchNormalization", "Relu"]
    assert FoldBatchNorm()(g).modified is True
    assert FoldBatchNorm()(g).modified is False
    g.verify()


# --- FuseConvActivation --------------------------------------------------------------------------
def conv_act(act_nodes, inits=None, opset=17, c=4, group=1, k=3, x_shape=(2, 4, 7, 9), **conv_attrs):
    """x -> Conv(W, B) -> activation node(s) -> y, with conv attributes as given."""
    w_shape = (c, x_shape[1] // group, k, k)
    base = {"W": random_tensor(w_shape, seed=1, low=-2, high=2), "B": random_tensor((c,), seed=2)}
    attrs = dict(group=group, **conv_attrs)
    if "auto_pad" not in attrs:
        attrs.setdefault("pads", [1, 1, 1, 1])
    nodes = [h.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", **attrs), *act_nodes]
    m = model(nodes, [("x", T.FLOAT, list(x_shape))], [("y", T.FLOAT, None)], {**base, **(inits or {})},
              opset=opset)
    return m, random_tensor(x_shape, seed=3, low=-3, high=3)


ACTS = {  # id: (activation nodes, extra initializers, opset, expected activation, expected params)
    "relu": ([h.make_node("Relu", ["c"], ["y"], name="act")], {}, 17, "Relu", []),
    "relu6": ([h.make_node("Clip", ["c", "lo", "hi"], ["y"], name="act")],
              {"lo": np.float32(0), "hi": np.float32(6)}, 17, "Clip", [0.0, 6.0]),
    "clip-max-only": ([h.make_node("Clip", ["c", "", "hi"], ["y"], name="act")],
                      {"hi": np.float32(0.5)}, 17, "Clip", [-np.inf, 0.5]),
    "clip-min>max": ([h.make_node("Clip", ["c", "lo", "hi"], ["y"], name="act")],
                     {"lo": np.float32(1), "hi": np.float32(-1)}, 17, "Clip", [1.0, -1.0]),
    "clip-opset6": ([h.make_node("Clip", ["c"], ["y"], name="act", min=-0.25, max=0.75)], {}, 6, "Clip",
                    [-0.25, 0.75]),
    "leaky": ([h.make_node("LeakyRelu", ["c"], ["y"], name="act", alpha=0.2)], {}, 17, "LeakyRelu", [0.2]),
}


@pytest.mark.parametrize("case", list(ACTS))
def test_fuse_conv_activation(case):
    nodes, inits, opset, act, params = ACTS[case]
    m, x = conv_act(nodes, inits, opset=opset)
    want = run_model(m, {"x": x})
    g = graph_of(m)
    assert ops(g) == ["Conv", nodes[0].op_type]
    res = FuseConvActivation()(g)
    assert res.modified is True
    assert ops(g) == ["FusedConv"]
    fused = g.nodes[0]
    assert fused.domain == "course" and g.opset_imports["course"] == 1 and fused.name == "conv"
    assert fused.attrs["activation"] == act
    np.testing.assert_allclose(fused.attrs["activation_params"], params, rtol=1e-7)
    assert fused.attrs["pads"] == [1, 1, 1, 1] and [v.name for v in fused.inputs] == ["x", "W", "B"]
    assert [v.name for v in g.outputs] == ["y"] and g.outputs[0] is fused.outputs[0]
    got = run_graph(g, {"x": x})
    np.testing.assert_array_equal(got, want)  # same kernels, same rounding: bit for bit
    g.verify()


DEPTHWISE = {  # id: conv attributes of a 3x3 depthwise Conv (the compiled fast path)
    "s1": dict(pads=[1, 1, 1, 1]),
    "s2": dict(strides=[2, 2], pads=[1, 1, 1, 1]),
    "s3-asym-pads": dict(strides=[3, 2], pads=[0, 2, 1, 0]),
    "dilated": dict(dilations=[2, 3], pads=[2, 3, 2, 3]),
    "same-upper-s2": dict(auto_pad="SAME_UPPER", strides=[2, 2]),
    "valid": dict(auto_pad="VALID"),
}


@pytest.mark.parametrize("act", ["relu", "relu6", "leaky", "clip-min>max"])
@pytest.mark.parametrize("geom", list(DEPTHWISE))
def test_fused_depthwise_is_bit_exact(geom, act):
    nodes, inits, opset, _, _ = ACTS[act]
    m, x = conv_act(nodes, inits, opset=opset, c=6, group=6, x_shape=(2, 6, 11, 13), **DEPTHWISE[geom])
    want = run_model(m, {"x": x})
    g = graph_of(m)
    assert FuseConvActivation()(g).modified and ops(g) == ["FusedConv"]
    np.testing.assert_array_equal(run_graph(g, {"x": x}), want)
    g.verify()


def test_fused_depthwise_without_bias_and_in_float64():
    for dtype, elem in ((np.float32, T.FLOAT), (np.float64, T.DOUBLE)):
        inits = {"W": random_tensor((5, 1, 3, 3), dtype, seed=1), "lo": np.array(0, dtype),
                 "hi": np.array(1, dtype)}
        nodes = [h.make_node("Conv", ["x", "W"], ["c"], name="conv", group=5, pads=[1, 0, 1, 2]),
                 h.make_node("Clip", ["c", "lo", "hi"], ["y"], name="act")]
        m = model(nodes, [("x", elem, [1, 5, 8, 8])], [("y", elem, None)], inits)
        x = random_tensor((1, 5, 8, 8), dtype, seed=5, low=-2, high=2)
        want = run_model(m, {"x": x})
        g = graph_of(m)
        assert FuseConvActivation()(g).modified and ops(g) == ["FusedConv"] and len(g.nodes[0].inputs) == 2
        got = run_graph(g, {"x": x})
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
        g.verify()


def _bound_is_fed():
    m, x = conv_act([h.make_node("Clip", ["c", "lo", "hi"], ["y"], name="act")], {"hi": np.float32(6)})
    m.graph.input.append(h.make_tensor_value_info("lo", T.FLOAT, []))
    return m


def _conv_read_twice():
    m, _ = conv_act([h.make_node("Relu", ["c"], ["y"], name="act"),
                     h.make_node("Neg", ["c"], ["z"], name="neg")])
    m.graph.output.append(h.make_tensor_value_info("z", T.FLOAT, None))
    return m


def _conv_is_graph_output():
    m = _conv_read_twice()
    m.graph.node.pop()
    m.graph.output[1].name = "c"
    return m


def _sigmoid():
    return conv_act([h.make_node("Sigmoid", ["c"], ["y"], name="act")])[0]


@pytest.mark.parametrize("build", [_bound_is_fed, _conv_read_twice, _conv_is_graph_output, _sigmoid],
                         ids=["clip-bound-is-a-feed", "conv-read-twice", "conv-is-graph-output", "sigmoid"])
def test_fuse_leaves_unsafe_or_unknown_patterns_alone(build):
    g = graph_of(build())
    before = ops(g)
    assert before[0] == "Conv"
    assert FuseConvActivation()(g).modified is False
    assert ops(g) == before and "course" not in g.opset_imports
    g.verify()


@pytest.mark.parametrize("protected", [{"Conv"}, {"Relu"}])
def test_fuse_respects_protected_ops(protected):
    g = graph_of(conv_act(ACTS["relu"][0])[0])
    assert FuseConvActivation(protected)(g).modified is False
    assert ops(g) == ["Conv", "Relu"]
    assert FuseConvActivation()(g).modified is True and FuseConvActivation()(g).modified is False
    g.verify()


def test_fused_float16_takes_the_numpy_route_bit_exactly():
    inits = {"W": random_tensor((4, 2, 3, 3), np.float16, seed=1), "B": random_tensor((4,), np.float16, seed=2)}
    for act in ("Relu", "LeakyRelu"):
        nodes = [h.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                 h.make_node(act, ["c"], ["y"], name="act")]
        m = model(nodes, [("x", T.FLOAT16, [1, 2, 5, 5])], [("y", T.FLOAT16, None)], inits)
        x = random_tensor((1, 2, 5, 5), np.float16, seed=3)
        want = run_model(m, {"x": x})
        g = graph_of(m)
        assert FuseConvActivation()(g).modified and ops(g) == ["FusedConv"]
        got = run_graph(g, {"x": x})
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, want)
        g.verify()


def test_fused_graph_exports_to_onnx_with_the_course_domain():
    import onnx
    from course.ir.onnx_export import to_onnx

    m, x = conv_act(ACTS["relu6"][0], ACTS["relu6"][1])
    want = run_model(m, {"x": x})
    g = graph_of(m)
    assert FuseConvActivation()(g).modified
    proto = to_onnx(g)
    onnx.checker.check_model(proto, full_check=True)
    assert {(o.domain, o.version) for o in proto.opset_import} == {("", 17), ("course", 1)}
    assert [(n.domain, n.op_type) for n in proto.graph.node] == [("course", "FusedConv")]
    np.testing.assert_array_equal(run_model(proto, {"x": x}), want)
    g.verify()


def test_a_bad_fused_node_is_an_engine_error_naming_it():
    from course.errors import OpAttributeError

    m, x = conv_act(ACTS["relu"][0])
    g = graph_of(m)
    FuseConvActivation()(g)
    g.nodes[0].attrs["activation"] = "Gelu"
    with pytest.raises(OpAttributeError, match=r"node 'conv' \(FusedConv\): activation 'Gelu'"):
        InferenceSession(g, graph_optimization_level="disable")
