"""``CUDAExecutionProvider``: the course's CUDA kernels (``kernels/``) behind the provider interface.

Its tensors live on the device (``device = "cuda"``): a kernel takes device arrays (and host
arrays for constant inputs, which it uploads once) and returns device arrays, so nothing moves
between two of its nodes. The session inserts ``MemcpyFromHost`` / ``MemcpyToHost`` nodes at the
borders with host providers (course/runtime/copies.py) and this provider runs them: pinned
staging buffers, async copies on the run's stream (state.py).

Claims (claims.py): float32 Conv / FusedConv (im2col + GEMM + epilogue, or a direct kernel for
grouped convolutions), Gemm / MatMul / FusedGemm (tiled or register-blocked GEMM), the elementwise
ops and FusedElementwise (generated kernels), Softmax, MaxPool / AveragePool / the global
poolings, BatchNormalization, Concat / Split, Transpose, and the shape-only ops as views. numba is
imported when the provider is made, never by ``claims``.
"""
from __future__ import annotations

from typing import ContextManager

import numpy as np

from course.providers.base import ExecutionProvider, Kernel, NodeSpec
from course.providers.cuda import claims as rules

COPY_DOMAIN = "course"  # onnxruntime's copy ops, as course/runtime/copies.py inserts them
TO_DEVICE, TO_HOST = "MemcpyFromHost", "MemcpyToHost"

CLAIMS = {  # (op_type, domain) -> whether this node is ours
    ("Conv", ""): rules.claims_conv,
    ("FusedConv", "course"): rules.claims_conv,
    ("Gemm", ""): rules.claims_gemm,
    ("MatMul", ""): rules.claims_gemm,
    ("FusedGemm", "course"): rules.claims_fused_gemm,
    ("FusedElementwise", "course"): rules.claims_elementwise,
    **{(op, ""): rules.claims_elementwise for op in rules.ELEMENTWISE},
    ("Softmax", ""): rules.claims_softmax,
    ("MaxPool", ""): rules.claims_pool,
    ("AveragePool", ""): rules.claims_pool,
    ("GlobalAveragePool", ""): rules.claims_global_pool,
    ("GlobalMaxPool", ""): rules.claims_global_pool,
    **{(op, ""): rules.claims_view for op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")},
    ("Concat", ""): rules.claims_concat,
    ("Split", ""): rules.claims_split,
    ("BatchNormalization", ""): rules.claims_batchnorm,
    ("Transpose", ""): rules.claims_transpose,
    (TO_DEVICE, COPY_DOMAIN): lambda spec: True,
    (TO_HOST, COPY_DOMAIN): lambda spec: True,
}


def _maker(op_type: str):
    """The function making a kernel for ``op_type``: ``make(state, spec) -> kernel``."""
    from course.providers.cuda import batchnorm, concat, conv, elementwise, gemm, pool, softmax, transpose, views

    makers = {"Conv": conv.make_conv, "FusedConv": conv.make_conv, "Gemm": gemm.make_gemm,
              "MatMul": gemm.make_gemm, "FusedGemm": gemm.make_gemm, "Softmax": softmax.make_softmax, "MaxPool": pool.make_pool,
              "AveragePool": pool.make_pool, "GlobalAveragePool": pool.make_global_pool,
              "GlobalMaxPool": pool.make_global_pool, "Concat": concat.make_concat, "Split": concat.make_split,
              "BatchNormalization": batchnorm.make_batchnorm, "Transpose": transpose.make_transpose, TO_DEVICE: _make_to_device, TO_HOST: _make_to_host}
    if op_type in views.VIEWS:
        return views.make_view
    return makers.get(op_type, elementwise.make_elementwise)


def _make_to_device(state, spec: NodeSpec) -> Kernel:
    return lambda x: state.to_device(x, key=spec.name)


def _make_to_host(state, spec: NodeSpec) -> Kernel:
    return lambda d: state.to_host(d, key=spec.name)


class CUDAExecutionProvider(ExecutionProvider):
    """The course's CUDA kernels, tensors kept on the device, one stream per running thread."""

    name = "CUDAExecutionProvider"
    device = "cuda"

    def __init__(self):
        from course.providers.cuda.state import DeviceState

        self.state = DeviceState()

    def claims(self, spec: NodeSpec) -> bool:
        claim = CLAIMS.get((spec.op_type, spec.domain or ""))
        return claim is not None and claim(spec)

    def kernel(self, spec: NodeSpec) -> Kernel:
        return _maker(spec.op_type)(self.state, spec)

    def running(self) -> ContextManager:
        """This thread's stream for the run; synchronized when the run ends."""
        return self.state.running()

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype):
        """Device memory (on the calling thread's stream)."""
        return self.state.empty(shape, dtype)

    def current_stream(self):
        """The stream the calling thread's runs queue their kernels and copies on."""
        return self.state.stream()
