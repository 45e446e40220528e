"""ONNX import (structure checks, attributes, Constant, IR<4 inputs) and export (checker, round trip)."""
import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto as T, helper as h, numpy_helper

from course import InferenceSession
from course.errors import (DanglingValueError, DTypeError, GraphCycleError, ModelError, OpAttributeError, OpsetError,
                           UnsupportedOpError)
from course.ir.onnx_export import to_onnx
from course.ir.onnx_import import MAX_OPSET, convert_attribute, from_onnx
from course.ops import registry
from course.ops.base import Op
from course.testing import assert_close, random_tensor
from ir_builders import clip_model, constant_chain, convnet, ir3_model, mlp, model, ort_run, pool_model

X2 = [("x", T.FLOAT, [2, 3])]
Y = [("y", T.FLOAT, None)]


def relu_model(**kw):
    return model([h.make_node("Relu", ["x"], ["y"], name="relu")], X2, Y, **kw)


# --- what is not a model ------------------------------------------------------------------------
@pytest.mark.parametrize("data", [b"\xff\xfe not protobuf \x00\x01", b"", b"\x08\x07", b"hello world"])
def test_non_onnx_bytes_are_a_model_error(data):
    with pytest.raises(ModelError, match="not an ONNX model"):
        from_onnx(data)


def test_loads_from_path_bytes_and_proto(tmp_path):
    m = relu_model()
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    for src in (m, m.SerializeToString(), str(p), p):
        g = from_onnx(src)
        assert [n.op_type for n in g] == ["Relu"] and [v.name for v in g.inputs] == ["x"]


# --- opsets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [5, MAX_OPSET + 1, 1000])
def test_unsupported_default_opset(opset):
    with pytest.raises(OpsetError, match=f"opset {opset}"):
        from_onnx(relu_model(opset=opset))


def test_node_domain_without_opset_import():
    m = relu_model()
    m.graph.node[0].domain = "com.example"
    with pytest.raises(OpsetError, match=r"node 'relu' \(Relu\).*domain 'com.example'"):
        from_onnx(m)


def test_domain_imported_twice():
    m = relu_model(extra_opsets=[("ai.onnx", 17)])
    with pytest.raises(ModelError, match="imports domain 'ai.onnx' twice"):
        from_onnx(m)


# --- ops ----------------------------------------------------------------------------------------
def test_unknown_op_names_the_node():
    m = model([h.make_node("Relu", ["x"], ["t"], name="r"), h.make_node("FancyOp", ["t"], ["y"], name="fancy")], X2, Y)
    with pytest.raises(UnsupportedOpError, match=r"node 'fancy' \(FancyOp\): unsupported op 'FancyOp'"):
        from_onnx(m)


class _Since10(Op):
    def compute(self, x):
        return x


registry.register("Since10", since=10, domain="test.onnx_io")(_Since10)


def test_op_outside_its_opset_range():
    node = h.make_node("Since10", ["x"], ["y"], name="s", domain="test.onnx_io")
    ok = model([node], X2, Y, extra_opsets=[("test.onnx_io", 10)])
    assert from_onnx(ok).nodes[0].domain == "test.onnx_io"
    old = model([node], X2, Y, extra_opsets=[("test.onnx_io", 9)])
    with pytest.raises(UnsupportedOpError, match=r"node 's' \(Since10\): .*not implemented for opset 9"):
        from_onnx(old)


# --- values -------------------------------------------------------------------------------------
def test_dangling_input_names_node_and_value():
    m = model([h.make_node("Add", ["x", "nowhere"], ["y"], name="add")], X2, Y)
    with pytest.raises(DanglingValueError, match=r"node 'add' \(Add\) reads 'nowhere'"):
        from_onnx(m)


def test_dangling_graph_output():
    m = model([h.make_node("Relu", ["x"], ["t"], name="r")], X2, Y)
    with pytest.raises(DanglingValueError, match="graph output 'y'"):
        from_onnx(m)


@pytest.mark.parametrize("second_output, match", [
    ("t", r"duplicate value name 't'.*node 'n2' \(Neg\)"),
    ("x", r"duplicate value name 'x'.*node 'n2' \(Neg\)"),
])
def test_duplicate_outputs(second_output, match):
    m = model([h.make_node("Relu", ["x"], ["t"], name="n1"), h.make_node("Neg", ["t"], [second_output], name="n2")],
              X2, [("t", T.FLOAT, None)])
    with pytest.raises(ModelError, match=match):
        from_onnx(m)


def test_nodes_out_of_order_are_sorted_and_cycles_reported():
    nodes = [h.make_node("Neg", ["t"], ["y"], name="second"), h.make_node("Relu", ["x"], ["t"], name="first")]
    g = from_onnx(model(nodes, X2, Y))
    assert [n.name for n in g] == ["first", "second"]
    cyc = [h.make_node("Add", ["x", "b"], ["a"], name="A"), h.make_node("Relu", ["a"], ["b"], name="B"),
           h.make_node("Neg", ["a"], ["y"], name="C")]
    with pytest.raises(GraphCycleError, match=r"'A' \(Add\) -> 'B' \(Relu\)|'B' \(Relu\) -> 'A' \(Add\)"):
        from_onnx(model(cyc, X2, Y))


def test_unnamed_and_duplicate_node_names_become_unique():
    nodes = [h.make_node("Relu", ["x"], ["a"]), h.make_node("Neg", ["a"], ["b"], name="n"),
             h.make_node("Abs", ["b"], ["c"], name="n"), h.make_node("Relu", ["c"], ["y"])]
    names = [n.name for n in from_onnx(model(nodes, X2, Y))]
    assert names[1] == "n" and len(set(names)) == 4 and all(names)


@pytest.mark.parametrize("elem, match", [(T.BFLOAT16, "BFLOAT16"), (T.FLOAT8E4M3FN, "FLOAT8E4M3FN")])
def test_unsupported_element_types_name_the_value(elem, match):
    m = model([h.make_node("Relu", ["x"], ["y"], name="r")], [("x", elem, [2])], Y)
    with pytest.raises(DTypeError, match=f"graph input 'x' has unsupported element type {match}"):
        from_onnx(m)
    m = relu_model()
    m.graph.initializer.append(h.make_tensor("w", elem, [1], [1.0]))
    with pytest.raises(DTypeError, match=f"initializer 'w' has unsupported element type {match}"):
        from_onnx(m)


def test_non_tensor_input_is_refused():
    m = relu_model()
    m.graph.input[0].CopyFrom(h.make_tensor_sequence_value_info("x", T.FLOAT, [2, 3]))
    with pytest.raises(DTypeError, match="graph input 'x' has a sequence type"):
        from_onnx(m)


# --- attributes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    (3, 3), (2.5, 2.5), ("same_upper", "same_upper"), ([1, 2], [1, 2]), ([0.5, 1.0], [0.5, 1.0]),
    (["a", "bc"], ["a", "bc"]),
])
def test_attribute_conversion_to_python(value, expected):
    got = convert_attribute(h.make_attribute("a", value), "attr")
    assert got == expected and type(got) is type(expected)
    if isinstance(got, list):
        assert [type(x) for x in got] == [type(x) for x in expected]


def test_tensor_attributes_become_arrays():
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    got = convert_attribute(h.make_attribute("t", numpy_helper.from_array(arr)), "attr")
    assert got.dtype == np.int32 and np.array_equal(got, arr)
    got = convert_attribute(h.make_attribute("ts", [numpy_helper.from_array(arr)] * 2), "attr")
    assert isinstance(got, list) and len(got) == 2 and np.array_equal(got[1], arr)


def test_bad_attributes():
    sub = h.make_graph([], "sub", [], [])
    with pytest.raises(UnsupportedOpError, match="attr is a subgraph"):
        convert_attribute(h.make_attribute("g", sub), "attr")
    bad = AttributeProto(name="s", type=AttributeProto.STRING, s=b"\xff\xfe")
    with pytest.raises(OpAttributeError, match="attr is not valid UTF-8"):
        convert_attribute(bad, "attr")
    with pytest.raises(OpAttributeError, match="no valid type"):
        convert_attribute(AttributeProto(name="u"), "attr")
    node = h.make_node("Relu", ["x"], ["y"], name="r")
    node.attribute.extend([h.make_attribute("k", 1), h.make_attribute("k", 2)])
    with pytest.raises(OpAttributeError, match=r"node 'r' \(Relu\): attribute 'k' is given twice"):
        from_onnx(model([node], X2, Y))


# --- semantics checked against onnxruntime --------------------------------------------------------
SPARSE = h.make_sparse_tensor(numpy_helper.from_array(np.array([5.0, 7.0], np.float32)),
                              numpy_helper.from_array(np.array([1, 4], np.int64)), [2, 3])


@pytest.mark.parametrize("attr, value", [
    ("value", numpy_helper.from_array(np.array([[1.5, -2.0]], np.float32))),
    ("value_float", 2.5), ("value_floats", [1.0, 2.5]), ("value_int", 7), ("value_ints", [3, -4]),
    ("value_string", "hi"), ("value_strings", ["a", "b"]), ("sparse_value", SPARSE),
])
def test_constant_value_attributes_match_onnxruntime(attr, value):
    m = model([h.make_node("Constant", [], ["y"], name="c", **{attr: value})], [], [("y", T.UNDEFINED, None)])
    m.graph.output[0].ClearField("type")
    got = InferenceSession(m).run(None, {})[0]
    if attr == "sparse_value":  # onnxruntime answers with a sparse object; densify by hand
        want = np.zeros(6, np.float32)
        want[[1, 4]] = [5.0, 7.0]
        want = want.reshape(2, 3)
    else:
        want = ort_run(m, {})[0]
    assert got.shape == want.shape
    if want.dtype == object:
        assert got.dtype == object and [str(s) for s in got.ravel()] == [str(s) for s in want.ravel()]
    else:
        assert_close(got, want)


def test_empty_string_optional_inputs():
    x = random_tensor((2, 3), seed=0, low=-3, high=3)
    lim = {"lo": np.array(-1.0, np.float32), "hi": np.array(0.5, np.float32)}
    for ins in (["x", "", "hi"], ["x", "lo", ""], ["x", "", ""]):
        m = model([h.make_node("Clip", ins, ["y"], name="clip")], X2, Y, {k: lim[k] for k in ins if k in lim}, opset=13)
        g = from_onnx(m)
        want_inputs = [None if not n else n for n in ins]
        while want_inputs[-1] is None:
            want_inputs.pop()  # trailing omitted inputs are dropped
        assert [None if v is None else v.name for v in g.nodes[0].inputs] == want_inputs
        assert_close(InferenceSession(m).run(None, {"x": x})[0], ort_run(m, {"x": x})[0])


@pytest.mark.parametrize("ir_version", [3, 4])
def test_initializer_that_is_an_input_is_an_overridable_default(ir_version):
    # ONNX IR.md: an initializer named like a graph input is that input's default. (onnxruntime
    # refuses the override for IR 3 models, so it is the oracle for IR 4 only.)
    m = ir3_model(ir_version)
    g = from_onnx(m)
    b = g.initializers["b"]
    assert g.is_overridable(b) and any(v is b for v in g.inputs)
    s = InferenceSession(m)
    assert [a.name for a in s.get_inputs()] == ["x"]
    assert [a.name for a in s.get_overridable_initializers()] == ["b"]
    x = random_tensor((2, 3), seed=1)
    other = np.array([10.0, 20.0, 30.0], np.float32)
    assert_close(s.run(None, {"x": x})[0], ort_run(m, {"x": x})[0])
    want = x + other if ir_version < 4 else ort_run(m, {"x": x, "b": other})[0]
    assert_close(s.run(None, {"x": x, "b": other})[0], want)
    assert_close(s.run(None, {"x": x})[0], x + np.array([1, 2, 3], np.float32))  # default is back


def test_initializer_input_dtype_conflict():
    m = ir3_model()
    m.graph.input[1].type.tensor_type.elem_type = T.INT64
    with pytest.raises(DTypeError, match="graph input 'b' is declared int64 but its initializer holds float32"):
        from_onnx(m)


# --- export -------------------------------------------------------------------------------------
def signature(g):
    """Structure of a graph as plain data, for exact comparison."""
    def attr(v):
        return ("array", v.dtype.str, v.shape, v.tolist()) if isinstance(v, np.ndarray) else v
    return {
        "inputs": [(v.name, v.type) for v in g.inputs],
        "outputs": [v.name for v in g.outputs],
        "inits": {k: (v.const_value.dtype.str, v.const_value.tolist()) for k, v in g.initializers.items()},
        "nodes": [(n.name, n.op_type, n.domain, [v and v.name for v in n.inputs], [v and v.name for v in n.outputs],
                   {k: attr(a) for k, a in n.attrs.items()}) for n in g],
        "opsets": g.opset_imports,
    }


MODELS = {"mlp": (mlp, (5, 4)), "convnet": (convnet, (2, 3, 8, 8)), "ir3": (ir3_model, (2, 3)),
          "constant_chain": (constant_chain, (3, 6)), "clip": (clip_model, (2, 3)), "pool": (pool_model, (1, 2, 4, 4))}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_passes_the_full_checker_and_round_trips(name):
    build, shape = MODELS[name]
    m = build()
    g1 = from_onnx(m)
    g1.infer_types()  # the checker wants a shape on every graph output
    exported = to_onnx(g1)
    onnx.checker.check_model(exported, full_check=True)
    g2 = from_onnx(exported)
    assert signature(g2) == signature(g1)
    assert signature(from_onnx(to_onnx(g2))) == signature(g1)
    x = random_tensor(shape, seed=7)
    want = ort_run(m, {"x": x})[0]
    assert_close(ort_run(exported, {"x": x})[0], want)
    assert_close(InferenceSession(exported).run(None, {"x": x})[0], want)


def test_export_writes_inferred_output_types_and_omitted_inputs():
    m = model([h.make_node("Clip", ["x", "", "hi"], ["y"], name="clip")], X2, Y,
              {"hi": np.array(0.5, np.float32)}, opset=13)
    g = from_onnx(m)
    g.infer_types()
    e = to_onnx(g)
    onnx.checker.check_model(e, full_check=True)
    assert list(e.graph.node[0].input) == ["x", "", "hi"]
    dims = [d.dim_value for d in e.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [2, 3]


@pytest.mark.parametrize("attrs", [{}, {"value": numpy_helper.from_array(np.array([7], np.int32))},
                                   {"value": numpy_helper.from_array(np.array([0.25], np.float64))}])
def test_constant_of_shape_from_a_runtime_shape(attrs):
    nodes = [h.make_node("Shape", ["x"], ["s"], name="shape"),
             h.make_node("ConstantOfShape", ["s"], ["y"], name="fill", **attrs)]
    m = model(nodes, [("x", T.FLOAT, ["N", 3])], [("y", T.UNDEFINED, None)])
    m.graph.output[0].ClearField("type")
    s = InferenceSession(m)
    for n in (1, 4):
        x = random_tensor((n, 3))
        got, want = s.run(None, {"x": x})[0], ort_run(m, {"x": x})[0]
        assert got.dtype == want.dtype and got.shape == want.shape == (n, 3) and np.array_equal(got, want)
