"""course.ir.trace: a Module traced into a static graph agrees with eager and with onnxruntime."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import course.ops  # noqa: F401  (registers every op)
from course.ir.onnx_export import to_onnx
from course.ir.trace import TraceError, trace, trace_onnx
from course.module import F, Linear, Module, SmallCNN
from course.testing import assert_close, random_tensor


def ort_run(model: onnx.ModelProto, feeds: dict) -> list:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


class Recurrent(Module):
    """h_{t+1} = relu(W x_t + U h_t + b), a Python for-loop over the time axis, shared weights."""

    def __init__(self, features=4, hidden=5):
        super().__init__()
        self.inp = Linear(features, hidden, seed=1)
        self.rec = Linear(hidden, hidden, bias=False, seed=2)

    def forward(self, *xs):  # one input per time step; the Python loop runs once per step
        h = F.relu(self.inp(xs[0]))
        for xt in xs[1:]:
            h = F.relu(F.add(self.inp(xt), self.rec(h)))
        return h


def eager_recurrent(m: Recurrent, xs) -> np.ndarray:
    w, b, u = m.inp.weight, m.inp.bias, m.rec.weight
    h = np.maximum(xs[0] @ w.T + b, 0)
    for xt in xs[1:]:
        h = np.maximum(xt @ w.T + b + h @ u.T, 0)
    return h


def test_small_cnn_trace_matches_eager_and_onnxruntime():
    m = SmallCNN(seed=3).eval()
    model = trace_onnx(m, random_tensor((2, 1, 8, 8), seed=0))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Conv", "BatchNormalization", "Relu", "MaxPool"] * 2 + [
        "Flatten", "Gemm"]
    expected_inits = [k for k, _ in m.named_parameters()] + [k for k, _ in m.named_buffers()]
    assert sorted(t.name for t in model.graph.initializer) == sorted(expected_inits)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 1, 8, 8]
    out_dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == ["N", 10]
    for batch in (1, 7):
        x = random_tensor((batch, 1, 8, 8), seed=batch)
        assert_close(ort_run(model, {"input": x})[0], m(x), rtol=1e-4, atol=1e-5, what=f"batch {batch}")


def test_trace_returns_a_typed_ir_graph_that_exports():
    m = SmallCNN(seed=4).eval()
    g = trace(m, random_tensor((3, 1, 8, 8), seed=1))
    g.verify()
    assert str(g.inputs[0].type) == "float32[Nx1x8x8]" and str(g.outputs[0].type) == "float32[Nx10]"
    exported = to_onnx(g)
    onnx.checker.check_model(exported, full_check=True)
    x = random_tensor((5, 1, 8, 8), seed=2)
    assert_close(ort_run(exported, {"input": x})[0], m(x), rtol=1e-4, atol=1e-5, what="IR round trip")


def test_loop_is_unrolled_and_shared_weights_stay_single():
    m = Recurrent()
    xs = tuple(random_tensor((2, 4), seed=t) for t in range(4))
    model = trace_onnx(m, xs)
    assert [i.name for i in model.graph.input] == ["input0", "input1", "input2", "input3"]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Gemm") == 4 + 3 and ops.count("Relu") == 4 and ops.count("Add") == 3
    weights = [t.name for t in model.graph.initializer if t.name.endswith("weight") or t.name.endswith("bias")]
    assert sorted(weights) == ["inp.bias", "inp.weight", "rec.weight"], "each parameter must appear once"
    for batch in (1, 7):
        xb = [random_tensor((batch, 4), seed=10 * batch + t) for t in range(4)]
        feeds = {f"input{t}": x for t, x in enumerate(xb)}
        assert_close(ort_run(model, feeds)[0], eager_recurrent(m, xb), rtol=1e-4, atol=1e-5)


def test_python_branch_on_shape_is_resolved_at_trace_time():
    class Branchy(Module):
        def forward(self, x):
            return F.relu(x) if x.shape[1] > 3 else F.call("Neg", x)

    wide = trace_onnx(Branchy(), random_tensor((2, 5), seed=0))
    narrow = trace_onnx(Branchy(), random_tensor((2, 3), seed=0))
    assert [n.op_type for n in wide.graph.node] == ["Relu"]
    assert [n.op_type for n in narrow.graph.node] == ["Neg"]


def test_numpy_outside_F_is_caught_by_the_check():
    class Leaky(Module):
        def forward(self, x):
            return F.relu(x * 2.0)  # numpy multiply: frozen into a constant by tracing

    with pytest.raises(TraceError, match="disagrees"):
        trace_onnx(Leaky(), random_tensor((2, 3), seed=0))
    model = trace_onnx(Leaky(), random_tensor((2, 3), seed=0), dynamic_batch=False, check=False)
    assert [n.op_type for n in model.graph.node] == ["Relu"]
    assert model.graph.node[0].input[0].startswith("const_"), "the frozen array became an initializer"


def test_batch_baked_into_a_reshape_is_reported():
    class Baked(Module):
        def forward(self, x):
            return F.call("Reshape", x, np.array([x.shape[0], -1], dtype=np.int64))

    with pytest.raises(TraceError, match="batch 4"):
        trace_onnx(Baked(), random_tensor((2, 3, 2), seed=0))
    fixed = trace_onnx(Baked(), random_tensor((2, 3, 2), seed=0), dynamic_batch=False)
    assert [d.dim_value for d in fixed.graph.input[0].type.tensor_type.shape.dim] == [2, 3, 2]


def test_identity_and_repeated_outputs():
    class Two(Module):
        def forward(self, x):
            y = F.relu(x)
            return x, y, y

    model = trace_onnx(Two(), random_tensor((2, 3), seed=0), output_names=["same", "a", "b"])
    onnx.checker.check_model(model, full_check=True)
    x = random_tensor((4, 3), seed=1)
    same, a, b = ort_run(model, {"input": x})
    assert_close(same, x)
    assert_close(a, np.maximum(x, 0))
    assert_close(b, np.maximum(x, 0))


def test_output_that_is_not_an_op_result_is_an_error():
    class Constant(Module):
        def forward(self, x):
            return np.ones((2, 2), dtype=np.float32)

    with pytest.raises(TraceError, match="output 'output'"):
        trace_onnx(Constant(), random_tensor((2, 2), seed=0))
