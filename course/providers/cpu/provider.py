"""``CPUExecutionProvider``: the fast CPU engine behind the provider interface.

It claims the nodes it accelerates (routes.py: float32 2-D Conv and FusedConv with a route of
its own, the 3x3 MaxPool, AveragePool, big float32 Gemm) and leaves the rest to the reference provider. Its
kernels are compiled Numba loops and direct BLAS calls shared with a helper thread (pool.py)
while ``running()``; numba is imported only when the first kernel is made.
"""
from __future__ import annotations

import contextlib
import functools
from typing import ContextManager

from course.ops import registry
from course.providers.base import ExecutionProvider, Kernel, NodeSpec
from course.providers.cpu import routes


def _blas_ok() -> bool:
    from course.providers.cpu import blas

    return blas.available()


CLAIMS = {  # (op_type, domain) -> whether this node is ours
    ("Conv", ""): lambda spec: routes.claims_conv(spec, _blas_ok()),
    ("FusedConv", "course"): lambda spec: routes.claims_conv(spec, _blas_ok()),
    ("MaxPool", ""): routes.claims_max_pool,
    ("AveragePool", ""): routes.claims_average_pool,
    ("Gemm", ""): lambda spec: routes.claims_gemm(spec, _blas_ok()),
}

CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


class CPUExecutionProvider(ExecutionProvider):
    """Compiled loops, BLAS and a helper thread for the nodes where they pay."""

    name = "CPUExecutionProvider"
    layouts = frozenset({"NHWC"})  # 1x1 and depthwise convolutions write channels last when marked

    def claims(self, spec: NodeSpec) -> bool:
        claim = CLAIMS.get((spec.op_type, spec.domain or ""))
        return claim is not None and claim(spec)

    def kernel(self, spec: NodeSpec) -> Kernel:
        reference = functools.partial(registry.lookup(spec.op_type, spec.opset, spec.domain).compute, **spec.attrs)
        if spec.op_type == "MaxPool":
            return _max_pool_kernel(spec, reference)
        if spec.op_type == "AveragePool":
            from course.providers.cpu.pooling import average_pool

            return functools.partial(average_pool, **spec.attrs)
        if spec.op_type == "Gemm":
            from course.providers.cpu.gemm import gemm_node

            attrs = {k: spec.attrs[k] for k in ("alpha", "beta", "transA", "transB") if k in spec.attrs}
            return functools.partial(gemm_node, **attrs, reference=reference)
        return _conv_kernel(spec, reference)

    def running(self) -> ContextManager:
        from course.providers.cpu import pool

        return pool.running()

    def paused(self) -> ContextManager:
        import sys

        pool = sys.modules.get("course.providers.cpu.pool")
        return pool.paused() if pool is not None else contextlib.nullcontext()


def _conv_kernel(spec: NodeSpec, reference) -> Kernel:
    from course.providers.cpu.conv import conv2d
    from course.providers.cpu.prepared import PreparedConv

    fused = spec.op_type == "FusedConv"
    attrs = {k: spec.attrs[k] for k in CONV_ATTRS if k in spec.attrs}
    general = functools.partial(
        conv2d, attrs=attrs, activation=spec.attrs.get("activation", "Identity") if fused else "Identity",
        params=tuple(spec.attrs.get("activation_params") or ()) if fused else (),
        channels_last=spec.marks.get("layout") == "NHWC",
        reference=reference if fused else lambda x, w, b, z: reference(x, w, b))
    return PreparedConv(general)


def _max_pool_kernel(spec: NodeSpec, reference) -> Kernel:
    from course.providers.cpu.geometry import window_of
    from course.providers.cpu.maxpool import max_pool3x3
    from course.providers.cpu.pooling import max_pool as max_pool_taps

    attrs = spec.attrs
    if tuple(attrs.get("kernel_shape") or ()) != (3, 3):
        return functools.partial(max_pool_taps, **attrs)

    def max_pool(x):
        if x.dtype.name != "float32" or x.ndim != 4 or x.size == 0:
            return reference(x)
        win = window_of(x.shape[2:], (3, 3), attrs, ceil=attrs.get("ceil_mode", 0))
        if min(win.out) < 1:
            return reference(x)
        return max_pool3x3(x, win)
    return max_pool
