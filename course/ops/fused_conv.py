"""FusedConv (domain "course"): Conv, plus an optional residual Z, then an activation, applied in
place on the convolution's output: ``Y = activation(Conv(X, W, B) + Z)``.

Written by the ``FuseConvActivation`` and ``FuseConvAdd`` passes, never by model authors.
``activation`` is "Relu", "Clip" (``activation_params`` = [min, max]), "LeakyRelu"
(``activation_params`` = [alpha]) or "Identity" (none; only useful with Z). Z broadcasts like
Add's inputs. The results are bit for bit those of the separate nodes; what is saved is
full-size temporaries and passes over memory: bias, residual and activation run as one compiled
pass (on the float GEMM routes inside each band of the GEMM while it is in cache, see
conv.conv_core's ``post``), and a 3x3 depthwise convolution (MobileNet's) runs a compiled kernel
with bias and activation fused into its inner loop (course/ops/_fused_kernels.py). float16 takes
the plain numpy route.
"""
from __future__ import annotations

import numpy as np

from course.errors import DTypeError, OpAttributeError, ShapeError
from course.ops.base import REQUIRED, InferContext, Op, broadcast_shapes
from course.ops.conv import (CONV_ATTRS, Conv, channels_last_hints, conv_core, output_shape, prepare,
                             supports_depthwise)
from course.ops.registry import register

ACTIVATIONS = {"Relu": 0, "Clip": 2, "LeakyRelu": 1, "Identity": 0}  # name -> number of activation_params


def check_activation(activation, params) -> None:
    if ACTIVATIONS.get(activation) != len(params or []):
        raise OpAttributeError(f"activation {activation!r} with {len(params or [])} parameter(s) is not "
                               f"supported; expected one of {ACTIVATIONS} (name: parameter count)")


def activate_inplace(y: np.ndarray, activation: str, params) -> np.ndarray:
    """Apply the activation to ``y`` in place, with the same rounding as the standalone kernels."""
    check_activation(activation, params)
    if activation == "Identity":
        return y
    if activation == "Relu":
        np.maximum(y, y.dtype.type(0), out=y)
    elif activation == "Clip":  # max first, then min: min wins when lo > hi, as ONNX specifies
        np.maximum(y, y.dtype.type(params[0]), out=y)
        np.minimum(y, y.dtype.type(params[1]), out=y)
    else:  # LeakyRelu
        np.multiply(y, y.dtype.type(params[0]), out=y, where=y < 0)
    return y


@register("FusedConv", since=1, domain="course")
class FusedConv(Op):
    attrs = {**CONV_ATTRS, "activation": REQUIRED, "activation_params": []}
    num_inputs = (2, 4)

    def infer_dtype(self, ctx: InferContext):
        if ctx.dtype(3) is not None and ctx.dtype(0) is not None and ctx.dtype(3) != ctx.dtype(0):
            raise DTypeError(f"Z has element type {ctx.dtype(3)} but X has {ctx.dtype(0)}")
        return [ctx.dtype(0)]

    def infer_shape(self, ctx: InferContext):
        check_activation(ctx.attrs["activation"], ctx.attrs["activation_params"])
        y = Conv.infer_shape(self, ctx)[0]
        if len(ctx.inputs) > 3 and ctx.inputs[3] is not None:
            y = broadcast_shapes(y, ctx.shape(3))
        return [y]

    def plan_hints(self, graph, custom_kernels):
        return channels_last_hints(graph, custom_kernels)

    def prepare(self, node, attrs):
        return prepare(self.compute, node, attrs)

    def compute(self, x, w, b=None, z=None, activation="Relu", activation_params=(), auto_pad="NOTSET",
                dilations=None, group=1, kernel_shape=None, pads=None, strides=None, _channels_last=False):
        check_activation(activation, activation_params)
        from course.ops import _fused_kernels as fk  # imports numba: only once a FusedConv runs

        if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
            raise ShapeError(f"kernel_shape {list(kernel_shape)} does not match W {w.shape}")
        if z is not None and z.dtype != x.dtype:
            raise DTypeError(f"Z has element type {z.dtype} but X has {x.dtype}")
        if supports_depthwise(x, w, group):
            if z is None:
                return fk.depthwise_conv2d(x, w, b, strides, pads, dilations, auto_pad, activation,
                                           activation_params)
            y, b = fk.depthwise_conv2d(x, w, b, strides, pads, dilations, auto_pad, "Identity"), None
        elif (fk.supports_dtype(x) and (b is None or b.dtype == x.dtype)
              and (z is None or z.shape == output_shape(x, w, strides, pads, dilations, auto_pad))):
            # bias, residual and activation inside the convolution's GEMM bands (conv_core)
            return conv_core(x, w, group, strides, pads, dilations, auto_pad,
                             post=(b, z, activation, activation_params), channels_last=_channels_last)
        else:
            y = conv_core(x, w, group, strides, pads, dilations, auto_pad)  # a fresh array: ours to write
        fast = fk.supports_dtype(y) and y.flags.c_contiguous
        if fast and (z is None or z.shape == y.shape):
            return fk.epilogue(y, b, activation, activation_params, z)
        if b is not None:
            y += b.reshape((-1,) + (1,) * (y.ndim - 2))
        if z is not None:
            y = np.add(y, z)  # Add's broadcasting; may grow y, so not in place
        return activate_inplace(y, activation, activation_params)
