"""``CPUExecutionProvider``: the fast CPU engine behind the provider interface.

It claims the nodes it accelerates (routes.py: float32 2-D Conv and FusedConv with a route of
its own, the 3x3 MaxPool, AveragePool, big float32 Gemm, FusedGemm and 2-D MatMul,
BatchNormalization, LRN, and the course.nhwc Conv and FusedConv the ToNHWC pass writes where a
channels-last route runs them: 1x1 and 3x3 depthwise) and leaves the rest to the reference
provider. Its kernels are compiled Numba loops and direct BLAS calls shared with a helper
thread (pool.py) while ``running()``; numba is imported only when the first kernel is made.

Where a node could run several ways (a convolution's routes, a Gemm in bands or by numpy),
``tactics(spec)`` lists them, the heuristic's choice first; an engine build times them and marks
the node ``spec.marks["tactic"]``, which ``kernel`` honours (falling back to the heuristic for a
call the tactic does not apply to).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import ContextManager, Optional

import numpy as np

from course.ops import registry
from course.providers.base import ExecutionProvider, IntoKernel, Kernel, NodeSpec
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
    ("FusedGemm", "course"): lambda spec: routes.claims_gemm(spec, _blas_ok()),
    ("MatMul", ""): lambda spec: routes.claims_gemm(spec, _blas_ok()),
    ("BatchNormalization", ""): routes.claims_batch_norm,
    ("LRN", ""): routes.claims_lrn,
    ("Conv", routes.NHWC_DOMAIN): lambda spec: routes.channels_last_route(spec, _blas_ok()) is not None,
    ("FusedConv", routes.NHWC_DOMAIN): lambda spec: routes.channels_last_route(spec, _blas_ok()) is not None,
}

TACTICS = {"Conv": tuple(routes.ROUTE_APPLIES), "FusedConv": tuple(routes.ROUTE_APPLIES),  # every tactic
           "Gemm": routes.GEMM_TACTICS, "FusedGemm": routes.GEMM_TACTICS,  # name a kernel accepts, per op type
           "MatMul": routes.GEMM_TACTICS}
GEMMS = ("Gemm", "FusedGemm", "MatMul")  # the op types gemm_node runs
GEMM_ATTRS = ("alpha", "beta", "transA", "transB")

CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


class CPUExecutionProvider(ExecutionProvider):
    """Compiled loops, BLAS and a helper thread for the nodes where they pay."""

    name = "CPUExecutionProvider"
    layouts = frozenset({"NHWC"})  # 1x1 and depthwise convolutions write channels last when marked

    def claims(self, spec: NodeSpec) -> bool:
        claim = CLAIMS.get((spec.op_type, spec.domain or ""))
        return claim is not None and claim(spec)

    def tactics(self, spec: NodeSpec) -> list[str]:
        """The kernels this node can run with, the heuristic's choice first, for an engine build
        to time (``spec.marks["tactic"]`` then names the one to use); [] when there is no choice
        or the shapes are not all known. A node the layout pass marked channels last keeps its
        route: the marks were placed for what that route writes."""
        if spec.marks.get("layout") == "NHWC" or spec.domain == routes.NHWC_DOMAIN:
            return []  # a course.nhwc node has one route, the channels-last one
        if spec.op_type in ("Conv", "FusedConv"):
            case = _conv_case(spec, _blas_ok())
            return [] if case is None else routes.conv_tactics(case)
        if spec.op_type in GEMMS:
            a, b = spec.input_shape(0), spec.input_shape(1)
            if not (routes.is_static(a) and routes.is_static(b) and len(a) == len(b) == 2):
                return []
            m, k = (a[1], a[0]) if spec.attrs.get("transA", 0) else a
            n = b[0] if spec.attrs.get("transB", 0) else b[1]
            return routes.gemm_tactics(m, k, n)
        return []

    def kernel(self, spec: NodeSpec) -> Kernel:
        reference = functools.partial(registry.lookup(spec.op_type, spec.opset, spec.domain).compute, **spec.attrs)
        tactic = spec.marks.get("tactic")
        if tactic is not None and tactic not in TACTICS.get(spec.op_type, ()):
            raise ValueError(f"{self.name} has no tactic {tactic!r} for {spec.op_type} "
                             f"(it has {list(TACTICS.get(spec.op_type, ()))})")
        if spec.op_type == "MaxPool":
            return _max_pool_kernel(spec, reference)
        if spec.op_type == "AveragePool":
            from course.providers.cpu.pooling import AveragePoolKernel

            return AveragePoolKernel(spec.attrs)
        if spec.op_type in GEMMS:
            return reference if tactic == "reference" else _gemm_kernel(spec, reference)
        if spec.op_type == "BatchNormalization":
            from course.providers.cpu.batchnorm import BatchNormKernel

            return BatchNormKernel(spec.attrs.get("epsilon", 1e-5), reference)
        if spec.op_type == "LRN":
            from course.providers.cpu.lrn import LRNKernel

            return LRNKernel(spec.attrs)
        if spec.domain == routes.NHWC_DOMAIN:
            return _channels_last_conv_kernel(spec, reference)
        return _conv_kernel(spec, reference, tactic)

    def kernel_into(self, spec: NodeSpec) -> Optional[IntoKernel]:
        """``kernel`` in destination-passing form where its kernel writes the C-contiguous NCHW
        (or (M, N)) array the session hands it: the convolution routes, the Gemms and the pools.
        None where it would not: a node marked channels last (its output is an NCHW view of an
        NHWC array) or in the course.nhwc domain (it returns the NHWC array its route wrote), and a
        node whose shapes are known to take the reference's route or tactic
        (the reference op allocates its own). A call that still returns its own array (another
        route at this run's shapes) has it copied into the view."""
        if (spec.marks.get("layout") == "NHWC" or spec.domain == routes.NHWC_DOMAIN or len(spec.outputs) != 1
                or not self.claims(spec)):
            return None
        tactic = spec.marks.get("tactic")
        if tactic == "reference":
            return None
        if spec.op_type in ("Conv", "FusedConv") and tactic is None:
            case = _conv_case(spec, _blas_ok())
            if case is not None and routes.conv_route(case) == "reference":
                return None
        return functools.partial(_write_into, self.kernel(spec))

    def workspace_bytes(self, spec: NodeSpec) -> int:
        """The scratch of the NCHW convolution route ``kernel_into`` takes at these shapes
        (conv.route_scratch: Winograd's tiles, a shared im2col matrix, the shifted GEMMs' padded
        phases and grid) and of an LRN (its channel-window sums); 0 for every other node. Scratch made inside a compiled loop per chunk
        (im2col's column blocks split by pixels, the depthwise and pooling kernels' plane
        buffers, Winograd's row buffers: a few KiB to 512 KiB per thread) stays there: which
        thread runs which chunk is settled while the job runs."""
        if spec.op_type == "LRN" and self.kernel_into(spec) is not None and routes.is_static(spec.input_shape(0)):
            from course.providers.cpu.lrn import lrn_scratch
            from course.providers.cpu.scratch import scratch_bytes

            return scratch_bytes(lrn_scratch(spec.input_shape(0)))  # the channel-window sums
        if spec.op_type not in ("Conv", "FusedConv") or self.kernel_into(spec) is None:
            return 0
        case = _conv_case(spec, _blas_ok())
        if case is None:
            return 0
        from course.providers.cpu.conv import route_scratch

        return route_scratch(case, spec.marks.get("tactic"))

    def running(self) -> ContextManager:
        from course.providers.cpu import pool

        return pool.running()

    def paused(self) -> ContextManager:
        import sys

        pool = sys.modules.get("course.providers.cpu.pool")
        return pool.paused() if pool is not None else contextlib.nullcontext()


def _write_into(kernel, *inputs, out, workspace=None):
    """Destination passing over a kernel that takes ``out=`` (and ``workspace=``, the convolutions
    that declare scratch): it returns ``out[0]`` when it wrote there, else its own array, which
    is copied in."""
    y = kernel(*inputs, out=out[0]) if workspace is None else kernel(*inputs, out=out[0], workspace=workspace)
    if y is not out[0]:
        np.copyto(out[0], y)


def _gemm_kernel(spec: NodeSpec, reference) -> Kernel:
    """gemm_node with the node's attributes bound: Gemm's, FusedGemm's activation, MatMul's none."""
    from course.providers.cpu.gemm import gemm_node

    attrs = {k: spec.attrs[k] for k in GEMM_ATTRS if k in spec.attrs}
    if spec.op_type == "FusedGemm":
        attrs.update(activation=spec.attrs["activation"], params=tuple(spec.attrs.get("activation_params") or ()))
    if spec.op_type == "MatMul":
        matmul = reference
        reference = lambda a, b, c=None: matmul(a, b)  # noqa: E731  (MatMul has no C)
    return functools.partial(gemm_node, **attrs, reference=reference)


def _conv_case(spec: NodeSpec, blas_ok: bool):
    """The routes.ConvCase of a Conv/FusedConv node whose X and W shapes are known, else None."""
    from course.providers.cpu.geometry import window_of

    x, w = spec.input_shape(0), spec.input_shape(1)
    if not (routes.is_static(x) and routes.is_static(w) and len(x) == len(w) == 4):
        return None
    win = window_of(x[2:], w[2:], spec.attrs)
    if min(win.out) < 1:
        return None
    return routes.ConvCase(x[1], w[0], spec.attrs.get("group", 1), tuple(w), win, blas_ok, n=x[0])


def _conv_kernel(spec: NodeSpec, reference, tactic=None) -> Kernel:
    from course.providers.cpu.conv import conv2d
    from course.providers.cpu.prepared import PreparedConv

    fused = spec.op_type == "FusedConv"
    attrs = {k: spec.attrs[k] for k in CONV_ATTRS if k in spec.attrs}
    general = functools.partial(
        conv2d, attrs=attrs, activation=spec.attrs.get("activation", "Identity") if fused else "Identity",
        params=tuple(spec.attrs.get("activation_params") or ()) if fused else (),
        channels_last=spec.marks.get("layout") == "NHWC",
        reference=reference if fused else lambda x, w, b, z: reference(x, w, b), tactic=tactic)
    return PreparedConv(general)


def _channels_last_conv_kernel(spec: NodeSpec, nhwc_reference) -> Kernel:
    """A course.nhwc Conv/FusedConv: the convolution kernel on NCHW views, its channels-last
    route named as the tactic (channels_last.py)."""
    from course.providers.cpu.channels_last import ChannelsLastConv, nchw_reference

    route = routes.channels_last_route(spec, _blas_ok())
    marked = dataclasses.replace(spec, marks={**spec.marks, "layout": "NHWC"})
    return ChannelsLastConv(_conv_kernel(marked, nchw_reference(nhwc_reference), route))


def _max_pool_kernel(spec: NodeSpec, reference) -> Kernel:
    from course.providers.cpu.pooling import MaxPool3x3Kernel, MaxPoolKernel

    if tuple(spec.attrs.get("kernel_shape") or ()) != (3, 3):
        return MaxPoolKernel(spec.attrs)
    return MaxPool3x3Kernel(spec.attrs, reference)
