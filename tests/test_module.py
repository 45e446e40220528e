"""course.module: registration, state dicts, and forwards that agree with onnxruntime."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from course.errors import ShapeError
from course.module import (F, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, Parameter,
                           ReLU, Sequential, SmallCNN)
from course.testing import assert_close, random_tensor


def _randomize_bn(model: Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics so a wrong formula shows."""
    g = np.random.default_rng(seed)
    for _, m in model.named_modules():
        if isinstance(m, BatchNorm2d):
            c = m.weight.shape[0]
            m.weight = Parameter(g.uniform(0.5, 1.5, c))
            m.bias = Parameter(g.uniform(-0.5, 0.5, c))
            m.running_mean = g.uniform(-0.3, 0.3, c).astype(np.float32)
            m.running_var = g.uniform(0.2, 2.0, c).astype(np.float32)


def _small_cnn_onnx(model: SmallCNN, image_size: int) -> onnx.ModelProto:
    """The same network written by hand with onnx.helper (no use of course.module.F)."""
    sd = model.state_dict()
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in sd.items()]
    nodes, x = [], "input"
    for s in range(2):
        p = f"features.{s}"
        nodes += [
            helper.make_node("Conv", [x, f"{p}.0.weight", f"{p}.0.bias"], [f"c{s}"], pads=[1, 1, 1, 1]),
            helper.make_node("BatchNormalization", [f"c{s}", f"{p}.1.weight", f"{p}.1.bias",
                                                    f"{p}.1.running_mean", f"{p}.1.running_var"], [f"b{s}"]),
            helper.make_node("Relu", [f"b{s}"], [f"r{s}"]),
            helper.make_node("MaxPool", [f"r{s}"], [f"p{s}"], kernel_shape=[2, 2], strides=[2, 2]),
        ]
        x = f"p{s}"
    nodes += [helper.make_node("Flatten", [x], ["f"], axis=1),
              helper.make_node("Gemm", ["f", "classifier.weight", "classifier.bias"], ["logits"], transB=1)]
    c_in = sd["features.0.0.weight"].shape[1]
    graph = helper.make_graph(
        nodes, "small_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c_in, image_size, image_size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


@pytest.mark.parametrize("image_size,channels", [(8, (8, 16)), (28, (4, 6)), (11, (3, 5))])
def test_small_cnn_matches_onnxruntime(image_size, channels):
    model = SmallCNN(image_size=image_size, channels=channels, seed=3).eval()
    _randomize_bn(model, seed=image_size)
    x = random_tensor((3, 1, image_size, image_size), seed=1)
    y = model(x)
    assert type(y) is np.ndarray and y.shape == (3, 10)
    assert_close(y, _ort(_small_cnn_onnx(model, image_size), x), rtol=1e-4, atol=1e-5)


def test_registration_and_names():
    m = SmallCNN()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["features.0.0.weight", "features.0.0.bias", "features.0.1.weight",
                     "features.0.1.bias", "features.1.0.weight", "features.1.0.bias",
                     "features.1.1.weight", "features.1.1.bias", "classifier.weight",
                     "classifier.bias"]
    assert sum(p.size for p in m.parameters()) == (8 * 9 + 8) + 16 + (16 * 8 * 9 + 16) + 32 + 64 * 10 + 10
    assert [n for n, _ in m.named_buffers()][:2] == ["features.0.1.running_mean", "features.0.1.running_var"]
    assert [n for n, _ in m.named_modules()][:3] == ["", "features", "features.0"]


def test_attribute_rules():
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.lin = Linear(3, 2)
            self.scale = 2.0  # plain attribute: not a parameter

    n = Net()
    assert [k for k, _ in n.named_parameters()] == ["lin.weight", "lin.bias"]
    with pytest.raises(TypeError):
        n.lin = 3
    n.lin = Linear(3, 4, bias=False)
    assert [k for k, _ in n.named_parameters()] == ["lin.weight"]

    class Forgot(Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(RuntimeError, match="super"):
        Forgot()


def test_parameter_arithmetic_gives_plain_arrays():
    p = Parameter([1.0, 2.0])
    assert type(p * 2) is np.ndarray and type(p.sum()) is not Parameter
    assert p.dtype == np.float32


def test_state_dict_round_trip_and_errors():
    a, b = SmallCNN(seed=0), SmallCNN(seed=1)
    _randomize_bn(a)
    b.load_state_dict(a.state_dict())
    x = random_tensor((2, 1, 8, 8), seed=4)
    np.testing.assert_array_equal(a(x), b(x))
    bad = a.state_dict()
    bad["classifier.weight"] = np.zeros((10, 63), np.float32)
    with pytest.raises(ShapeError):
        b.load_state_dict(bad)
    del bad["classifier.weight"]
    with pytest.raises(KeyError, match="classifier.weight"):
        b.load_state_dict(bad)


def test_eval_sets_training_everywhere():
    m = SmallCNN()
    assert all(x.training for _, x in m.named_modules())
    m.eval()
    assert not any(x.training for _, x in m.named_modules())


def test_intercept_sees_one_call_per_op_in_order():
    m = SmallCNN().eval()
    seen = []

    def handler(op_type, inputs, attrs):
        seen.append(op_type)
        return F.run_op(op_type, inputs, attrs)

    x = random_tensor((1, 1, 8, 8), seed=0)
    with F.intercept(handler):
        y = m(x)
    assert seen == ["Conv", "BatchNormalization", "Relu", "MaxPool"] * 2 + ["Flatten", "Gemm"]
    np.testing.assert_array_equal(y, m(x))


def test_layers_one_by_one_against_numpy():
    x = random_tensor((2, 4, 5, 5), seed=2)
    conv = Conv2d(4, 6, 3, stride=2, padding=1, groups=2, seed=5)
    y = conv(x)
    assert y.shape == (2, 6, 3, 3)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.einsum("ngchw,gochw->ngo", xp[:, :, 0:3, 2:5].reshape(2, 2, 2, 3, 3),
                     conv.weight.reshape(2, 3, 2, 3, 3)).reshape(2, 6) + conv.bias
    assert_close(y[:, :, 0, 1], want, rtol=1e-5, atol=1e-6)
    assert_close(ReLU()(x), np.maximum(x, 0))
    assert_close(MaxPool2d(2)(x), x[:, :, :4, :4].reshape(2, 4, 2, 2, 2, 2).max(axis=(3, 5)))
    assert Flatten()(x).shape == (2, 100)
    lin = Linear(100, 3, seed=1)
    assert_close(lin(Flatten()(x)), x.reshape(2, -1) @ lin.weight.T + lin.bias, rtol=1e-5, atol=1e-6)
    assert len(Sequential(ReLU(), ReLU())) == 2
    with pytest.raises(TypeError):
        Sequential(ReLU(), np.zeros(1))
