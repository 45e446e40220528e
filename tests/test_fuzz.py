"""Fuzz: mutated ONNX models must fail (if at all) with an EngineError, never anything else.

Valid models are corrupted by hypothesis (inputs dropped, nodes shuffled, shapes / attributes /
dtypes corrupted, initializers deleted or damaged, values renamed, bytes truncated, op types
swapped), then a session is built and run on feeds that match whatever the session declares.
"""
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from onnx import TensorProto as T, helper as h

from course import InferenceSession
from course.errors import EngineError
from course.ir.dtypes import to_numpy
from ir_builders import clip_model, constant_chain, convnet, ir3_model, mlp, pool_model


BASES = [mlp, convnet, constant_chain, ir3_model, clip_model, pool_model]
OP_TYPES = ["Relu", "Add", "Conv", "Reshape", "Softmax", "Gemm", "MatMul", "Concat", "Nope", "Shape", "Split"]
NAMES = st.sampled_from(["x", "y", "w1", "h0", "shape", "s", "zzz", "", "hi", "a"])
INTS = st.one_of(st.integers(-3, 6), st.sampled_from([2**31, -(2**40), 10**6]))


def _nodes(m):
    return m.graph.node


def m_drop_input(m, data):
    if _nodes(m):
        n = data.draw(st.sampled_from(list(_nodes(m))))
        if n.input:
            i = data.draw(st.integers(0, len(n.input) - 1))
            if data.draw(st.booleans()):
                del n.input[i]
            else:
                n.input[i] = ""


def m_shuffle(m, data):
    nodes = list(_nodes(m))
    order = data.draw(st.permutations(range(len(nodes))))
    copies = [onnx.NodeProto.FromString(nodes[i].SerializeToString()) for i in order]
    del m.graph.node[:]
    m.graph.node.extend(copies)


def m_shape(m, data):
    vis = list(m.graph.input) + list(m.graph.output)
    vi = data.draw(st.sampled_from(vis))
    dims = vi.type.tensor_type.shape.dim
    choice = data.draw(st.integers(0, 3))
    if choice == 0 and dims:
        d = dims[data.draw(st.integers(0, len(dims) - 1))]
        d.dim_value = data.draw(st.integers(-2, 9))
    elif choice == 1 and dims:
        dims[data.draw(st.integers(0, len(dims) - 1))].dim_param = data.draw(st.sampled_from(["N", "M", "q"]))
    elif choice == 2:
        dims.add().dim_value = data.draw(st.integers(0, 4))
    elif dims:
        del dims[-1]


def m_attr(m, data):
    if not _nodes(m):
        return
    n = data.draw(st.sampled_from(list(_nodes(m))))
    choice = data.draw(st.integers(0, 3))
    if choice == 0 or not n.attribute:
        value = data.draw(st.one_of(INTS, st.floats(-2, 2), st.lists(INTS, max_size=5), st.text(max_size=3)))
        n.attribute.append(h.make_attribute(data.draw(st.sampled_from(["axis", "perm", "alpha", "pads", "junk"])),
                                            value, attr_type=None if value != [] else onnx.AttributeProto.INTS))
    else:
        a = n.attribute[data.draw(st.integers(0, len(n.attribute) - 1))]
        if choice == 1:
            n.attribute.remove(a)
        elif a.type == onnx.AttributeProto.INTS:
            a.ints[:] = data.draw(st.lists(INTS, max_size=5))
        elif a.type == onnx.AttributeProto.INT:
            a.i = data.draw(INTS)
        else:
            a.type = data.draw(st.sampled_from([onnx.AttributeProto.INT, onnx.AttributeProto.STRING, 0]))


def m_dtype(m, data):
    targets = [vi.type.tensor_type for vi in list(m.graph.input) + list(m.graph.output)] + list(m.graph.initializer)
    t = data.draw(st.sampled_from(targets))
    code = data.draw(st.integers(0, 26))
    if isinstance(t, onnx.TensorProto):
        t.data_type = code
    else:
        t.elem_type = code


def m_delete_init(m, data):
    if m.graph.initializer:
        del m.graph.initializer[data.draw(st.integers(0, len(m.graph.initializer) - 1))]


def m_damage_init(m, data):
    if m.graph.initializer:
        t = m.graph.initializer[data.draw(st.integers(0, len(m.graph.initializer) - 1))]
        t.dims[:] = data.draw(st.lists(st.integers(0, 5), max_size=3))


def m_rename(m, data):
    if _nodes(m):
        n = data.draw(st.sampled_from(list(_nodes(m))))
        seq = n.output if data.draw(st.booleans()) or not n.input else n.input
        if seq:
            seq[data.draw(st.integers(0, len(seq) - 1))] = data.draw(NAMES)


def m_op_type(m, data):
    if _nodes(m):
        data.draw(st.sampled_from(list(_nodes(m)))).op_type = data.draw(st.sampled_from(OP_TYPES))


def m_opset(m, data):
    m.opset_import[0].version = data.draw(st.sampled_from([1, 6, 7, 9, 11, 13, 18, 23, 30]))


def m_duplicate_node(m, data):
    if _nodes(m):
        m.graph.node.append(data.draw(st.sampled_from(list(_nodes(m)))))


MUTATIONS = [m_drop_input, m_shuffle, m_shape, m_attr, m_dtype, m_delete_init, m_damage_init, m_rename,
             m_op_type, m_opset, m_duplicate_node]


def feeds_for(sess):
    """Feeds matching the session's declared inputs (symbolic dims 2, unknown dims 1)."""
    feeds = {}
    for arg in sess.get_inputs():
        v = sess.graph.inputs[[i.name for i in sess.graph.inputs].index(arg.name)]
        shape = tuple(2 if isinstance(d, str) else 1 if d is None else d for d in (arg.shape or []))
        if int(np.prod(shape, dtype=np.int64)) > 10**5:
            return None
        dtype = v.type.dtype
        feeds[arg.name] = (np.ones(shape, dtype) if dtype != object else np.full(shape, "a", dtype=object))
    return feeds


@settings(max_examples=500, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data(), base=st.sampled_from(BASES), mutations=st.lists(st.sampled_from(MUTATIONS), min_size=1,
                                                                          max_size=3))
def test_mutated_models_raise_only_engine_errors(data, base, mutations):
    m = base()
    for mutate in mutations:
        mutate(m, data)
    src = m.SerializeToString()
    if data.draw(st.integers(0, 7)) == 0:  # truncated bytes
        src = src[: data.draw(st.integers(0, len(src)))]
    try:
        sess = InferenceSession(src)
        feeds = feeds_for(sess)
        if feeds is not None:
            sess.run(None, feeds)
    except EngineError:
        pass


@pytest.mark.parametrize("base", BASES, ids=lambda b: b.__name__)
def test_unmutated_bases_run(base):
    """The fuzz starts from models that work: otherwise it would only ever test one error path."""
    sess = InferenceSession(base())
    out = sess.run(None, feeds_for(sess))
    assert all(isinstance(o, np.ndarray) for o in out)


def test_dtype_table_rejects_what_it_does_not_know():
    with pytest.raises(EngineError, match="BFLOAT16"):
        to_numpy(T.BFLOAT16, "x")
