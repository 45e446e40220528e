"""FusedConv (domain "course"): Conv, plus an optional residual Z, then an activation:
``Y = activation(Conv(X, W, B) + Z)``.

Written by the ``FuseConvActivation`` and ``FuseConvAdd`` passes, never by model authors.
``activation`` is "Relu", "Clip" (``activation_params`` = [min, max]), "LeakyRelu"
(``activation_params`` = [alpha]) or "Identity" (none; only useful with Z). Z broadcasts like
Add's inputs. Each step rounds as the separate node would, so the result is bit for bit that of
Conv, Add and the activation run one after another.
"""
from __future__ import annotations

import numpy as np

from course.errors import DTypeError, OpAttributeError
from course.ops._common import write_out
from course.ops.base import REQUIRED, InferContext, Op, broadcast_shapes
from course.ops.conv import CONV_ATTRS, Conv, check_kernel_shape, conv_core
from course.ops.registry import register

ACTIVATIONS = {"Relu": 0, "Clip": 2, "LeakyRelu": 1, "Identity": 0}  # name -> number of activation_params


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
    elif activation == "LeakyRelu":
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

    def compute(self, x, w, b=None, z=None, activation="Relu", activation_params=(), auto_pad="NOTSET",
                dilations=None, group=1, kernel_shape=None, pads=None, strides=None, out=None):
        check_activation(activation, activation_params)
        check_kernel_shape(kernel_shape, w)
        if z is not None and z.dtype != x.dtype:
            raise DTypeError(f"Z has element type {z.dtype} but X has {x.dtype}")
        y = conv_core(x, w, group, strides, pads, dilations, auto_pad, out)  # fresh, or out: ours to write
        if b is not None:
            y += b.reshape((-1,) + (1,) * (y.ndim - 2))
        if z is not None:  # Add's broadcasting: in place unless Z makes Y bigger
            y = np.add(y, z, out=y) if np.broadcast_shapes(y.shape, z.shape) == y.shape else np.add(y, z)
        return write_out(out, activate_inplace(y, activation, activation_params))
