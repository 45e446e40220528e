"""Bad models and bad feeds: each raises the right EngineError subclass naming the node or input."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course import InferenceSession
from course.errors import (DanglingValueError, DTypeError, EngineError, FeedError, GraphCycleError, KernelError,
                           ModelError, OpAttributeError, OpsetError, ShapeError, UnsupportedOpError)
from course.ops import registry
from course.ops.base import Op
from course.testing import assert_close, random_tensor
from ir_builders import mlp, model, ort_run

# --- feeds --------------------------------------------------------------------------------------


def two_inputs():
    """a[N,3] + b[N,3] -> y; c[2] -> z (fixed dims)."""
    nodes = [h.make_node("Add", ["a", "b"], ["y"], name="add"), h.make_node("Neg", ["c"], ["z"], name="neg")]
    return model(nodes, [("a", T.FLOAT, ["N", 3]), ("b", T.FLOAT, ["N", 3]), ("c", T.INT64, [2])],
                 [("y", T.FLOAT, ["N", 3]), ("z", T.INT64, [2])])


def good_feeds(n=2):
    return {"a": random_tensor((n, 3), seed=1), "b": random_tensor((n, 3), seed=2), "c": np.array([1, -2], np.int64)}


@pytest.fixture(scope="module")
def sess():
    return InferenceSession(two_inputs())


def test_good_feeds_run(sess):
    f = good_feeds(4)
    y, z = sess.run(None, f)
    assert np.array_equal(y, f["a"] + f["b"]) and np.array_equal(z, [-1, 2])


@pytest.mark.parametrize("change, match", [
    (lambda f: f.pop("b"), r"missing input 'b'"),
    (lambda f: f.update(d=np.zeros(1, np.float32)), r"unknown input name\(s\) \['d'\]"),
    (lambda f: f.update(a=f["a"].astype(np.float64)), r"input 'a' has dtype float64, expected float32"),
    (lambda f: f.update(c=np.array([1, 2], np.int32)), r"input 'c' has dtype int32, expected int64"),
    (lambda f: f.update(a=f["a"].reshape(2, 3, 1)), r"input 'a' has rank 3 .*expected rank 2"),
    (lambda f: f.update(c=np.array([1, 2, 3], np.int64)), r"input 'c' has shape \(3,\), expected .*dim 0 must be 2"),
    (lambda f: f.update(a=np.zeros((2, 4), np.float32)), r"input 'a' has shape \(2, 4\), .*dim 1 must be 3"),
    (lambda f: f.update(b=np.zeros((5, 3), np.float32)), r"input 'b' dim 0 \('N'\) is 5, but input 'a' gave 'N' = 2"),
    (lambda f: f.update(a=[[0.0] * 3] * 2), r"input 'a' must be a numpy array .*got list"),
    (lambda f: f.update(c=(1, 2)), r"input 'c' must be a numpy array .*got tuple"),
    (lambda f: f.update(a=None), r"input 'a' must be a numpy array .*got NoneType"),
])
def test_bad_feeds(sess, change, match):
    f = good_feeds()
    change(f)
    with pytest.raises(FeedError, match=match):
        sess.run(None, f)


def test_feeds_must_be_a_mapping(sess):
    with pytest.raises(FeedError, match="feeds must be a dict"):
        sess.run(None, list(good_feeds().values()))


def test_unknown_output_name(sess):
    with pytest.raises(FeedError, match=r"unknown output name 'w'; the model's outputs are \['y', 'z'\]"):
        sess.run(["y", "w"], good_feeds())


# --- kernels ------------------------------------------------------------------------------------
class _Boom(Op):
    attrs = {"mode": "crash"}

    def infer(self, ctx):
        return [ctx.inputs[0]]

    def compute(self, x, mode):
        if mode == "crash":
            return x / 0 if x.dtype.kind == "i" else {}["missing"]
        if mode == "shape":
            raise ShapeError("rows must be even")
        return x, x  # "extra": more outputs than the node has are fine


registry.register("Boom", since=1, domain="test.session")(_Boom)


def boom(mode):
    node = h.make_node("Boom", ["x"], ["y"], name="b1", domain="test.session", mode=mode)
    return model([node], [("x", T.FLOAT, [2])], [("y", T.FLOAT, [2])], extra_opsets=[("test.session", 1)])


def test_a_crashing_kernel_becomes_a_kernel_error_naming_the_node():
    with pytest.raises(KernelError, match=r"node 'b1' \(Boom\): kernel failed: KeyError") as e:
        InferenceSession(boom("crash")).run(None, {"x": np.zeros(2, np.float32)})
    assert isinstance(e.value.__cause__, KeyError)


def test_an_engine_error_from_a_kernel_keeps_its_class_and_gains_the_node():
    with pytest.raises(ShapeError, match=r"^node 'b1' \(Boom\): rows must be even$"):
        InferenceSession(boom("shape")).run(None, {"x": np.zeros(2, np.float32)})


def test_extra_kernel_outputs_are_dropped():
    y = InferenceSession(boom("extra")).run(None, {"x": np.ones(2, np.float32)})
    assert len(y) == 1 and np.array_equal(y[0], [1, 1])


def test_symbolic_dims_that_disagree_at_run_time():
    m = model([h.make_node("Add", ["a", "b"], ["y"], name="add")],
              [("a", T.FLOAT, ["N", 3]), ("b", T.FLOAT, ["M", 3])], [("y", T.FLOAT, None)])
    s = InferenceSession(m)
    with pytest.raises(KernelError, match=r"node 'add' \(Add\): kernel failed: ValueError"):
        s.run(None, {"a": np.zeros((2, 3), np.float32), "b": np.zeros((4, 3), np.float32)})


# --- models -------------------------------------------------------------------------------------
X = [("x", T.FLOAT, [2, 3])]
Y = [("y", T.FLOAT, None)]


def m_cycle():
    return model([h.make_node("Add", ["x", "b"], ["a"], name="n_a"), h.make_node("Relu", ["a"], ["b"], name="n_b"),
                  h.make_node("Neg", ["a"], ["y"], name="n_y")], X, Y)


BAD_MODELS = {
    "not onnx": (lambda: b"\x00garbage", ModelError, "not an ONNX model"),
    "cycle": (m_cycle, GraphCycleError, "'n_a' \\(Add\\)"),
    "dangling": (lambda: model([h.make_node("Add", ["x", "ghost"], ["y"], name="add")], X, Y),
                 DanglingValueError, "node 'add' \\(Add\\) reads 'ghost'"),
    "unknown op": (lambda: model([h.make_node("Frobnicate", ["x"], ["y"], name="frob")], X, Y),
                   UnsupportedOpError, "node 'frob' \\(Frobnicate\\)"),
    "opset": (lambda: model([h.make_node("Relu", ["x"], ["y"], name="r")], X, Y, opset=3),
              OpsetError, "opset 3"),
    "unknown attribute": (lambda: model([h.make_node("Relu", ["x"], ["y"], name="r", gamma=2.0)], X, Y),
                          OpAttributeError, "node 'r' \\(Relu\\): unknown attribute.*gamma"),
    "missing attribute": (lambda: model([h.make_node("LRN", ["x4"], ["y"], name="lrn")],
                                        [("x4", T.FLOAT, [1, 2, 3, 3])], Y),
                          OpAttributeError, "node 'lrn' \\(LRN\\): required attribute 'size'"),
    "shape mismatch": (lambda: model([h.make_node("Add", ["x", "v"], ["y"], name="add")], X, Y,
                                     {"v": np.zeros(4, np.float32)}), ShapeError, "node 'add' \\(Add\\)"),
    "dtype mismatch": (lambda: model([h.make_node("Add", ["x", "v"], ["y"], name="add")], X, Y,
                                     {"v": np.zeros(3, np.int64)}), DTypeError, "node 'add' \\(Add\\)"),
    "rank mismatch": (lambda: model([h.make_node("MatMul", ["x", "v"], ["y"], name="mm")], X, Y,
                                    {"v": np.zeros((4, 2), np.float32)}), ShapeError, "node 'mm' \\(MatMul\\)"),
    "declared output": (lambda: model([h.make_node("Relu", ["x"], ["y"], name="r")], X, [("y", T.FLOAT, [3, 2])]),
                        ShapeError, "node 'r' \\(Relu\\): output 'y' is declared"),
    "attribute of the wrong type": (lambda: model([h.make_node("Softmax", ["x"], ["y"], name="sm", axis="a")], X, Y),
                                    OpAttributeError, "node 'sm' \\(Softmax\\): attribute 'axis' must be an int, got str"),
    "list for an int attribute": (lambda: model([h.make_node("Flatten", ["x"], ["y"], name="f", axis=[1, 2])], X, Y),
                                  OpAttributeError, "node 'f' \\(Flatten\\): attribute 'axis' must be an int"),
    "LRN size 0": (lambda: model([h.make_node("LRN", ["x4"], ["y"], name="lrn", size=0)],
                                 [("x4", T.FLOAT, [1, 2, 3, 3])], Y),
                   OpAttributeError, "node 'lrn' \\(LRN\\): size must be a positive int"),
    "Pad crops past the start": (lambda: model([h.make_node("Pad", ["x", "p"], ["y"], name="pad")], X, Y,
                                               {"p": np.array([-5, 0, 0, 0], np.int64)}),
                                 ShapeError, "node 'pad' \\(Pad\\): pads \\(-5, 0\\) on axis 0 of size 2"),
    "no outputs": (lambda: model([h.make_node("Relu", ["x"], ["y"], name="r")], X, []),
                   ModelError, "declares no outputs"),
    "missing input": (lambda: model([h.make_node("Gemm", ["x"], ["y"], name="gemm")], X, Y),
                      ModelError, "node 'gemm' \\(Gemm\\): takes 2 to 3 input\\(s\\), got 1"),
}


@pytest.mark.parametrize("name", sorted(BAD_MODELS))
def test_bad_models_raise_named_engine_errors(name):
    build, err, match = BAD_MODELS[name]
    with pytest.raises(err, match=match) as e:
        InferenceSession(build())
    assert isinstance(e.value, EngineError)


def test_good_model_still_builds_and_runs():
    """The table above is not failing for some shared reason: a well-formed model builds and matches ORT."""
    m, x = mlp(), {"x": random_tensor((3, 4), seed=9)}
    (y,) = InferenceSession(m).run(None, x)
    assert_close(y, ort_run(m, x)[0])
