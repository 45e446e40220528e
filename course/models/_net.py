"""A small helper that writes ONNX graphs layer by layer, with seeded, well-scaled random weights.

The architectures in :mod:`course.models.builders` are written with it. Weights follow He
initialisation (std = sqrt(2 / fan_in)) so a ReLU network keeps its activation scale with depth;
BatchNormalization gets running statistics near (0, 1) and affine parameters near (1, 0).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Net:
    """Accumulates nodes and initializers; every method returns the name of the value it made."""

    def __init__(self, name: str, seed: int = 0):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}
        self._consts: dict[tuple, str] = {}

    # ---- bookkeeping -------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        n = self._counts.get(prefix, 0)
        self._counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def init(self, prefix: str, array: np.ndarray) -> str:
        name = self.fresh(prefix)
        # np.array, not np.ascontiguousarray: the latter turns 0-d scalars into shape [1]
        self.inits.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def const(self, values, dtype=np.int64) -> str:
        """A shared initializer for a small constant (shapes, split sizes, clip bounds)."""
        arr = np.asarray(values, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.init("const", arr)
        return self._consts[key]

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> str | list[str]:
        name = self.fresh(op_type.lower())
        outs = [name if n_out == 1 else f"{name}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    # ---- layers ------------------------------------------------------------------------------
    def conv(self, x: str, c_in: int, c_out: int, k: int, stride: int = 1, pad: int | None = None,
             group: int = 1, bias: bool = False, gain: float = 2.0) -> str:
        """Conv with He-initialised weights [c_out, c_in/group, k, k]."""
        pad = k // 2 if pad is None else pad
        fan_in = (c_in // group) * k * k
        w = self.rng.normal(0.0, np.sqrt(gain / fan_in), (c_out, c_in // group, k, k))
        inputs = [x, self.init("W", w.astype(np.float32))]
        if bias:
            inputs.append(self.init("B", self.rng.normal(0.0, 0.01, c_out).astype(np.float32)))
        return self.op("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                       pads=[pad] * 4, group=group)

    def bn(self, x: str, c: int, gamma: float = 1.0) -> str:
        """Inference-mode BatchNormalization with running stats near mean 0, variance 1."""
        r = self.rng
        scale = (gamma * (1.0 + 0.1 * r.standard_normal(c))).astype(np.float32)
        shift = (0.05 * r.standard_normal(c)).astype(np.float32)
        mean = (0.05 * r.standard_normal(c)).astype(np.float32)
        var = r.uniform(0.8, 1.2, c).astype(np.float32)
        ins = [x, self.init("bn_scale", scale), self.init("bn_bias", shift),
               self.init("bn_mean", mean), self.init("bn_var", var)]
        return self.op("BatchNormalization", ins, epsilon=1e-5)

    def conv_bn(self, x: str, c_in: int, c_out: int, k: int, stride: int = 1, group: int = 1,
                act: str | None = "relu", gamma: float = 1.0, gain: float = 2.0) -> str:
        y = self.bn(self.conv(x, c_in, c_out, k, stride, group=group, gain=gain), c_out, gamma)
        if act == "relu":
            return self.relu(y)
        if act == "relu6":
            return self.op("Clip", [y, self.const(0.0, np.float32), self.const(6.0, np.float32)])
        return y

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def maxpool(self, x: str, k: int, stride: int, pad: int = 0, ceil: bool = False) -> str:
        return self.op("MaxPool", [x], kernel_shape=[k, k], strides=[stride, stride],
                       pads=[pad] * 4, ceil_mode=int(ceil))

    def avgpool(self, x: str, k: int, stride: int, pad: int = 0) -> str:
        return self.op("AveragePool", [x], kernel_shape=[k, k], strides=[stride, stride],
                       pads=[pad] * 4, count_include_pad=0)

    def head(self, x: str, c: int, num_classes: int, dropout: bool = False) -> str:
        """GlobalAveragePool -> Flatten -> (Dropout) -> Gemm: the classifier most nets share."""
        y = self.op("Flatten", [self.op("GlobalAveragePool", [x])], axis=1)
        if dropout:
            y = self.op("Dropout", [y, self.const(0.2, np.float32)])
        w = self.rng.normal(0.0, np.sqrt(1.0 / c), (num_classes, c)).astype(np.float32)
        b = self.rng.normal(0.0, 0.01, num_classes).astype(np.float32)
        return self.op("Gemm", [y, self.init("fc_W", w), self.init("fc_B", b)], transB=1)

    # ---- finish ------------------------------------------------------------------------------
    def model(self, x: str, y: str, input_shape: list, output_shape: list) -> onnx.ModelProto:
        """Wrap the graph: input ``x`` is named "input", output ``y`` is renamed "logits"."""
        last = self.nodes[-1]
        assert last.output[0] == y, "the output must be produced by the last node"
        last.output[0] = "logits"
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, output_shape)],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="inference-engines-course")
        model.ir_version = 8  # opset 17 pairs with IR 8; keeps older runtimes able to load it
        return model
