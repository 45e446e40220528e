"""InferenceSession: the onnxruntime-shaped API, results against onnxruntime, custom kernels, the plan."""
import weakref

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper as h

import course
from course import InferenceSession
from course.errors import KernelError
from course.ir.onnx_import import from_onnx
from course.testing import assert_close, random_tensor
from ir_builders import convnet, mlp, model, ort_run


def ort_args(args):
    return [(a.name, list(a.shape), a.type) for a in args]


def ours(args):
    return [(a.name, a.shape, a.type) for a in args]


@pytest.mark.parametrize("build, shapes", [(mlp, [(1, 4), (5, 4)]), (convnet, [(1, 3, 8, 8), (3, 3, 8, 8)])])
def test_results_and_signature_match_onnxruntime(build, shapes):
    m = build()
    s = InferenceSession(m)
    o = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert ours(s.get_inputs()) == ort_args(o.get_inputs())
    assert ours(s.get_outputs()) == ort_args(o.get_outputs())
    for i, shape in enumerate(shapes):  # the symbolic batch takes any size
        x = random_tensor(shape, seed=i)
        got = s.run(None, {"x": x})
        assert isinstance(got, list) and len(got) == 1
        assert_close(got[0], o.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_module_level_names():
    assert course.InferenceSession is InferenceSession
    assert course.onnx_backend.prepare is not None


def test_accepts_path_bytes_proto_and_graph(tmp_path):
    m = mlp()
    p = tmp_path / "mlp.onnx"
    p.write_bytes(m.SerializeToString())
    x = random_tensor((2, 4))
    want = ort_run(m, {"x": x})[0]
    for src in (m, m.SerializeToString(), str(p), from_onnx(m)):
        assert_close(InferenceSession(src).run(None, {"x": x})[0], want)


def two_outputs():
    nodes = [h.make_node("Relu", ["x"], ["a"], name="relu"), h.make_node("Neg", ["x"], ["b"], name="neg")]
    return model(nodes, [("x", T.FLOAT, [3])], [("a", T.FLOAT, [3]), ("b", T.FLOAT, [3])])


def test_output_selection_by_name_and_order():
    s = InferenceSession(two_outputs())
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    a, b = np.maximum(x, 0), -x
    all_ = s.run(None, {"x": x})
    assert len(all_) == 2 and np.array_equal(all_[0], a) and np.array_equal(all_[1], b)
    sel = s.run(["b", "a"], {"x": x})
    assert np.array_equal(sel[0], b) and np.array_equal(sel[1], a)
    assert np.array_equal(s.run(["b"], {"x": x})[0], b) and len(s.run(["b"], {"x": x})) == 1


def test_providers():
    both = ["CPUExecutionProvider", "ReferenceExecutionProvider"]
    assert InferenceSession(mlp()).get_providers() == both
    assert InferenceSession(mlp(), providers=["CPUExecutionProvider"]).get_providers() == both  # fallback added
    assert InferenceSession(mlp(), providers=["ReferenceExecutionProvider"]).get_providers() == both[1:]
    with pytest.raises(ValueError, match="TensorrtExecutionProvider"):  # a name this engine lacks
        InferenceSession(mlp(), providers=["TensorrtExecutionProvider"])


def test_numpy_scalar_feed_for_a_rank0_input():
    m = model([h.make_node("Neg", ["x"], ["y"], name="neg")], [("x", T.DOUBLE, [])], [("y", T.DOUBLE, [])])
    y = InferenceSession(m).run(None, {"x": np.float64(2.5)})[0]
    assert isinstance(y, np.ndarray) and y.shape == () and y.dtype == np.float64 and y == -2.5


def _own_loop(program, feeds, kernels):
    env = {**program["initializers"], **feeds}
    for n in program["nodes"]:
        outs = kernels[n["name"]](*[env[v] if v else None for v in n["inputs"]])
        env.update(zip(n["outputs"], outs if isinstance(outs, tuple) else (outs,)))
    return [env[v] for v in program["outputs"]]


@pytest.mark.parametrize("interpreter", [None, _own_loop])
def test_outputs_never_alias_the_sessions_initializers(interpreter):
    m = model([], [], [("w", T.FLOAT, [2])], {"w": np.array([1.0, 2.0], np.float32)})
    s = InferenceSession(m, interpreter=interpreter)
    w = s.run(None, {})[0]
    w[:] = 0
    assert np.array_equal(s.run(None, {})[0], [1.0, 2.0])


def test_repeated_runs_are_independent():
    s = InferenceSession(mlp())
    x1, x2 = random_tensor((2, 4), seed=1), random_tensor((2, 4), seed=2)
    first = s.run(None, {"x": x1})[0].copy()
    s.run(None, {"x": x2})
    assert np.array_equal(s.run(None, {"x": x1})[0], first)


def test_a_fed_initializer_replaces_the_weight_for_that_run_only():
    """Each run starts from the session's template of weights: a feed for an overridable
    initializer lands in the run's slots, never in the template."""
    nodes = [h.make_node("Add", ["x", "w"], ["y"], name="add")]
    m = model(nodes, [("x", T.FLOAT, [2]), ("w", T.FLOAT, [2])], [("y", T.FLOAT, [2])],
              {"w": np.array([1.0, 2.0], np.float32)})
    s = InferenceSession(m)
    x = np.zeros(2, np.float32)
    assert [a.name for a in s.get_overridable_initializers()] == ["w"]
    np.testing.assert_array_equal(s.run(None, {"x": x, "w": np.array([5.0, 6.0], np.float32)})[0], [5.0, 6.0])
    np.testing.assert_array_equal(s.run(None, {"x": x})[0], [1.0, 2.0])


@pytest.mark.parametrize("feed", [
    lambda x: x.copy(order="F"),  # a plain ndarray in another layout
    lambda x: np.ma.masked_array(x),  # an ndarray subclass: converted by the full check
    lambda x: np.broadcast_to(x[:1], x.shape),  # read-only, zero strides
])
def test_feeds_of_any_plain_or_unusual_array_run_alike(feed):
    from collections import OrderedDict

    s = InferenceSession(mlp())
    x = feed(random_tensor((3, 4), seed=4))
    want = s.run(None, {"x": np.array(x)})[0]  # a fresh C-contiguous copy: the quick path
    np.testing.assert_array_equal(s.run(None, {"x": x})[0], want)
    np.testing.assert_array_equal(s.run(None, OrderedDict(x=x))[0], want)  # any Mapping: the full check

# --- custom kernels -----------------------------------------------------------------------------
def test_custom_kernel_replaces_every_node_of_its_type_and_gets_attrs():
    calls = []

    def softmax(x, axis):
        calls.append(axis)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype)

    m = mlp()
    x = random_tensor((3, 4))
    got = InferenceSession(m, custom_kernels={"Softmax": softmax}).run(None, {"x": x})[0]
    assert calls == [-1]
    assert_close(got, ort_run(m, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_a_wrong_custom_kernel_changes_the_result():
    m = mlp()
    x = random_tensor((3, 4))
    good = InferenceSession(m).run(None, {"x": x})[0]
    leaky = InferenceSession(m, custom_kernels={"Relu": lambda x: np.where(x > 0, x, 0.1 * x)}).run(None, {"x": x})[0]
    assert not np.allclose(good, leaky)


@pytest.mark.parametrize("kernel, match", [
    (lambda x: x.astype(np.float64), "returned dtype float64, expected float32"),
    (lambda x: x[:, :1], r"returned shape \(2, 1\), expected \(2, 5\)"),
    (lambda x: x.tolist(), "returned list, not a numpy array"),
])
def test_custom_kernel_outputs_are_checked(kernel, match):
    s = InferenceSession(mlp(batch=2), custom_kernels={"Relu": kernel})
    with pytest.raises(KernelError, match=rf"node 'relu' \(Relu\): kernel {match}"):
        s.run(None, {"x": random_tensor((2, 4))})


def test_custom_kernel_validation():
    with pytest.raises(ValueError, match="'Conv2D'"):
        InferenceSession(mlp(), custom_kernels={"Conv2D": lambda x: x})
    with pytest.raises(TypeError, match="'Relu' is not callable"):
        InferenceSession(mlp(), custom_kernels={"Relu": 3})


# --- the plan -----------------------------------------------------------------------------------
def chain_model():
    ops = ["Relu", "Neg", "Abs", "Sigmoid"]
    names = ["x", "a", "b", "c", "y"]
    nodes = [h.make_node(op, [names[i]], [names[i + 1]], name=op.lower()) for i, op in enumerate(ops)]
    return model(nodes, [("x", T.FLOAT, [4])], [("y", T.FLOAT, [4])])


def test_plan_frees_each_value_after_its_last_reader():
    s = InferenceSession(chain_model())
    plan = s._plan
    freed = [sorted(plan.value_names[i] for i in st.free) for st in plan.steps]
    assert freed == [["x"], ["a"], ["b"], ["c"]]  # y is an output: kept


def test_intermediates_are_released_during_the_run():
    refs = {}

    def keep(name, fn):
        def k(x):
            out = fn(x)
            refs[name] = weakref.ref(out)
            return out
        return k

    def last(x):
        refs["alive_at_end"] = {n: r() is not None for n, r in refs.items()}
        return (1 / (1 + np.exp(-x))).astype(x.dtype)

    kernels = {"Relu": keep("a", lambda x: np.maximum(x, 0)), "Neg": keep("b", np.negative),
               "Abs": keep("c", np.abs), "Sigmoid": last}
    InferenceSession(chain_model(), custom_kernels=kernels).run(None, {"x": random_tensor((4,))})
    assert refs["alive_at_end"] == {"a": False, "b": False, "c": True}


@pytest.mark.parametrize("elem", [T.FLOAT16, T.DOUBLE, T.INT8, T.UINT8, T.INT16, T.UINT16, T.INT32, T.UINT32,
                                  T.INT64, T.UINT64, T.BOOL, T.STRING])
def test_element_types_round_trip_like_onnxruntime(elem):
    m = model([h.make_node("Identity", ["x"], ["y"], name="id")], [("x", elem, [2, "K"])], [("y", elem, [2, "K"])])
    s = InferenceSession(m)
    o = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert ours(s.get_inputs()) == ort_args(o.get_inputs())
    assert ours(s.get_outputs()) == ort_args(o.get_outputs())
    dtype = helper_dtype(elem)
    x = np.array([["a", "bc"], ["d", ""]], dtype=object) if elem == T.STRING else \
        random_tensor((2, 2), dtype=dtype, low=0, high=5)
    got, want = s.run(None, {"x": x})[0], o.run(None, {"x": x})[0]
    assert got.dtype == want.dtype and got.tolist() == want.tolist()


def helper_dtype(elem):
    return h.tensor_dtype_to_np_dtype(elem)
