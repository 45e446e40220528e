"""Helpers for the CPU provider's tests: node specs built by hand, the reference op to compare
with, and tolerances derived from the reduction length K and the dtype."""
from __future__ import annotations

import numpy as np

from course.ops.registry import lookup
from course.providers.base import NodeSpec

F32 = np.dtype(np.float32)
EPS = float(np.finfo(np.float32).eps)


def rng(seed=0):
    return np.random.default_rng(seed)


def frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy, as a session's weights are."""
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def channels_last(x: np.ndarray) -> np.ndarray:
    """x with the same values, laid out channels last (an NCHW view of an NHWC array)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def is_channels_last(y: np.ndarray) -> bool:
    return y.ndim == 4 and not y.flags.c_contiguous and y.transpose(0, 2, 3, 1).flags.c_contiguous


def reference(op_type, opset, domain, inputs, attrs):
    return lookup(op_type, opset, domain).compute(*inputs, **attrs)


def spec_for(op_type, inputs, attrs, out_shape, opset=None, domain="", marks=None, consts=(1, 2)):
    opset = opset or (1 if domain else 13)
    return NodeSpec(f"{op_type.lower()}_node", op_type, domain, opset, dict(attrs),
                    [None if a is None else (a.dtype, a.shape) for a in inputs], [(F32, tuple(out_shape))],
                    dict(marks or {}), consts)


def conv_spec(x, w, b=None, z=None, attrs=None, activation=None, params=(), marks=None):
    """(spec, inputs, reference output) of a Conv (activation None) or a FusedConv node."""
    attrs = dict(attrs or {})
    if activation is None:
        inputs = [x, w, b]
        want = reference("Conv", 11, "", inputs, attrs)
        return spec_for("Conv", inputs, attrs, want.shape, 11, marks=marks), inputs, want
    attrs.update(activation=activation, activation_params=list(params))
    inputs = [x, w, b, z]
    want = reference("FusedConv", 1, "course", inputs, attrs)
    return spec_for("FusedConv", inputs, attrs, want.shape, 1, "course", marks), inputs, want


def assert_close(got, want, k, c=16.0):
    """float32 results of sums of ``k`` products, computed in another order: within c * k * eps
    relative to the result's scale."""
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = c * max(k, 1) * EPS
    scale = max(1.0, float(np.nanmax(np.abs(want))) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)
