"""Inserting QuantizeLinear/DequantizeLinear into a float graph (the QDQ format).

A quantized tensor t gets one pair, Q then DQ, placed right after t is made, and every node that
read t reads DQ's output instead: downstream float ops see exactly the values the integer
engine will hold. A quantized weight is stored as an integer initializer read by one DQ (no Q at
run time). Graph outputs keep their float value and name.
"""
from __future__ import annotations

from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.ir.types import TensorType
from course.passes.base import Namer
from course.quant.params import QuantParams, quantize

# Ops that only move or select values: their output has the input's scale and zero point, so a
# tensor they make shares the quantization of the tensor they read (max(Q(x)) = Q(max(x))).
PASSTHROUGH = frozenset({"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"})


def _param_values(graph: Graph, name: str, params: QuantParams, namer: Namer) -> tuple[Value, Value, dict]:
    s = graph.add_initializer(namer(f"{name}_scale"), params.scale)
    z = graph.add_initializer(namer(f"{name}_zero_point"), params.zero_point)
    return s, z, ({} if params.axis is None else {"axis": int(params.axis)})


def dq_params(dq: Node) -> QuantParams:
    """The parameters a DequantizeLinear node reads (constant scale and zero point)."""
    scale, zp = dq.inputs[1].const_value, dq.inputs[2].const_value
    axis = dq.attrs.get("axis", 1) if scale.size > 1 else None
    return QuantParams(scale, zp, axis)


def quantized_source(v: Optional[Value]) -> Optional[Node]:
    """The DequantizeLinear that makes ``v``, if any."""
    p = None if v is None else v.producer()
    return p if p is not None and p.op_type == "DequantizeLinear" else None


def shared_params(v: Value) -> Optional[QuantParams]:
    """The parameters of the quantized tensor a PASSTHROUGH op turned into ``v`` (None if none)."""
    p = v.producer()
    while p is not None and p.op_type in PASSTHROUGH:
        dq = quantized_source(p.inputs[0])
        if dq is not None:
            return dq_params(dq)
        p = p.inputs[0].producer()
    return None


def quantize_activation(graph: Graph, v: Value, params: QuantParams, namer: Namer) -> Value:
    """Insert Q -> DQ after ``v`` and make every reader of ``v`` read the DQ output."""
    s, z, attrs = _param_values(graph, v.name, params, namer)
    q = Node("QuantizeLinear", [v, s, z], [Value(namer(f"{v.name}_quantized"))], attrs,
             name=namer(f"{v.name}_QuantizeLinear"))
    dq = Node("DequantizeLinear", [q.outputs[0], s, z], [Value(namer(f"{v.name}_dequantized"))], attrs,
              name=namer(f"{v.name}_DequantizeLinear"))
    q.outputs[0].type = TensorType(params.dtype, v.type.shape if v.type else None)
    dq.outputs[0].type = v.type
    readers = v.uses()
    producer = v.producer()
    if producer is not None:
        graph.insert_after(producer, [q, dq])
    else:
        graph.insert_before(graph.nodes[0], [q, dq])
    for node, i in readers:
        node.set_input(i, dq.outputs[0])
    return dq.outputs[0]


def quantize_constant(graph: Graph, node: Node, index: int, params: QuantParams, namer: Namer) -> Value:
    """Store input ``index`` of ``node`` (a float constant) as integers read through one DQ."""
    w = node.inputs[index]
    data = quantize(w.const_value, params)
    qw = graph.add_initializer(namer(f"{w.name}_quantized"), data)
    s, z, attrs = _param_values(graph, w.name, params, namer)
    dq = Node("DequantizeLinear", [qw, s, z], [Value(namer(f"{w.name}_dequantized"), w.type)], attrs,
              name=namer(f"{w.name}_DequantizeLinear"))
    graph.insert_before(node, dq)
    node.set_input(index, dq.outputs[0])
    if not w.uses() and graph.initializers.get(w.name) is w and not any(x is w for x in graph.inputs):
        del graph.initializers[w.name]
    return dq.outputs[0]

