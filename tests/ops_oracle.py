"""Test helper for tests/test_ops*.py: run one ONNX node three ways and compare.

``check(op, inputs, attrs, opset)`` builds a single-node model, runs it in onnxruntime (or in
onnx's ReferenceEvaluator with ``oracle="ref"``), runs the engine's kernel directly (registry
lookup -> resolve_attrs -> compute), and asserts equal outputs with per-dtype tolerances. It also
checks that the op's shape/dtype inference, given only the input types (and the constant inputs
listed in ``consts``), predicts exactly the shapes and dtypes the kernel produced.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import course.ops  # noqa: F401  (registers every op)
from course.ir.types import TensorType
from course.ops.base import InferContext
from course.ops.registry import lookup
from course.testing import assert_close

_SESSION_OPTIONS = ort.SessionOptions()
_SESSION_OPTIONS.intra_op_num_threads = 1
_SESSION_OPTIONS.log_severity_level = 3


def _tt(a):
    return helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype)


def make_model(op, inputs, attrs, opset, n_out=1, out_dtypes=None):
    """Single-node model; None inputs become omitted ('') optional inputs."""
    names = ["" if a is None else f"in{i}" for i, a in enumerate(inputs)]
    vis = [helper.make_tensor_value_info(n, _tt(a), np.asarray(a).shape) for n, a in zip(names, inputs) if a is not None]
    outs = [f"out{k}" for k in range(n_out)]
    dts = out_dtypes or [np.asarray(next(a for a in inputs if a is not None)).dtype] * n_out
    ovis = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(np.dtype(d)), None)
            for o, d in zip(outs, dts)]
    attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v for k, v in attrs.items()}
    node = helper.make_node(op, names, outs, **attrs)
    graph = helper.make_graph([node], "single", vis, ovis)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def oracle(op, inputs, attrs, opset, n_out=1, out_dtypes=None, which="ort"):
    model = make_model(op, inputs, attrs, opset, n_out, out_dtypes)
    feed = {f"in{i}": a for i, a in enumerate(inputs) if a is not None}
    if which == "ref":
        return ReferenceEvaluator(model).run(None, feed)
    sess = ort.InferenceSession(model.SerializeToString(), _SESSION_OPTIONS, providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def engine(op, inputs, attrs, opset, n_out=1):
    """The engine's kernel called as the runtime calls it."""
    kernel = lookup(op, opset)
    resolved = kernel.resolve_attrs(attrs)
    kw = dict(resolved)
    if kernel.wants_num_outputs:
        kw["_num_outputs"] = n_out
    while inputs and inputs[-1] is None:
        inputs = inputs[:-1]
    out = kernel.compute(*inputs, **kw)
    return list(out) if isinstance(out, tuple) else [out], kernel, resolved


def infer(op, inputs, attrs, opset, consts=(), n_out=1, shapes=None):
    """Types the op infers from input types; inputs listed in ``consts`` are given as constants."""
    kernel = lookup(op, opset)
    types = [None if a is None else TensorType(np.asarray(a).dtype, np.asarray(a).shape if shapes is None else shapes[i])
             for i, a in enumerate(inputs)]
    cvals = [np.asarray(a) if i in consts and a is not None else None for i, a in enumerate(inputs)]
    return kernel.infer(InferContext(types, cvals, kernel.resolve_attrs(attrs), num_outputs=n_out))


def sum_atol(k: int, dtype, bound: float) -> float:
    """How far apart two float computations of one sum of ``k`` terms may land when they add in
    different orders (BLAS block partitions and kernels differ between machines and libraries):
    each is within gamma_k * sum|terms| of the exact sum (Higham: gamma_k ~ k * u, u = eps / 2), so
    two of them differ by at most 2 * k * u * ``bound``, ``bound`` >= sum|terms|. Not bit-equality."""
    return 2 * k * (float(np.finfo(dtype).eps) / 2) * bound


def check(op, inputs, attrs=None, opset=17, consts=(), n_out=1, out_dtypes=None, which="ort",
          rtol=None, atol=None):
    attrs = attrs or {}
    want = oracle(op, inputs, attrs, opset, n_out, out_dtypes, which)
    got, _, _ = engine(op, list(inputs), attrs, opset, n_out)
    assert len(got) >= n_out, f"{op}: {len(got)} outputs, expected {n_out}"
    for k in range(n_out):
        assert_close(got[k], want[k], rtol=rtol, atol=atol, what=f"{op} output {k}")
    types = infer(op, inputs, attrs, opset, consts, n_out)
    for k in range(n_out):
        assert types[k] is not None, f"{op}: output {k} type not inferred"
        assert types[k].dtype == got[k].dtype, f"{op}: inferred dtype {types[k].dtype} != {got[k].dtype}"
        assert types[k].shape == got[k].shape, f"{op}: inferred shape {types[k].shape} != {got[k].shape}"
    return got
