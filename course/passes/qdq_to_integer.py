"""``QDQToInteger``: Conv / MatMul / Gemm between Q/DQ pairs become integer ops.

In a QDQ model every input of a quantized op comes out of a DequantizeLinear, so the op's float
arithmetic only ever sees (q - zp) * scale. Pulled out of the sum, the scales multiply one exact
integer accumulation:

    y = sum_k (x_k - x_zp) * (w_k - w_zp) * x_scale * w_scale  (+ bias_int32 * x_scale * w_scale)

- requantized: y -> [Relu ->] QuantizeLinear(y_scale, y_zp) becomes
  ``QLinearConv`` / ``QLinearMatMul``: saturate(round(acc * x_scale * w_scale / y_scale) + y_zp).
  A Relu between the op and the Q is absorbed when y_zp is the integer type's minimum: then the
  saturation at qmin already clips every negative value to 0.
- float result: ``ConvInteger`` / ``MatMulInteger`` (+ Add of the int32 bias) -> DequantizeLinear
  of the int32 accumulator with scale x_scale * w_scale (the graph's logits stay float).
- data movement (MaxPool, Flatten, Reshape, ...) after a per-tensor DQ runs on the integers:
  move(DQ(q)) = DQ(move(q)) (dequantizing is monotone, so even max commutes with it), and then a
  Q with the DQ's own scale and zero point cancels it: Q(DQ(q)) = q.

The integer result agrees exactly with the integer definition (int32 accumulation, one float32
multiplier, round half to even, saturation); it may differ from the QDQ float graph by one unit
(LSB) where the float sums round the other way.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from course.ir.graph import Graph, Node, Value
from course.ir.types import TensorType
from course.passes.base import Namer, Pass, PassResult, constant, drop_unused_initializers, forward, \
    infer_quietly, only_reader, take_over

MOVES = frozenset({"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"})
TARGETS = ("Conv", "MatMul", "Gemm")


def _dq(graph: Graph, v: Optional[Value], const: bool = False) -> Optional[Node]:
    """The DequantizeLinear making ``v``, with constant scale/zero point (and constant data if
    ``const``); None otherwise."""
    p = None if v is None else v.producer()
    if p is None or p.op_type != "DequantizeLinear" or p.domain or constant(graph, p.inputs[1]) is None:
        return None
    zp = p.inputs[2] if len(p.inputs) > 2 else None
    if zp is not None and constant(graph, zp) is None:
        return None
    if const and constant(graph, p.inputs[0]) is None:
        return None
    return p


def _params(node: Node) -> tuple[np.ndarray, Optional[np.ndarray]]:
    zp = node.inputs[2] if len(node.inputs) > 2 else None
    return node.inputs[1].const_value, None if zp is None else zp.const_value


def _zero_point(graph: Graph, node: Node, namer: Namer) -> Value:
    """The node's zero-point input, or an explicit 0 of its integer type when it is omitted."""
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        return node.inputs[2]
    return graph.add_initializer(namer(f"{node.name}_zero"), np.zeros((), node.inputs[0].type.dtype))


class QDQToInteger(Pass):
    # pattern:   y = Q([Relu](op(DQ(xq), DQ(wq)[, DQ(bq)])))   y = op(DQ(xq), DQ(wq)[, DQ(bq)])
    # rewrite:   y = QLinearOp(xq, wq, ...)                    y = DQ(OpInteger(xq, wq) [+ bq])
    # pattern:   y = move(DQ(q))            y = Q(DQ(q)), same scale and zero point
    # rewrite:   y = DQ(move(q))            y = q

    def call(self, graph: Graph) -> PassResult:
        if {*TARGETS, "QuantizeLinear", "DequantizeLinear"} & self.protected:
            return PassResult(graph, False)
        infer_quietly(graph)
        namer = Namer(graph)
        modified = False
        for node in graph.nodes:
            if node.graph is not graph:
                continue  # removed by an earlier rewrite of this round
            if node.op_type in TARGETS and not node.domain and self.check(graph, node) is None:
                self.rewrite(graph, node, namer)
                modified = True
            elif node.op_type in MOVES and not node.domain and self.check_move(graph, node) is None:
                self.rewrite_move(graph, node, namer)
                modified = True
            elif node.op_type == "QuantizeLinear" and self.check_requantize(graph, node) is None:
                modified |= self.rewrite_requantize(graph, node)
        return PassResult(graph, modified)

    # --- Conv / MatMul / Gemm -------------------------------------------------------------------
    @staticmethod
    def check(graph: Graph, op: Node) -> Optional[str]:
        """Why ``op`` cannot become an integer op (None when it can)."""
        x, w = (op.inputs + (None, None))[:2]
        dx, dw = _dq(graph, x), _dq(graph, w, const=True)
        if dx is None or dw is None:
            return "the data and weight inputs are not both dequantized (weight from a constant)"
        if _params(dx)[0].size != 1:
            return "the data input is quantized per channel"
        if op.op_type == "Gemm" and (op.attrs.get("transA", 0) or op.attrs.get("alpha", 1.0) != 1.0
                                     or op.attrs.get("beta", 1.0) != 1.0):
            return "Gemm with transA, alpha or beta is not a plain product"
        axis = _out_axis(op, w.type.shape)
        ws = _params(dw)[0]
        if ws.size != 1 and dw.attrs.get("axis", 1) % len(w.type.shape) != axis:
            return "the weight is quantized along an axis other than its output channels"
        b = op.inputs[2] if len(op.inputs) > 2 else None
        if b is not None:
            db = _dq(graph, b, const=True)
            if db is None or db.inputs[0].type.dtype != np.int32:
                return "the bias is not an int32 constant read through DequantizeLinear"
            bs = _params(db)[0]
            if not np.array_equal(np.broadcast_to(bs, ws.shape), (_params(dx)[0] * ws).astype(np.float32)):
                return "the bias scale is not x_scale * w_scale"
        return None

    def rewrite(self, graph: Graph, op: Node, namer: Namer) -> None:
        relu, q = _requantizer(graph, op)
        if q is not None and (op.op_type == "Conv" or len(op.inputs) < 3 or op.inputs[2] is None):
            self._to_qlinear(graph, op, relu, q, namer)
        else:
            self._to_integer(graph, op, namer)

    def _to_qlinear(self, graph: Graph, op: Node, relu: Optional[Node], q: Node, namer: Namer) -> None:
        dx, dw = op.inputs[0].producer(), op.inputs[1].producer()
        wq, ws, wz = self._weight(graph, op, dw, namer)
        ins = [dx.inputs[0], dx.inputs[1], _zero_point(graph, dx, namer), wq, ws, wz, q.inputs[1],
               _zero_point(graph, q, namer)]
        if op.op_type == "Conv" and len(op.inputs) > 2 and op.inputs[2] is not None:
            ins.append(op.inputs[2].producer().inputs[0])
        kind = "QLinearConv" if op.op_type == "Conv" else "QLinearMatMul"
        attrs = op.attrs if op.op_type == "Conv" else {}
        new = Node(kind, ins, [Value(namer(f"{q.outputs[0].name}_int"))], attrs, name=namer(f"{op.name}_quant"))
        graph.insert_before(q, new)
        take_over(graph, q.outputs[0], new.outputs[0])
        _remove_dead(graph, [q, relu, op])

    def _to_integer(self, graph: Graph, op: Node, namer: Namer) -> None:
        dx, dw = op.inputs[0].producer(), op.inputs[1].producer()
        wq, ws, wz = self._weight(graph, op, dw, namer)
        kind = "ConvInteger" if op.op_type == "Conv" else "MatMulInteger"
        attrs = op.attrs if op.op_type == "Conv" else {}
        y = op.outputs[0]
        acc = Node(kind, [dx.inputs[0], wq, _zero_point(graph, dx, namer), wz], [Value(namer(f"{y.name}_acc"))],
                   attrs, name=namer(f"{op.name}_integer"))
        nodes = [acc]
        if len(op.inputs) > 2 and op.inputs[2] is not None:
            bq = op.inputs[2].producer().inputs[0].const_value
            shape = (-1,) + (1,) * (len(y.type.shape) - 2) if op.op_type == "Conv" else (-1,)
            b = graph.add_initializer(namer(f"{op.name}_bias_int32"), bq.reshape(shape))
            nodes.append(Node("Add", [acc.outputs[0], b], [Value(namer(f"{y.name}_acc_bias"))],
                              name=namer(f"{op.name}_bias")))
        scale = (dx.inputs[1].const_value * ws.const_value).astype(np.float32)
        s = graph.add_initializer(namer(f"{op.name}_acc_scale"), scale)
        z = graph.add_initializer(namer(f"{op.name}_acc_zero"), np.zeros(scale.shape, np.int32))
        attrs = {"axis": 1 if op.op_type == "Conv" else -1} if scale.size > 1 else {}
        out = Node("DequantizeLinear", [nodes[-1].outputs[0], s, z], [Value(namer(f"{y.name}_float"))], attrs,
                   name=namer(f"{op.name}_dequantize"))
        graph.insert_before(op, nodes + [out])
        take_over(graph, y, out.outputs[0])
        _remove_dead(graph, [op])

    @staticmethod
    def _weight(graph: Graph, op: Node, dw: Node, namer: Namer) -> tuple[Value, Value, Value]:
        """The weight's integer data, scale and zero point as the integer op wants them: a Gemm's
        B transposed to [K, N] when transB=1, an all-zero per-channel zero point as one scalar
        (what every backend accepts)."""
        wq, ws = dw.inputs[0], dw.inputs[1]
        wz = _zero_point(graph, dw, namer)
        if op.op_type == "Gemm" and op.attrs.get("transB", 0):
            wq = graph.add_initializer(namer(f"{wq.name}_T"), np.ascontiguousarray(wq.const_value.T))
        if wz.const_value.size > 1 and not wz.const_value.any():
            wz = graph.add_initializer(namer(f"{wz.name}_scalar"), np.zeros((), wz.const_value.dtype))
        return wq, ws, wz

    # --- data movement: move(DQ(q)) -> DQ(move(q)), then Q(DQ(q)) -> q ---------------------------
    @staticmethod
    def check_move(graph: Graph, op: Node) -> Optional[str]:
        dq = _dq(graph, op.inputs[0] if op.inputs else None)
        if dq is None or _params(dq)[0].size != 1:
            return "the op does not read a per-tensor DequantizeLinear"
        if any(v is not None for v in op.outputs[1:]) or op.outputs[0].type is None:
            return "the op has a second output (MaxPool's indices) or an unknown type"
        return None

    @staticmethod
    def rewrite_move(graph: Graph, op: Node, namer: Namer) -> None:
        dq, y = op.inputs[0].producer(), op.outputs[0]
        q = dq.inputs[0]
        moved = Node(op.op_type, [q, *op.inputs[1:]], [Value(namer(f"{y.name}_int"), TensorType(
            q.type.dtype, y.type.shape))], op.attrs, name=namer(f"{op.name}_int"))
        after = Node("DequantizeLinear", [moved.outputs[0], *dq.inputs[1:]], [Value(namer(f"{y.name}_float"), y.type)],
                     dq.attrs, name=namer(f"{op.name}_dequantize"))
        graph.insert_before(op, [moved, after])
        take_over(graph, y, after.outputs[0])
        _remove_dead(graph, [op])

    @staticmethod
    def check_requantize(graph: Graph, q: Node) -> Optional[str]:
        dq = _dq(graph, q.inputs[0])
        qs = constant(graph, q.inputs[1])
        qz = constant(graph, q.inputs[2]) if len(q.inputs) > 2 and q.inputs[2] is not None else None
        if dq is None or qs is None or qz is None:
            return "not QuantizeLinear(DequantizeLinear(q)) with constant parameters"
        ds, dz = _params(dq)
        if dz is None or qs.size != 1 or not (np.array_equal(qs, ds) and np.array_equal(qz, dz) and qz.dtype == dz.dtype):
            return "the QuantizeLinear does not use the DequantizeLinear's scale and zero point"
        return None

    @staticmethod
    def rewrite_requantize(graph: Graph, q: Node) -> bool:
        dq = q.inputs[0].producer()
        if not forward(graph, q.outputs[0], dq.inputs[0]):
            return False
        _remove_dead(graph, [q])
        return True


def _out_axis(op: Node, w_shape) -> int:
    if op.op_type == "Conv":
        return 0
    if op.op_type == "Gemm":
        return 0 if op.attrs.get("transB", 0) else 1
    return len(w_shape) - 1


def _requantizer(graph: Graph, op: Node) -> tuple[Optional[Node], Optional[Node]]:
    """(Relu or None, QuantizeLinear) when op's result is requantized per tensor, else (None, None)."""
    r = only_reader(graph, op.outputs[0])
    relu = None
    if r is not None and r.op_type == "Relu" and not r.domain:
        relu, r = r, only_reader(graph, r.outputs[0])
    if r is None or r.op_type != "QuantizeLinear" or r.domain:
        return None, None
    s = constant(graph, r.inputs[1])
    z = constant(graph, r.inputs[2]) if len(r.inputs) > 2 and r.inputs[2] is not None else None
    if s is None or s.size != 1 or z is None:
        return None, None
    if relu is not None and int(z.reshape(-1)[0]) != np.iinfo(z.dtype).min:
        return None, None  # saturation at qmin would not clip the negatives to 0
    return relu, r


def _remove_dead(graph: Graph, nodes: list) -> None:
    """Remove ``nodes`` (outputs unused by now), then any DequantizeLinear/QuantizeLinear they
    read that nothing else reads, and the initializers left without readers."""
    inputs = []
    for n in nodes:
        if n is not None and n.graph is graph:
            inputs += [v for v in n.inputs if v is not None]
            graph.remove(n)
    for v in inputs:
        p = v.producer()
        if p is not None and p.graph is graph and p.op_type in ("DequantizeLinear", "QuantizeLinear") \
                and not v.uses() and not any(o is v for o in graph.outputs):
            _remove_dead(graph, [p])
    drop_unused_initializers(graph, inputs)
