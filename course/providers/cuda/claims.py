"""What the CUDA provider claims: float32 nodes whose shapes and attributes its kernels handle.

Decided once, at partitioning, from the NodeSpec alone (no numba imported here). Everything else
-- other dtypes, grouped or asymmetric convolutions, a weight computed at run time, a Clip whose
bounds are inputs -- is left to the next provider, with copies at the borders.
"""
from __future__ import annotations

import numpy as np

from course.providers.base import NodeSpec

F32 = np.dtype(np.float32)
EPILOGUE_ACTIVATIONS = frozenset({"Identity", "Relu", "LeakyRelu", "Clip"})  # epilogue.py's
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Sqrt",
                         "Reciprocal", "LeakyRelu"})  # elementwise.SINGLE, without importing numba
GEMM_ACTIVATIONS = frozenset({"Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip"})  # programs of one step


def _static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _present(spec: NodeSpec, i: int) -> bool:
    return i < len(spec.inputs) and spec.inputs[i] is not None


def float32_only(spec: NodeSpec) -> bool:
    """Every present input and output is float32 with a known rank."""
    types = [t for t in [*spec.inputs, *spec.outputs] if t is not None]
    return bool(types) and all(t[0] == F32 and t[1] is not None for t in types)


def one_output(spec: NodeSpec) -> bool:
    return all(t is None for t in spec.outputs[1:]) and spec.outputs[0] is not None


def claims_conv(spec: NodeSpec) -> bool:
    """2-D, constant weights (and bias); any group, stride, pads and dilation (conv.py routes
    them); a FusedConv's activation is one the epilogue has and its residual Z has the output's
    shape."""
    if not float32_only(spec) or len(spec.input_shape(0)) != 4 or len(spec.input_shape(1)) != 4:
        return False
    if 1 not in spec.constant_inputs or (_present(spec, 2) and 2 not in spec.constant_inputs):
        return False
    if spec.op_type != "FusedConv":
        return True
    if spec.attrs.get("activation") not in EPILOGUE_ACTIVATIONS:
        return False
    return not _present(spec, 3) or tuple(spec.input_shape(3)) == tuple(spec.outputs[0][1])


def claims_gemm(spec: NodeSpec) -> bool:
    """2-D operands; an operand to transpose must be a constant (it is transposed at upload)."""
    if not float32_only(spec) or len(spec.input_shape(0)) != 2 or len(spec.input_shape(1)) != 2:
        return False
    if spec.op_type == "MatMul":
        return True
    a = spec.attrs
    if (a.get("transA", 0) and 0 not in spec.constant_inputs) or (a.get("transB", 0) and 1 not in spec.constant_inputs):
        return False
    return not _present(spec, 2) or len(spec.input_shape(2)) <= 2


def claims_fused_gemm(spec: NodeSpec) -> bool:
    """A Gemm we claim whose activation the elementwise generator has (course.FusedGemm)."""
    return claims_gemm(spec) and spec.attrs.get("activation") in GEMM_ACTIVATIONS


def claims_elementwise(spec: NodeSpec) -> bool:
    """Inputs made at run time have the output's shape; constants broadcast to a static one."""
    if spec.domain == "" and spec.op_type not in ELEMENTWISE:
        return False
    if not float32_only(spec) or not one_output(spec):
        return False
    out = tuple(spec.outputs[0][1])
    for i, t in enumerate(spec.inputs):
        if t is None:
            return False
        if i in spec.constant_inputs and not _static(out):
            return False
        if i not in spec.constant_inputs and tuple(t[1]) != out:
            return False
    return True


def claims_softmax(spec: NodeSpec) -> bool:
    """The last axis (opset 13), or any axis before opset 13, whose Softmax flattens the tail."""
    if not float32_only(spec):
        return False
    rank = len(spec.input_shape(0))
    axis = spec.attrs.get("axis", -1)
    return rank >= 1 and -rank <= axis < rank and (spec.opset < 13 or axis % rank == rank - 1)


def claims_pool(spec: NodeSpec) -> bool:
    """2-D MaxPool / AveragePool without the Indices output (storage order 0)."""
    a = spec.attrs
    return (float32_only(spec) and one_output(spec) and len(spec.input_shape(0)) == 4
            and len(a.get("kernel_shape") or ()) == 2 and a.get("storage_order", 0) == 0)


def claims_global_pool(spec: NodeSpec) -> bool:
    return float32_only(spec) and len(spec.input_shape(0)) >= 3


def claims_view(spec: NodeSpec) -> bool:
    """A float32 tensor whose other inputs (a Reshape's shape, axes) are constants."""
    if not one_output(spec) or spec.inputs[0] is None or spec.inputs[0][0] != F32:
        return False
    if spec.op_type == "Identity" and len(spec.outputs) != 1:
        return False
    return spec.outputs[0][1] is not None and all(
        i in spec.constant_inputs for i in range(1, len(spec.inputs)) if spec.inputs[i] is not None)


def claims_concat(spec: NodeSpec) -> bool:
    return float32_only(spec) and one_output(spec) and all(t is not None for t in spec.inputs)


def claims_split(spec: NodeSpec) -> bool:
    """Every output wanted (none omitted); a split-sizes input is a constant."""
    return (spec.inputs[0] is not None and spec.inputs[0][0] == F32 and spec.inputs[0][1] is not None
            and all(t is not None and t[0] == F32 for t in spec.outputs)
            and all(i in spec.constant_inputs for i in range(1, len(spec.inputs)) if spec.inputs[i] is not None))


def claims_batchnorm(spec: NodeSpec) -> bool:
    """Inference mode, constant scale / bias / mean / var, NC... input."""
    return (float32_only(spec) and one_output(spec) and len(spec.input_shape(0)) >= 2
            and not spec.attrs.get("training_mode", 0) and set(range(1, 5)) <= set(spec.constant_inputs))


def claims_transpose(spec: NodeSpec) -> bool:
    return float32_only(spec) and one_output(spec)
