"""Small ONNX models for the IR / runtime tests, built with onnx.helper (no files, no downloads)."""
import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper

from course.testing import random_tensor


def model(nodes, inputs, outputs, inits=(), opset=17, ir_version=8, extra_opsets=()):
    """inputs/outputs: (name, elem_type, shape) triples; inits: {name: array}."""
    g = h.make_graph(
        nodes, "g",
        [h.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [h.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in dict(inits).items()],
    )
    ops = [h.make_opsetid("", opset), *(h.make_opsetid(d, v) for d, v in extra_opsets)]
    return h.make_model(g, opset_imports=ops, ir_version=ir_version)


def mlp(batch="N", opset=17):
    """x[N,4] -> MatMul -> Add -> Relu -> Gemm -> Softmax -> y[N,3], weights as initializers."""
    inits = {"w1": random_tensor((4, 5), seed=1), "b1": random_tensor((5,), seed=2),
             "w2": random_tensor((3, 5), seed=3), "b2": random_tensor((3,), seed=4)}
    nodes = [
        h.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
        h.make_node("Add", ["h0", "b1"], ["h1"], name="bias1"),
        h.make_node("Relu", ["h1"], ["h2"], name="relu"),
        h.make_node("Gemm", ["h2", "w2", "b2"], ["h3"], name="fc2", transB=1),
        h.make_node("Softmax", ["h3"], ["y"], name="softmax", axis=-1),
    ]
    return model(nodes, [("x", T.FLOAT, [batch, 4])], [("y", T.FLOAT, [batch, 3])], inits, opset=opset)


def convnet(opset=17):
    """x[N,3,8,8] -> Conv(pad 1) -> Relu -> MaxPool -> Reshape (const shape) -> y[N,16*4*4]."""
    inits = {"w": random_tensor((4, 3, 3, 3), seed=5), "b": random_tensor((4,), seed=6),
             "shape": np.array([0, -1], np.int64)}
    nodes = [
        h.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c"], ["r"], name="relu"),
        h.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        h.make_node("Reshape", ["p", "shape"], ["y"], name="flatten"),
    ]
    return model(nodes, [("x", T.FLOAT, ["N", 3, 8, 8])], [("y", T.FLOAT, ["N", 64])], inits, opset=opset)


def ir3_model(ir_version=3):
    """The initializer 'b' is also a graph input (required before IR 4): a feed may override it."""
    m = model([h.make_node("Add", ["x", "b"], ["y"], name="add")], [("x", T.FLOAT, [2, 3])], [("y", T.FLOAT, None)],
              {"b": np.array([1.0, 2.0, 3.0], np.float32)}, opset=8, ir_version=ir_version)
    m.graph.input.append(h.make_tensor_value_info("b", T.FLOAT, [3]))
    return m


def constant_chain():
    nodes = [h.make_node("Shape", ["x"], ["s"], name="shape"),
             h.make_node("Constant", [], ["k"], name="k", value_ints=[-1]),
             h.make_node("Concat", ["k", "s"], ["t"], name="cat", axis=0),
             h.make_node("Slice", ["t", "zero", "two"], ["target"], name="slice"),
             h.make_node("Reshape", ["x", "target"], ["y"], name="reshape")]
    return model(nodes, [("x", T.FLOAT, ["N", 6])], [("y", T.FLOAT, None)],
                 {"zero": np.array([0], np.int64), "two": np.array([2], np.int64)})


def clip_model():
    return model([h.make_node("Clip", ["x", "", "hi"], ["y"], name="clip")], [("x", T.FLOAT, [2, 3])],
                 [("y", T.FLOAT, [2, 3])], {"hi": np.array(0.5, np.float32)}, opset=13)


def pool_model():
    nodes = [h.make_node("AveragePool", ["x"], ["a"], name="avg", kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
             h.make_node("BatchNormalization", ["a", "s", "b", "m", "v"], ["n"], name="bn", epsilon=1e-3),
             h.make_node("Transpose", ["n"], ["t"], name="tr", perm=[0, 2, 3, 1]),
             h.make_node("Flatten", ["t"], ["y"], name="flat", axis=1)]
    c = {k: np.full(2, i + 1.0, np.float32) for i, k in enumerate("sbmv")}
    return model(nodes, [("x", T.FLOAT, [1, 2, 4, 4])], [("y", T.FLOAT, [1, 32])], c)


def ort_run(m: onnx.ModelProto, feeds: dict, names=None):
    import onnxruntime as ort

    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(names, feeds)
