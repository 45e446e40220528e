"""Whole-model float16: every float32 constant and tensor becomes float16.

Half the bytes of float32 for weights and activations, 11 significant bits (about 3 decimal
digits), range up to 65504. With ``keep_io_types`` the model still takes and returns float32:
a Cast to float16 follows each input and a Cast back to float32 precedes each output.
"""
from __future__ import annotations

import numpy as np
import onnx

from course.ir.graph import Graph, Node, Value
from course.ir.onnx_export import to_onnx
from course.ir.types import TensorType
from course.passes.base import Namer, take_over
from course.quant.observe import load_graph

FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


def _half(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a


def convert_float_to_float16(model, keep_io_types: bool = True) -> onnx.ModelProto:
    """A float16 copy of ``model`` (proto, path, bytes or Graph)."""
    graph = load_graph(model)
    namer = Namer(graph)
    for v in graph.initializers.values():
        v.const_value = _half(v.const_value)
        v.type = TensorType(v.const_value.dtype, v.const_value.shape)
    for n in graph.nodes:
        n.attrs = {k: _half(a) for k, a in n.attrs.items()}
        if n.op_type == "Cast" and n.attrs.get("to") == FLOAT:
            n.attrs["to"] = FLOAT16
    _convert_inputs(graph, keep_io_types, namer)
    _convert_outputs(graph, keep_io_types, namer)
    graph.infer_types()
    graph.verify()
    return to_onnx(graph)


def _convert_inputs(graph: Graph, keep_io_types: bool, namer: Namer) -> None:
    for v in graph.inputs:
        if v.type is None or v.type.dtype != np.float32 or graph.is_overridable(v):
            continue
        if not keep_io_types:
            v.type = TensorType(np.dtype(np.float16), v.type.shape)
            continue
        cast = Node("Cast", [v], [Value(namer(f"{v.name}_fp16"))], {"to": FLOAT16}, name=namer(f"{v.name}_to_fp16"))
        readers = v.uses()
        graph.insert_before(graph.nodes[0], cast)
        for node, i in readers:
            node.set_input(i, cast.outputs[0])


def _convert_outputs(graph: Graph, keep_io_types: bool, namer: Namer) -> None:
    for v in list(graph.outputs):
        if v.type is None or v.type.dtype != np.float32 or v.producer() is None:
            continue
        if not keep_io_types:
            v.type = None
            continue
        cast = Node("Cast", [v], [Value(namer(f"{v.name}_fp32"))], {"to": FLOAT}, name=namer(f"{v.name}_to_fp32"))
        graph.insert_after(v.producer(), cast)
        readers = v.uses()
        take_over(graph, v, cast.outputs[0])  # the Cast's output takes over the output's name
        v.name = namer(f"{cast.outputs[0].name}_fp16")
        for node, i in readers:  # the float16 value keeps feeding the Cast and the model's own nodes
            node.set_input(i, v)
