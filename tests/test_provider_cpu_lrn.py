"""The CPU provider's LRN: the reference's values, written into the arena with its channel-window
sums in a planned workspace (a run allocates nothing for it), and Inception against onnxruntime."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper as h

from course import InferenceSession
from course.models import build_model
from course.ops import lookup
from course.providers.cpu import scratch
from course.providers.cpu.lrn import LRNKernel, lrn_scratch
from course.testing import assert_close, random_tensor
from ir_builders import model

CASES = [  # (shape, attrs)
    ((1, 16, 7, 7), dict(size=5, alpha=1e-4, beta=0.75, bias=1.0)),
    ((2, 3, 4, 5), dict(size=5, alpha=2e-2, beta=0.5, bias=2.0)),  # window wider than the channels
    ((1, 8, 3), dict(size=2, alpha=1e-1, beta=1.0, bias=1.0)),  # even size: one more channel above
    ((1, 6, 2, 3, 2), dict(size=3, alpha=3e-1, beta=0.75, bias=0.5)),
    ((1, 4, 5, 5), dict(size=1, alpha=1.0, beta=0.75, bias=1.0)),
    ((1, 9, 4, 4), dict(size=4, alpha=5e-2, beta=1.5, bias=1.0)),
]


@pytest.mark.parametrize("shape, attrs", CASES)
def test_lrn_matches_the_definition(shape, attrs):
    x = random_tensor(shape, seed=len(shape)) * 3
    want = lookup("LRN", 13).compute(x.astype(np.float64), **attrs).astype(np.float32)  # the definition, in float64
    kernel = LRNKernel(attrs)
    assert_close(kernel(x), want, rtol=2e-6, atol=1e-7)
    out = np.empty_like(x)
    ws = np.full(scratch.scratch_bytes(lrn_scratch(shape)) + 64, 0x7F, np.uint8)  # garbage, as an arena holds
    assert kernel(x, out=out, workspace=ws) is out
    assert_close(out, want, rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(out, kernel(x))  # same bits with and without the workspace


def lrn_model(size=5):
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("LRN", ["c"], ["n"], name="lrn", size=size, alpha=1e-2, beta=0.75, bias=1.0),
             h.make_node("Relu", ["n"], ["y"], name="relu")]
    return model(nodes, [("x", T.FLOAT, [1, 8, 16, 16])], [("y", T.FLOAT, None)], {"w": random_tensor((16, 8, 3, 3), seed=3)})


def test_an_arena_run_allocates_nothing_for_lrn(monkeypatch):
    calls = []
    real = scratch.allocate
    monkeypatch.setattr(scratch, "allocate", lambda dtype, shape: calls.append(shape) or real(dtype, shape))
    s = InferenceSession(lrn_model())
    step = next(i for i, st in enumerate(s.plan.steps) if st.spec.op_type == "LRN")
    assert s.assignment()["lrn"] == "CPUExecutionProvider"
    assert s.plan.arena.workspaces[step][1] >= 16 * 16 * 16 * 4
    x = random_tensor((1, 8, 16, 16), seed=4)
    want = InferenceSession(lrn_model(), providers=["ReferenceExecutionProvider"]).run(None, {"x": x})[0]
    s.run(None, {"x": x})
    del calls[:]
    got = s.run(None, {"x": x})[0]
    assert (1, 16, 16, 16) not in calls  # the LRN's window sums came from its workspace
    assert_close(got, want, rtol=2e-5, atol=2e-5 * float(np.abs(want).max()))  # the reference's prefix sums cancel


def test_inception_with_the_cpu_lrn_matches_onnxruntime():
    m = build_model("inception", image_size=64, num_classes=10, width=0.25)
    if not any(n.op_type == "LRN" for n in m.graph.node):
        pytest.fail("the Inception-style model has no LRN: this test would check nothing")
    s = InferenceSession(m)
    lrn = [st.provider for st in s.plan.steps if st.spec.op_type == "LRN"]
    assert lrn and set(lrn) == {"CPUExecutionProvider"}
    x = np.random.default_rng(5).standard_normal((1, 3, 64, 64)).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got = s.run(None, {"input": x})[0]
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
