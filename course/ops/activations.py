"""Activation functions: Relu, LeakyRelu, Sigmoid, Tanh (dtype preserved)."""
from __future__ import annotations

import numpy as np

from course.ops._common import write_out
from course.ops.registry import register
from course.ops.unary import _Unary


@register("Relu", since=6)
class Relu(_Unary):
    float_only = False  # opset 14 adds signed integer types

    def compute(self, x, out=None):
        return np.maximum(x, x.dtype.type(0), out=out)


@register("LeakyRelu", since=6)
class LeakyRelu(_Unary):
    attrs = {"alpha": 0.01}

    def compute(self, x, alpha=0.01, out=None):
        # alpha is cast to x's type first so float32 stays float32.
        return write_out(out, np.where(x >= 0, x, x * x.dtype.type(alpha)))


@register("Sigmoid", since=6)
class Sigmoid(_Unary):
    def compute(self, x, out=None):
        # Stable for large |x|: exp of a non-positive number only.
        e = np.exp(-np.abs(x))
        return write_out(out, np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False))


@register("Tanh", since=6)
class Tanh(_Unary):
    def compute(self, x, out=None):
        return np.tanh(x, out=out)
