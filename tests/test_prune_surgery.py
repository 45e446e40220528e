"""course.prune.surgery: channels physically removed, checked against the masked model in onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from course import prune as P
from course.models import digits_model_path, load_digits_split


def _run(model, x):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _inits(model):
    return {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}


@pytest.fixture(scope="module")
def digits():
    return onnx.load(str(digits_model_path()))


def test_digits_half_channels_match_the_masked_model(digits):
    w = _inits(digits)
    keep = {"conv1": P.filters_to_keep(w["conv1.W"], 0.5), "conv2": P.filters_to_keep(w["conv2.W"], 0.5)}
    pruned = P.prune_channels(digits, keep)
    p = _inits(pruned)
    assert p["conv1.W"].shape == (8, 1, 3, 3) and p["bn1.var"].shape == (8,)
    assert p["conv2.W"].shape == (16, 8, 3, 3) and p["bn2.scale"].shape == (16,)
    assert p["fc1.W"].shape == (64, 16 * 16)
    x = load_digits_split().x_test[:100]
    np.testing.assert_allclose(_run(pruned, x), _run(P.zero_removed_inputs(digits, keep), x), atol=1e-4)
    assert P.total_flops(digits) / P.total_flops(pruned) >= 2.0
    assert _inits(digits)["conv1.W"].shape == (16, 1, 3, 3)  # the input model is unchanged


def _model(nodes, inits, cin, out_shape, hw=6):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", cin, hw, hw])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(np.asarray(a, np.float32), k) for k, a in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _conv(x, w, y, name, b=None):
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [y], name, kernel_shape=[3, 3], pads=[1, 1, 1, 1])


def test_residual_add_needs_equal_keep_sets():
    g = np.random.default_rng(0)
    inits = {"w1": g.normal(size=(8, 2, 3, 3)), "w2": g.normal(size=(8, 2, 3, 3)), "b2": g.normal(size=8),
             "w3": g.normal(size=(3, 8, 3, 3))}
    nodes = [_conv("x", "w1", "a", "c1"), helper.make_node("Relu", ["a"], ["ra"], "r1"),
             _conv("x", "w2", "b", "c2", "b2"), helper.make_node("Add", ["ra", "b"], ["s"], "add"),
             helper.make_node("Relu", ["s"], ["rs"], "r2"), _conv("rs", "w3", "y", "c3")]
    m = _model(nodes, inits, 2, ["N", 3, 6, 6])
    keep = np.array([0, 3, 4, 7])
    pruned = P.prune_channels(m, {"c1": keep, "c2": keep})
    x = g.uniform(size=(2, 2, 6, 6)).astype(np.float32)
    masked = _inits(m)
    masked["w3"][:, np.setdiff1d(np.arange(8), keep)] = 0
    ref = onnx.ModelProto(); ref.CopyFrom(m)
    for t in ref.graph.initializer:
        t.CopyFrom(numpy_helper.from_array(masked[t.name], t.name))
    np.testing.assert_allclose(_run(pruned, x), _run(ref, x), atol=1e-4)
    assert _inits(pruned)["w3"].shape == (3, 4, 3, 3)
    with pytest.raises(ValueError, match="same channels"):
        P.prune_channels(m, {"c1": keep, "c2": np.array([0, 1, 2, 3])})
    with pytest.raises(ValueError):
        P.prune_channels(m, {"c1": keep})  # one side of a residual alone


def test_concat_shifts_the_second_input():
    g = np.random.default_rng(1)
    inits = {"w1": g.normal(size=(4, 1, 3, 3)), "w2": g.normal(size=(6, 1, 3, 3)), "w3": g.normal(size=(2, 10, 3, 3))}
    nodes = [_conv("x", "w1", "a", "c1"), _conv("x", "w2", "b", "c2"),
             helper.make_node("Concat", ["a", "b"], ["cat"], "cat", axis=1),
             helper.make_node("Relu", ["cat"], ["r"], "relu"), _conv("r", "w3", "y", "c3")]
    m = _model(nodes, inits, 1, ["N", 2, 6, 6])
    pruned = P.prune_channels(m, {"c2": np.array([1, 4])})
    w3 = _inits(pruned)["w3"]
    assert w3.shape == (2, 6, 3, 3)
    np.testing.assert_array_equal(w3, inits["w3"][:, [0, 1, 2, 3, 5, 8]].astype(np.float32))
    masked = onnx.ModelProto(); masked.CopyFrom(m)
    mw = inits["w3"].copy(); mw[:, [4, 6, 7, 9]] = 0
    for t in masked.graph.initializer:
        if t.name == "w3":
            t.CopyFrom(numpy_helper.from_array(mw.astype(np.float32), "w3"))
    x = g.uniform(size=(2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(_run(pruned, x), _run(masked, x), atol=1e-4)


def test_bad_keep_sets_and_graph_outputs_are_refused(digits):
    with pytest.raises(ValueError):
        P.prune_channels(digits, {"conv1": [0, 0, 1]})
    with pytest.raises(ValueError):
        P.prune_channels(digits, {"conv1": [16]})
    with pytest.raises(ValueError):
        P.prune_channels(digits, {"fc1": [0]})
