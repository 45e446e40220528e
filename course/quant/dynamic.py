"""Dynamic quantization: int8 weights stored once, activations quantized per batch at run time.

For MatMul / Gemm with constant weights (the bulk of an MLP or a transformer), no calibration:

    xq, x_scale, x_zp = DynamicQuantizeLinear(x)       # uint8, range of this very batch
    acc = MatMulInteger(xq, wq, x_zp, w_zp)             # exact int32
    y   = Cast(acc, float) * (x_scale * w_scale) [+ bias]

The weight is symmetric int8 (per tensor, or per output column with ``per_channel``); a Gemm's B
is stored transposed to [K, N] when transB=1. ``DynamicQuantizeLinear`` is the reference op of
``course/ops/quant_dynamic.py``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import onnx

from course.ir.graph import Graph, Node, Value
from course.ir.onnx_export import to_onnx
from course.passes.base import Namer, constant, drop_unused_initializers, take_over
from course.quant.observe import load_graph
from course.quant.params import quantize
from course.quant.static import config_from


def _plain_product(graph: Graph, n: Node) -> bool:
    if n.op_type not in ("MatMul", "Gemm") or n.domain or len(n.inputs) < 2:
        return False
    w = constant(graph, n.inputs[1])
    if w is None or w.dtype != np.float32 or (n.op_type == "MatMul" and w.ndim != 2):
        return False
    return n.op_type == "MatMul" or (not n.attrs.get("transA", 0) and n.attrs.get("alpha", 1.0) == 1.0
                                     and n.attrs.get("beta", 1.0) == 1.0)


def quantize_dynamic(model_input, model_output, op_types_to_quantize: Optional[Sequence[str]] = None,
                     per_channel: bool = False, reduce_range: bool = False, weight_type="QInt8",
                     nodes_to_quantize: Optional[Sequence[str]] = None,
                     nodes_to_exclude: Optional[Sequence[str]] = None, use_external_data_format: bool = False,
                     extra_options: Optional[dict] = None) -> onnx.ModelProto:
    """onnxruntime's ``quantize_dynamic``: writes ``model_output`` (a path; None: nothing) and
    returns the ModelProto."""
    config = config_from(per_channel, reduce_range, "QUInt8", weight_type, op_types_to_quantize or ("MatMul", "Gemm"),
                         nodes_to_quantize, nodes_to_exclude, extra_options)
    graph = load_graph(model_input)
    namer, quantized = Namer(graph), {}
    for node in [n for n in graph.nodes if config.selects(n) and _plain_product(graph, n)]:
        _rewrite(graph, node, config, namer, quantized)
    graph.infer_types()
    graph.verify()
    model = to_onnx(graph)
    if model_output is not None:
        onnx.save_model(model, str(model_output), save_as_external_data=use_external_data_format)
    return model


def _rewrite(graph: Graph, node: Node, config, namer: Namer, quantized: dict) -> None:
    x, y = node.inputs[0], node.outputs[0]
    w = node.inputs[1].const_value
    if node.op_type == "Gemm" and node.attrs.get("transB", 0):
        w = np.ascontiguousarray(w.T)
    params = config.weight_params(w, 1)
    wq = graph.add_initializer(namer(f"{node.inputs[1].name}_quantized"), quantize(w, params))
    ws = graph.add_initializer(namer(f"{node.inputs[1].name}_scale"), params.scale)
    wz = graph.add_initializer(namer(f"{node.inputs[1].name}_zero_point"), np.zeros((), params.dtype)
                               if not params.zero_point.any() else params.zero_point)
    new = []
    if x.name not in quantized:
        dql = Node("DynamicQuantizeLinear", [x], [Value(namer(f"{x.name}_{s}")) for s in ("quantized", "scale", "zero_point")],
                   name=namer(f"{x.name}_DynamicQuantizeLinear"))
        quantized[x.name] = dql.outputs
        new.append(dql)
    xq, xs, xz = quantized[x.name]
    acc = Node("MatMulInteger", [xq, wq, xz, wz], [Value(namer(f"{y.name}_acc"))], name=namer(f"{node.name}_integer"))
    accf = Node("Cast", [acc.outputs[0]], [Value(namer(f"{y.name}_acc_float"))], {"to": onnx.TensorProto.FLOAT},
                name=namer(f"{node.name}_cast"))
    scale = Node("Mul", [xs, ws], [Value(namer(f"{y.name}_scale"))], name=namer(f"{node.name}_scale"))
    out = Node("Mul", [accf.outputs[0], scale.outputs[0]], [Value(namer(f"{y.name}_dequantized"))],
               name=namer(f"{node.name}_rescale"))
    new += [acc, accf, scale, out]
    if node.op_type == "Gemm" and len(node.inputs) > 2 and node.inputs[2] is not None:
        new.append(Node("Add", [out.outputs[0], node.inputs[2]], [Value(namer(f"{y.name}_biased"))],
                        name=namer(f"{node.name}_bias")))
    graph.insert_before(node, new)
    take_over(graph, y, new[-1].outputs[0])
    graph.remove(node)
    drop_unused_initializers(graph, node.inputs[1:2])
