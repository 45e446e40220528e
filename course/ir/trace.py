"""Trace a ``Module`` into a static graph: run ``forward`` once and record every op it calls.

Every forward in ``course.module`` is made of ``F.call(op_type, *inputs, **attrs)`` calls, and
inside ``with F.intercept(handler):`` each call goes to ``handler`` instead. The tracer's handler
runs the real kernel (so the forward sees real arrays and its Python control flow, loops and
``if``s on shapes, runs normally) and appends one node per call. What comes out is static: a loop
of ``T`` iterations becomes ``T`` copies of its body (dynamic Python → static graph).

Arrays are matched to graph values by their memory (data address, shape, strides, dtype), not by
Python identity: ``F.call`` hands the handler fresh ``ndarray`` views of parameters and of earlier
results. The tracer keeps every array it has seen alive, so no address is reused during a trace.
An array the tracer has not seen becomes an initializer: parameters and buffers under their
dotted names (one initializer per parameter, however often it is used), anything else as
``const_<k>``. That is also the classic trap of tracing: numpy maths done *outside* ``F`` on a
traced value is frozen into a constant. ``check=True`` catches it (and a batch size baked into
the graph) by running the graph on a fresh input and comparing with the eager forward.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from course.errors import ModelError
from course.ir.graph import Graph
from course.ir.onnx_import import from_onnx
from course.module import F, Module

BATCH = "N"


class TraceError(ModelError):
    """The forward cannot be captured as a static graph (or the captured graph does not generalise)."""


def memory_key(a: np.ndarray) -> tuple:
    """What identifies an array across fresh views of it: address, shape, strides, dtype."""
    return (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)


def _attribute(value: Any) -> Any:
    return numpy_helper.from_array(value) if isinstance(value, np.ndarray) else value


class Tracer:
    """Records op calls as ONNX nodes; ``handle`` is the ``F.intercept`` handler."""

    def __init__(self, module: Module):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.names: dict[tuple, str] = {}  # memory key -> value name
        self.keep: list[np.ndarray] = []  # keeps addresses from being reused during the trace
        self.opset = F.OPSET
        self._param_names = {}
        for name, p in [*module.named_parameters(), *module.named_buffers()]:
            arr = np.asarray(p).view(np.ndarray)
            self._param_names.setdefault(memory_key(arr), name)
            self.keep.append(arr)

    def bind(self, array: np.ndarray, name: str) -> None:
        self.keep.append(array)
        self.names[memory_key(array)] = name

    def value_of(self, array: np.ndarray) -> str:
        """The value name of ``array``; an array never seen becomes an initializer."""
        key = memory_key(array)
        if key not in self.names:
            name = self._param_names.get(key) or f"const_{len(self.initializers)}"
            self.initializers[name] = np.array(array, copy=True)
            self.bind(array, name)
        return self.names[key]

    def handle(self, op_type: str, inputs: tuple, attrs: dict):
        names = ["" if a is None else self.value_of(a) for a in inputs]
        while names and names[-1] == "":  # trailing omitted optional inputs are simply left out
            names.pop()
        result = F.run_op(op_type, inputs, attrs)
        outs = result if isinstance(result, tuple) else (result,)
        node_name = f"{op_type}_{len(self.nodes)}"
        out_names = [f"{node_name}_out{i}" if len(outs) > 1 else node_name for i in range(len(outs))]
        attrs = {k: _attribute(v) for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, names, out_names, name=node_name, **attrs))
        for arr, name in zip(outs, out_names):
            self.bind(arr, name)
        return result


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def trace_onnx(module: Module, example_inputs, input_names: Optional[Sequence[str]] = None,
               output_names: Optional[Sequence[str]] = None, dynamic_batch: bool = True,
               check: bool = True) -> onnx.ModelProto:
    """Trace ``module`` on ``example_inputs`` into an ONNX model (opset ``F.OPSET``).

    With ``dynamic_batch`` the first dim of every input is the symbol ``"N"``. With ``check`` the
    model is run on a fresh input (batch + 2 when the batch is dynamic) and compared with the
    eager forward; a difference raises :class:`TraceError`.
    """
    xs = [np.asarray(x) for x in _as_tuple(example_inputs)]
    in_names = list(input_names or (["input"] if len(xs) == 1 else [f"input{i}" for i in range(len(xs))]))
    if len(in_names) != len(xs):
        raise TraceError(f"{len(xs)} example inputs but {len(in_names)} input names")
    tracer = Tracer(module)
    views = [x.view(np.ndarray) for x in xs]
    for v, name in zip(views, in_names):
        tracer.bind(v, name)
    with F.intercept(tracer.handle):
        outs = [np.asarray(o).view(np.ndarray) for o in _as_tuple(module(*views))]
    model = _build(tracer, xs, in_names, outs, output_names, dynamic_batch)
    if check:
        _check(model, module, xs, dynamic_batch)
    return model


def trace(module: Module, example_inputs, input_names: Optional[Sequence[str]] = None,
          dynamic_batch: bool = True, output_names: Optional[Sequence[str]] = None,
          check: bool = True) -> Graph:
    """Trace ``module`` into the engine's IR: a verified ``Graph`` with types inferred."""
    graph = from_onnx(trace_onnx(module, example_inputs, input_names, output_names, dynamic_batch, check))
    graph.infer_types()
    return graph


def _build(tracer: Tracer, xs, in_names, outs, output_names, dynamic_batch) -> onnx.ModelProto:
    out_names = list(output_names or (["output"] if len(outs) == 1 else [f"output{i}" for i in range(len(outs))]))
    if len(out_names) != len(outs):
        raise TraceError(f"the forward returned {len(outs)} outputs but {len(out_names)} output names were given")
    nodes = list(tracer.nodes)
    rename: dict[str, str] = {}
    for arr, name in zip(outs, out_names):
        got = tracer.names.get(memory_key(arr))
        if got is None or got in tracer.initializers:
            raise TraceError(f"output {name!r} does not come from an op of course.module.F "
                             "(computed with numpy outside F, or a constant)")
        if got in in_names or got in rename:  # an input returned as is, or one value returned twice
            nodes.append(helper.make_node("Identity", [got], [name], name=f"Identity_{name}"))
        else:
            rename[got] = name
    for n in nodes:
        n.input[:] = [rename.get(v, v) for v in n.input]
        n.output[:] = [rename.get(v, v) for v in n.output]

    def info(name, arr, batch_dim):
        shape = list(arr.shape)
        if batch_dim and shape:
            shape[0] = BATCH
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), shape)

    inputs = [info(n, x, dynamic_batch) for n, x in zip(in_names, xs)]
    outputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(o.dtype), None)
               for n, o in zip(out_names, outs)]
    inits = [numpy_helper.from_array(a, name) for name, a in tracer.initializers.items()]
    graph = helper.make_graph(nodes, "traced", inputs, outputs, inits)
    model = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", tracer.opset)],
                                          producer_name="course.ir.trace")
    _type_outputs(model)
    return model


def _type_outputs(model: onnx.ModelProto) -> None:
    """Give graph outputs the shapes the engine's inference finds (symbolic batch included)."""
    ir = from_onnx(model)
    ir.infer_types()
    for vi, v in zip(model.graph.output, ir.outputs):
        shape = None if v.type is None or v.type.shape is None else list(v.type.shape)
        vi.CopyFrom(helper.make_tensor_value_info(vi.name, vi.type.tensor_type.elem_type, shape))


def run_onnx(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    """Evaluate a traced model node by node with the engine's kernels (nodes are in order)."""
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env.update(feeds)
    for n in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        attrs = {k: numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v for k, v in attrs.items()}
        result = F.run_op(n.op_type, tuple(env[v] if v else None for v in n.input), attrs)
        for name, arr in zip(n.output, result if isinstance(result, tuple) else (result,)):
            env[name] = arr
    return [env[o.name] for o in model.graph.output]


def _fresh_like(x: np.ndarray, batch: Optional[int], seed: int) -> np.ndarray:
    shape = list(x.shape)
    if batch is not None and shape:
        shape[0] = batch
    rng = np.random.default_rng(seed)
    if x.dtype.kind in "iub":
        lo, hi = (int(x.min()), int(x.max()) + 1) if x.size else (0, 2)
        return rng.integers(lo, max(hi, lo + 1), size=shape).astype(x.dtype)
    scale = float(np.abs(x).max()) if x.size else 1.0
    return (rng.standard_normal(shape) * (scale or 1.0)).astype(x.dtype)


def _check(model: onnx.ModelProto, module: Module, xs, dynamic_batch: bool) -> None:
    batch = xs[0].shape[0] + 2 if dynamic_batch and xs[0].ndim else None
    fresh = [_fresh_like(x, batch, seed=1234 + i) for i, x in enumerate(xs)]
    expected = [np.asarray(o) for o in _as_tuple(module(*fresh))]
    where = f"at batch {batch}" if batch is not None else "on a fresh input"
    try:
        got = run_onnx(model, {i.name: x for i, x in zip(model.graph.input, fresh)})
    except Exception as e:  # noqa: BLE001 - any failure means the graph does not generalise
        raise TraceError(f"the traced graph fails {where}: {type(e).__name__}: {e}") from None
    for k, (g, e) in enumerate(zip(got, expected)):
        if g.shape != e.shape or not np.allclose(g, e, rtol=1e-4, atol=1e-5):
            raise TraceError(
                f"the traced graph disagrees with forward {where} on output {model.graph.output[k].name!r}: "
                "the forward computes with numpy outside course.module.F, branches on data, or bakes "
                "in the batch size")


__all__ = ["trace", "trace_onnx", "Tracer", "TraceError", "memory_key", "run_onnx", "BATCH"]
