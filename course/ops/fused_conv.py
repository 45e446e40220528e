"""FusedConv (domain "course"): Conv followed by an activation, applied in place on its output.

Written by the ``FuseConvActivation`` pass, never by model authors. ``activation`` is "Relu",
"Clip" (``activation_params`` = [min, max]) or "LeakyRelu" (``activation_params`` = [alpha]).
The results are bit for bit those of the two separate nodes; what is saved is a full-size
temporary and passes over memory: bias and activation run as one compiled pass, and a 3x3
depthwise convolution (MobileNet's) runs a compiled kernel with both fused into its inner loop
(course/ops/_fused_kernels.py). float16 takes the plain numpy route.
"""
from __future__ import annotations

import numpy as np

from course.errors import OpAttributeError, ShapeError
from course.ops.base import REQUIRED, InferContext, Op
from course.ops.conv import CONV_ATTRS, Conv, conv_core
from course.ops.registry import register

ACTIVATIONS = {"Relu": 0, "Clip": 2, "LeakyRelu": 1}  # name -> number of activation_params


def check_activation(activation, params) -> None:
    if ACTIVATIONS.get(activation) != len(params or []):
        raise OpAttributeError(f"activation {activation!r} with {len(params or [])} parameter(s) is not "
                               f"supported; expected one of {ACTIVATIONS} (name: parameter count)")


def activate_inplace(y: np.ndarray, activation: str, params) -> np.ndarray:
    """Apply the activation to ``y`` in place, with the same rounding as the standalone kernels."""
    check_activation(activation, params)
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
    num_inputs = (2, 3)

    def infer_shape(self, ctx: InferContext):
        check_activation(ctx.attrs["activation"], ctx.attrs["activation_params"])
        return Conv.infer_shape(self, ctx)

    def compute(self, x, w, b=None, activation="Relu", activation_params=(), auto_pad="NOTSET",
                dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
        check_activation(activation, activation_params)
        from course.ops import _fused_kernels as fk  # imports numba: only once a FusedConv runs

        if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
            raise ShapeError(f"kernel_shape {list(kernel_shape)} does not match W {w.shape}")
        if fk.supports_depthwise(x, w, group):
            return fk.depthwise_conv2d(x, w, b, strides, pads, dilations, auto_pad, activation, activation_params)
        y = conv_core(x, w, group, strides, pads, dilations, auto_pad)  # a fresh array: ours to write
        if fk.supports_dtype(y) and y.flags.c_contiguous:
            return fk.bias_activation(y, b, activation, activation_params)
        if b is not None:
            y += b.reshape((-1,) + (1,) * (y.ndim - 2))
        return activate_inplace(y, activation, activation_params)
