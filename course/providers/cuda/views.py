"""Ops that only change a shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity): on the device
they are a view of the same memory, no kernel and no copy. The output shape is the node's static
one, or, with a symbolic dim, the op's own shape inference run on the real input shape
(``output_shapes``, which Split uses too)."""
from __future__ import annotations

import functools

import numpy as np

from course.ops import registry
from course.ops.base import InferContext
from course.ops.types import TensorType
from course.providers.base import NodeSpec

VIEWS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})


def static_shapes(spec: NodeSpec):
    """The node's output shapes when all are static, else None (known only at run time)."""
    shapes = [t[1] for t in spec.outputs]
    return [tuple(s) for s in shapes] if all(all(isinstance(d, int) for d in s) for s in shapes) else None


def output_shapes(spec: NodeSpec, x, consts) -> list[tuple]:
    """The op's shape inference on device array ``x`` (input 0) and the constant inputs after it."""
    op = registry.lookup(spec.op_type, spec.opset, spec.domain)
    types = [TensorType(x.dtype, tuple(x.shape))] + [None if c is None else TensorType(c.dtype, c.shape)
                                                   for c in consts]
    values = [None, *(None if c is None else np.asarray(c) for c in consts)]
    return [tuple(s) for s in op.infer_shape(InferContext(types, values, dict(spec.attrs), len(spec.outputs)))]


def view(x, *consts, spec: NodeSpec, shape):
    return x.reshape(shape if shape is not None else output_shapes(spec, x, consts)[0])


def make_view(state, spec: NodeSpec):
    static = static_shapes(spec)
    return functools.partial(view, spec=spec, shape=None if static is None else static[0])
