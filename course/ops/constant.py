"""Constant: a tensor given by exactly one of its value attributes."""
from __future__ import annotations

import numpy as np

from course.errors import OpAttributeError
from course.ops.base import InferContext, Op
from course.ops.registry import register

_VALUE_ATTRS = {  # attribute -> how to turn it into an array
    "value": lambda v: np.asarray(v),
    "value_float": lambda v: np.array(v, dtype=np.float32),
    "value_floats": lambda v: np.array(v, dtype=np.float32).reshape(-1),
    "value_int": lambda v: np.array(v, dtype=np.int64),
    "value_ints": lambda v: np.array(v, dtype=np.int64).reshape(-1),
    "value_string": lambda v: np.array(v, dtype=object),
    "value_strings": lambda v: np.array(list(v), dtype=object).reshape(-1),
}


def constant_value(attrs) -> np.ndarray:
    given = [k for k in attrs if attrs[k] is not None]
    if len(given) != 1:
        raise OpAttributeError(f"Constant needs exactly one value attribute, got {given or 'none'}")
    if given[0] == "sparse_value":
        raise OpAttributeError("sparse_value is not supported")
    return _VALUE_ATTRS[given[0]](attrs[given[0]])


@register("Constant", since=1)
class Constant(Op):
    attrs = {"value": None}
    num_inputs = (0, 0)

    def infer_dtype(self, ctx: InferContext):
        return [constant_value(ctx.attrs).dtype]

    def infer_shape(self, ctx: InferContext):
        return [constant_value(ctx.attrs).shape]

    def compute(self, **attrs):
        return constant_value(attrs)


@register("Constant", since=11)
class Constant11(Constant):
    attrs = {"sparse_value": None, "value": None}


@register("Constant", since=12)
class Constant12(Constant):
    attrs = {k: None for k in ["sparse_value", *_VALUE_ATTRS]}
