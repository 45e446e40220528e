"""ONNX's own node tests, generated in memory by the pinned onnx package, run through the engine.

Selected: every case whose nodes are all in the engine's op set, minus element types the engine
does not implement (float8, 4/2-bit ints and floats, bfloat16, blocked quantization), non-tensor
values (sequences, optionals) and training-mode cases. At least 98% must pass; every remaining
failure is listed in XFAIL with its reason and is strict (a fix must remove it from the list).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, numpy_helper  # noqa: E402,F401
from onnx.backend.test.loader import load_node_model_tests  # noqa: E402

import course  # noqa: E402
from course.ops import supported_ops  # noqa: E402

T = TensorProto
UNSUPPORTED_TYPES = {
    T.BFLOAT16, T.FLOAT8E4M3FN, T.FLOAT8E4M3FNUZ, T.FLOAT8E5M2, T.FLOAT8E5M2FNUZ, T.UINT4, T.INT4,
    T.FLOAT4E2M1, T.COMPLEX64, T.COMPLEX128,
    *(getattr(T, n) for n in ("FLOAT8E8M0", "UINT2", "INT2") if hasattr(T, n)),
}

# name -> reason. strict: an xfail that starts passing fails the run until it is removed here.
XFAIL: dict[str, str] = {}


def _value_types_ok(vi) -> bool:
    t = vi.type
    return t.WhichOneof("value") == "tensor_type" and t.tensor_type.elem_type not in UNSUPPORTED_TYPES


def _attrs_ok(node) -> bool:
    for a in node.attribute:
        if a.name in ("to", "output_dtype") and a.i in UNSUPPORTED_TYPES:
            return False
        if a.name == "block_size" and a.i > 0:  # blocked quantization
            return False
        if a.name == "training_mode" and a.i:
            return False
        if a.type == onnx.AttributeProto.TENSOR and a.t.data_type in UNSUPPORTED_TYPES:
            return False
    return True


def selected(case) -> bool:
    g = case.model.graph
    ops = set(supported_ops())
    if "training" in case.name:  # Dropout/BatchNormalization in training mode
        return False
    if any(n.domain not in ("", "ai.onnx") or n.op_type not in ops or not _attrs_ok(n) for n in g.node):
        return False
    values = list(g.input) + list(g.output) + list(g.value_info)
    return all(_value_types_ok(v) for v in values) and all(
        i.data_type not in UNSUPPORTED_TYPES for i in g.initializer)


def _cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # onnx's generators warn about their own overflow casts
        cases = [c for c in load_node_model_tests() if selected(c)]
    return sorted(cases, key=lambda c: c.name)


CASES = _cases()


def _param(case):
    marks = [pytest.mark.xfail(reason=XFAIL[case.name], strict=True)] if case.name in XFAIL else []
    return pytest.param(case, id=case.name, marks=marks)


def test_selection_is_large_and_xfails_are_few():
    names = {c.name for c in CASES}
    assert len(CASES) >= 250, f"only {len(CASES)} conformance cases selected"
    assert set(XFAIL) <= names, f"XFAIL names cases that are not selected: {sorted(set(XFAIL) - names)}"
    assert len(XFAIL) <= 0.02 * len(CASES), f"{len(XFAIL)} xfails exceed 2% of {len(CASES)} cases"


def _array(v):
    return onnx.numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_node_case(case):
    sess = course.InferenceSession(case.model)
    out_names = [o.name for o in case.model.graph.output]
    in_names = [i.name for i in case.model.graph.input]
    for inputs, expected in case.data_sets:
        inputs, expected = [_array(v) for v in inputs], [_array(v) for v in expected]
        got = sess.run(None, dict(zip(in_names, inputs)))
        assert len(got) == len(expected)
        for name, g, e in zip(out_names, got, expected):
            g = np.asarray(g)
            assert g.dtype == e.dtype, f"{name}: dtype {g.dtype} != expected {e.dtype}"
            assert g.shape == e.shape, f"{name}: shape {g.shape} != expected {e.shape}"
            if e.dtype.kind in "fc":
                np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol, err_msg=name)
            else:
                np.testing.assert_array_equal(g, e, err_msg=name)
