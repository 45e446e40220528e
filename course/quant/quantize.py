"""Static quantization: calibrate a float model, then write it with int8 weights and activations.

``quantize_static`` has onnxruntime.quantization's signature and meanings. What it does:

1. prepare: fold each BatchNormalization into the Conv before it. Quantizing the Conv's weights
   per channel and then scaling channels by BN afterwards (as a quantizer that leaves BN alone
   does) quantizes the wrong weights: the folded W * gamma / sigma is what the int8 kernel runs.
2. calibrate the prepared graph over the reader (``course.quant.calibrate``).
3. insert Q/DQ (``course.quant.qdq``) around every Conv, Gemm and MatMul: activations asymmetric
   uint8 (or int8), weights symmetric int8 per tensor or per output channel -- axis 0 of a Conv's
   W and of a Gemm's B when transB=1, the last axis of a MatMul's B or a Gemm's B when transB=0 --
   and the bias as int32 with scale x_scale * w_scale. A Relu right after the op is quantized at
   its output (range [0, max], zero point at qmin), where QDQ -> integer passes absorb it.
4. QOperator: the QDQ pairs become integer ops (``course.passes.qdq_to_integer``).

Graph outputs stay float (the last op's int32 accumulator is dequantized, not requantized).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from course.ir.graph import Graph, Node, Value
from course.passes.base import Namer, PassManager, constant
from course.passes.fold_batchnorm import FoldBatchNorm
from course.quant.calibrate import TensorRange
from course.quant.params import QuantParams, bias_params, compute_params, tensor_params
from course.quant.qdq import dq_params, quantize_activation, quantize_constant, quantized_source, shared_params
from course.quant.types import QuantType

QUANTIZABLE = ("Conv", "Gemm", "MatMul")


@dataclass
class QuantConfig:
    """What to quantize and how (the options of ``quantize_static`` in one place)."""

    activation_type: QuantType = QuantType.QUInt8
    weight_type: QuantType = QuantType.QInt8
    per_channel: bool = False
    reduce_range: bool = False
    activation_symmetric: bool = False
    weight_symmetric: Optional[bool] = None  # None: symmetric for int8 weights (onnxruntime's default)
    op_types: tuple = QUANTIZABLE
    nodes_to_quantize: Optional[set] = None
    nodes_to_exclude: set = field(default_factory=set)

    def selects(self, node: Node) -> bool:
        if node.op_type not in self.op_types or node.domain or node.name in self.nodes_to_exclude:
            return False
        return self.nodes_to_quantize is None or node.name in self.nodes_to_quantize

    def weight_params(self, w, axis: Optional[int]) -> QuantParams:
        sym = self.weight_type is QuantType.QInt8 if self.weight_symmetric is None else self.weight_symmetric
        return tensor_params(w, self.weight_type, sym, self.reduce_range, axis if self.per_channel else None)

    def activation_params(self, r: TensorRange) -> QuantParams:
        return compute_params(r.rmin, r.rmax, self.activation_type, self.activation_symmetric)


def prepare(graph: Graph) -> Graph:
    """Fold BatchNormalization into the Conv before it (in place) and refresh types."""
    graph = PassManager([FoldBatchNorm()]).run(graph).graph
    graph.infer_types()
    return graph


def weight_axis(node: Node, w) -> int:
    """The output-channel axis of a node's weight: what per-channel quantization runs along."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        return 0 if node.attrs.get("transB", 0) else 1
    return w.ndim - 1  # MatMul: B is [..., K, N]


def quantize_graph(graph: Graph, ranges: dict[str, TensorRange], config: QuantConfig) -> Graph:
    """Insert Q/DQ into a prepared graph (in place) for the nodes ``config`` selects."""
    namer = Namer(graph)
    for node in [n for n in graph.nodes if config.selects(n) and _weight(graph, n) is not None]:
        x_params = _quantize_inputs(graph, node, ranges, config, namer)
        if x_params is None:
            continue
        _quantize_output(graph, node, ranges, config, namer)
    graph.infer_types()
    return graph


def _weight(graph: Graph, node: Node):
    return constant(graph, node.inputs[1]) if len(node.inputs) > 1 else None


def _quantize_inputs(graph, node, ranges, config, namer) -> Optional[QuantParams]:
    """Quantize the activation, weight and bias of ``node``; the activation's params, or None
    (nothing done) when the activation has no calibrated range."""
    w = node.inputs[1].const_value
    if w.dtype.kind != "f":
        return None
    x_params = _activation(graph, node.inputs[0], ranges, config, namer)
    if x_params is None:
        return None
    w_params = config.weight_params(w, weight_axis(node, w))
    quantize_constant(graph, node, 1, w_params, namer)
    b = constant(graph, node.inputs[2]) if len(node.inputs) > 2 else None
    n_out = w.shape[weight_axis(node, w)]
    if b is not None and b.shape == (n_out,) and b.dtype.kind == "f":
        quantize_constant(graph, node, 2, bias_params(x_params.scale, w_params), namer)
    return x_params


def _activation(graph, x: Value, ranges, config, namer) -> Optional[QuantParams]:
    """The params of activation ``x``, quantizing it first if it is not quantized yet."""
    dq = quantized_source(x)
    if dq is not None:
        return dq_params(dq)
    params = shared_params(x)
    if params is None:
        if x.name not in ranges:
            return None
        params = config.activation_params(ranges[x.name])
    quantize_activation(graph, x, params, namer)
    return params


def _quantize_output(graph, node, ranges, config, namer) -> None:
    """Quantize what ``node`` makes (after a Relu that alone reads it), unless a graph output."""
    y = node.outputs[0]
    uses = y.uses()
    if len(uses) == 1 and uses[0][0].op_type == "Relu" and not any(o is y for o in graph.outputs):
        y = uses[0][0].outputs[0]
    if any(o is y for o in graph.outputs) or y.name not in ranges or not y.uses():
        return
    quantize_activation(graph, y, config.activation_params(ranges[y.name]), namer)


def tensors_to_calibrate(graph: Graph, config: QuantConfig) -> list[str]:
    """The activations quantize_graph may need ranges for: inputs and outputs of selected nodes."""
    names = []
    for n in graph.nodes:
        if config.selects(n) and _weight(graph, n) is not None:
            names.append(n.inputs[0].name)
            y = n.outputs[0]
            names.append(y.name)
            names += [u.outputs[0].name for u, _ in y.uses() if u.op_type == "Relu"]
    return list(dict.fromkeys(names))


def selected_nodes(graph: Graph, config: QuantConfig) -> list[str]:
    """Names of the nodes ``config`` would quantize in ``graph`` (for sensitivity analysis)."""
    return [n.name for n in graph.nodes if config.selects(n) and _weight(graph, n) is not None]
