"""Channels-last versions of the layout-sensitive ops (domain "course.nhwc"), as onnxruntime's
layout transformer writes them (its internal NHWC domain): the same op types and attributes, but
the data input X, the residual Z of a FusedConv and the output Y are (N, H, W, C). Weights and
biases keep their ONNX layout (W is (M, C/group, kH, kW)).

Written by the ``ToNHWC`` layout pass, never by model authors. This reference definition permutes
to NCHW, runs the NCHW reference op and permutes back, so it computes exactly what the original
node did; a provider with channels-last kernels computes the same thing without the permutes.
"""
from __future__ import annotations

import numpy as np

from course.ops.base import InferContext, Op
from course.ops.conv import Conv
from course.ops.fused_conv import FusedConv
from course.ops.global_pool import GlobalAveragePool, GlobalMaxPool
from course.ops.maxpool import MaxPool10
from course.ops.pool import AveragePool19
from course.ops.registry import register
from course.ops.types import TensorType

DOMAIN = "course.nhwc"
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)


def _permute(shape, perm):
    return None if shape is None or len(shape) != 4 else tuple(shape[i] for i in perm)


def _channels_last(base: type[Op], layout_inputs: tuple[int, ...] = (0,)) -> type[Op]:
    """``base`` with X (and the other ``layout_inputs``) and Y channels last."""

    class ChannelsLast(base):
        num_outputs = (1, 1)

        def infer_dtype(self, ctx: InferContext):
            return list(base.infer_dtype(self, ctx))[:1]

        def infer_shape(self, ctx: InferContext):
            inputs = list(ctx.inputs)
            for i in layout_inputs:
                if i < len(inputs) and inputs[i] is not None:
                    inputs[i] = TensorType(inputs[i].dtype, _permute(inputs[i].shape, TO_NCHW))
            y = base.infer_shape(self, InferContext(inputs, ctx.consts, ctx.attrs, 1))[0]
            return [_permute(y, TO_NHWC)]

        def compute(self, *inputs, **attrs):
            args = [np.ascontiguousarray(v.transpose(TO_NCHW)) if i in layout_inputs and v is not None else v
                    for i, v in enumerate(inputs)]
            y = base.compute(self, *args, **attrs)
            y = y[0] if isinstance(y, tuple) else y
            return np.ascontiguousarray(y.transpose(TO_NHWC))

    ChannelsLast.__name__ = ChannelsLast.__qualname__ = f"Nhwc{base.__name__}"
    return ChannelsLast


NhwcConv = register("Conv", since=1, domain=DOMAIN)(_channels_last(Conv))
NhwcFusedConv = register("FusedConv", since=1, domain=DOMAIN)(_channels_last(FusedConv, (0, 3)))
NhwcMaxPool = register("MaxPool", since=1, domain=DOMAIN)(_channels_last(MaxPool10))
NhwcAveragePool = register("AveragePool", since=1, domain=DOMAIN)(_channels_last(AveragePool19))
NhwcGlobalAveragePool = register("GlobalAveragePool", since=1, domain=DOMAIN)(_channels_last(GlobalAveragePool))
NhwcGlobalMaxPool = register("GlobalMaxPool", since=1, domain=DOMAIN)(_channels_last(GlobalMaxPool))
