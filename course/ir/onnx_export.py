"""IR -> ONNX: ``to_onnx(graph)`` writes a ModelProto that ``onnx.checker`` accepts (full check).

Attribute types are read back from the Python values the importer made (int -> INT, float ->
FLOAT, str -> STRING, ndarray -> TENSOR, lists -> the plural forms; an empty list is written as
INTS). Intermediate value types are not written: they are derived data, and ONNX re-infers them.
The checker wants a shape on every graph input and output: run ``graph.infer_types()`` first.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import onnx
from onnx import AttributeProto, ModelProto, helper, numpy_helper

from course.ir import dtypes
from course.ir.graph import Graph, Node, Value
from course.ir.types import TensorType


def to_onnx(graph: Graph, producer_name: str = "inference-engines-course") -> ModelProto:
    nodes = [_node(n) for n in graph.nodes]
    g = helper.make_graph(
        nodes, graph.name,
        inputs=[_value_info(v) for v in graph.inputs],
        outputs=[_value_info(v) for v in graph.outputs],
        initializer=[numpy_helper.from_array(v.const_value, v.name) for v in graph.initializers.values()],
    )
    opsets = [helper.make_opsetid(d, v) for d, v in sorted(graph.opset_imports.items())]
    ir_version = graph.ir_version or helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    return helper.make_model(g, opset_imports=opsets, ir_version=ir_version, producer_name=producer_name)


def _node(n: Node) -> onnx.NodeProto:
    proto = helper.make_node(
        n.op_type,
        ["" if v is None else v.name for v in n.inputs],
        ["" if v is None else v.name for v in n.outputs],
        name=n.name, domain=n.domain or None,
    )
    proto.attribute.extend(to_attribute(k, v) for k, v in sorted(n.attrs.items()))
    return proto


def _value_info(v: Value) -> onnx.ValueInfoProto:
    t: Optional[TensorType] = v.type
    if t is None:
        return onnx.ValueInfoProto(name=v.name)
    shape = None if t.shape is None else list(t.shape)
    return helper.make_tensor_value_info(v.name, dtypes.to_onnx(t.dtype), shape)


def to_attribute(name: str, value: Any) -> AttributeProto:
    """One attribute, its ONNX type chosen from the Python type of ``value``."""
    T = AttributeProto
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(value), attr_type=T.TENSOR)
    if isinstance(value, (bool, int, np.integer)):
        return helper.make_attribute(name, int(value), attr_type=T.INT)
    if isinstance(value, (float, np.floating)):
        return helper.make_attribute(name, float(value), attr_type=T.FLOAT)
    if isinstance(value, str):
        return helper.make_attribute(name, value, attr_type=T.STRING)
    items = list(value)
    if items and all(isinstance(x, np.ndarray) for x in items):
        return helper.make_attribute(name, [numpy_helper.from_array(x) for x in items], attr_type=T.TENSORS)
    if items and all(isinstance(x, str) for x in items):
        return helper.make_attribute(name, items, attr_type=T.STRINGS)
    if any(isinstance(x, (float, np.floating)) for x in items):
        return helper.make_attribute(name, [float(x) for x in items], attr_type=T.FLOATS)
    return helper.make_attribute(name, [int(x) for x in items], attr_type=T.INTS)
