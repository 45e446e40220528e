"""Every course model gives the same logits with and without the default passes (relative error
<= 1e-5) and matches onnxruntime (<= 1e-4); the passes remove the nodes they are meant to."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from course.bench import relative_error
from course.models import MODEL_NAMES, build_model
from course.runtime.session import InferenceSession

SMALL = dict(image_size=32, num_classes=10, width=0.25)
PASSES_TOL, ORT_TOL = 1e-5, 1e-4


def ort_logits(m, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def counts(ops):
    return {k: ops.count(k) for k in set(ops)}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_logits_with_and_without_passes(name):
    m = build_model(name, batch="N", **SMALL)
    x = np.random.default_rng(7).standard_normal((2, 3, 32, 32)).astype(np.float32)
    plain = InferenceSession(m, graph_optimization_level="disable")
    fast = InferenceSession(m)
    before = counts([n.op_type for n in plain.graph.nodes])
    after = counts([n.op_type for n in fast.graph.nodes])
    # Every BN that directly follows a Conv folds; every Relu/Clip on a Conv output fuses, and so
    # does every Add of a Conv output that nothing else reads.
    conv_bn = sum(n.op_type == "BatchNormalization" and n.inputs[0].producer() is not None
                  and n.inputs[0].producer().op_type == "Conv" for n in plain.graph.nodes)
    assert after.get("BatchNormalization", 0) == before.get("BatchNormalization", 0) - conv_bn
    # Sibling convolutions reading one input become one Conv + Split: Inception's three 1x1s per
    # module (7 modules) -> 2 convolutions fewer and one Split more each.
    merged = after.get("Split", 0) - before.get("Split", 0)
    assert merged == (7 if name == "inception" else 0)
    assert after.get("Conv", 0) + after.get("FusedConv", 0) == before["Conv"] - 2 * merged
    if name in ("resnet", "mobilenetv2"):  # every residual Add reads a Conv that nothing else reads
        assert before["Add"] > 0 and "Add" not in after
    assert len(fast.graph.nodes) < len(plain.graph.nodes)
    want = plain.run(None, {"input": x})[0]
    got = fast.run(None, {"input": x})[0]
    assert got.shape == (2, 10) and got.dtype == np.float32
    assert relative_error(got, want) <= PASSES_TOL
    assert relative_error(got, ort_logits(m, x)) <= ORT_TOL
    fast.graph.verify()


def test_mobilenetv2_full_size_fuses_everything_it_should():
    """224x224: all 52 BNs fold, all 35 ReLU6 fuse (17 of them into the compiled depthwise kernel),
    and the 10 residual Adds fuse into the linear bottleneck convs before them."""
    m = build_model("mobilenetv2")
    s = InferenceSession(m)
    kinds = counts([n.op_type for n in s.graph.nodes])
    assert "BatchNormalization" not in kinds and "Clip" not in kinds and "Add" not in kinds
    assert kinds["FusedConv"] == 45 and kinds["Conv"] == 7
    residual = [n for n in s.graph.nodes if n.op_type == "FusedConv" and len(n.inputs) > 3]
    assert len(residual) == 10 and all(n.attrs["activation"] == "Identity" for n in residual)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    assert relative_error(s.run(None, {"input": x})[0], ort_logits(m, x)) <= ORT_TOL
