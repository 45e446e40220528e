"""The contract between operator kernels and the rest of the engine.

One op (family) per file. Each op is a subclass of :class:`Op`, registered explicitly with the
opset range it implements::

    @register("Relu", since=6)
    class Relu(Op):
        def compute(self, x):
            return np.maximum(x, 0).astype(x.dtype, copy=False)

``compute(*inputs, **attrs)`` receives numpy arrays (``None`` for an omitted optional input)
and the node's attributes with defaults filled in, and returns one array or a tuple of arrays.
A single-output op may also take ``out=None`` (destination passing, lesson 09): given an array
of the output's shape and dtype -- the session's view into its arena -- it writes the result
there and returns ``out``. ``out`` may be the very bytes of an input that dies at this node
(in-place reuse, allowed only for ops whose output element i needs input element i alone).

Shape and dtype inference follow MindSpore's ``infer_shape``/``infer_dtype`` split:
``infer_dtype`` and ``infer_shape`` each get an :class:`InferContext`. The defaults cover
elementwise ops (numpy broadcasting, dtype of the first input); ops override what differs.
Both raise :class:`~course.errors.ShapeError`/``DTypeError``/``OpAttributeError`` with a message
that does NOT name the node: the IR adds ``node 'name' (OpType):`` in front.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence

import numpy as np

from course.errors import OpAttributeError, ShapeError
from course.ops.types import Dim, Shape, TensorType

REQUIRED = object()  # attribute default meaning "the node must set it"


@dataclass
class InferContext:
    """What shape/dtype inference may look at for one node."""

    inputs: list[Optional[TensorType]]  # None for an omitted optional input
    consts: list[Optional[np.ndarray]]  # value of an input when it is a known constant
    attrs: dict[str, Any] = field(default_factory=dict)  # defaults filled in
    num_outputs: int = 1  # outputs the node declares (Split without sizes needs it)

    def shape(self, i: int) -> Shape:
        t = self.inputs[i] if i < len(self.inputs) else None
        return None if t is None else t.shape

    def dtype(self, i: int) -> Optional[np.dtype]:
        t = self.inputs[i] if i < len(self.inputs) else None
        return None if t is None else t.dtype

    def const(self, i: int) -> Optional[np.ndarray]:
        return self.consts[i] if i < len(self.consts) else None


def broadcast_dims(a: Dim, b: Dim) -> Dim:
    """Numpy broadcasting of one dim pair, symbolic dims included."""
    if a == 1:
        return b
    if b == 1 or a == b:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise ShapeError(f"cannot broadcast dims {a} and {b}")
    if a is None or b is None:
        return None
    return a if isinstance(a, int) else b if isinstance(b, int) else None


def broadcast_shapes(*shapes: Shape) -> Shape:
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = [1] * rank
    for s in shapes:
        padded = (1,) * (rank - len(s)) + tuple(s)
        out = [broadcast_dims(x, y) for x, y in zip(out, padded)]
    return tuple(out)


def _check_attr_type(name: str, value: Any, default: Any) -> None:
    """An attribute whose default has a type must come with that type (ints for int attributes,
    ints or floats for float ones...): a model that sets ``axis="a"`` fails here with a clear
    message instead of deep inside a kernel. Attributes defaulting to None/REQUIRED are unchecked."""
    ok = {int: lambda v: isinstance(v, (int, np.integer)),
          float: lambda v: isinstance(v, (int, float, np.integer, np.floating)),
          str: lambda v: isinstance(v, str),
          list: lambda v: isinstance(v, (list, tuple))}.get(type(default))
    if ok is not None and not ok(value):
        raise OpAttributeError(f"attribute {name!r} must be {_KIND[type(default)]}, got "
                               f"{type(value).__name__} {value!r}")


_KIND = {int: "an int", float: "a float", str: "a string", list: "a list"}


class Op:
    """Base class of every operator. Subclasses set the class attributes below."""

    op_type: ClassVar[str] = ""
    domain: ClassVar[str] = ""
    since: ClassVar[int] = 1
    until: ClassVar[Optional[int]] = None  # last opset version implemented (inclusive); None = open
    # name -> default value (REQUIRED when the node must set it). Unknown attributes are an error.
    attrs: ClassVar[dict[str, Any]] = {}
    # (min, max) number of inputs / outputs; max None = variadic.
    num_inputs: ClassVar[tuple[int, Optional[int]]] = (1, 1)
    num_outputs: ClassVar[tuple[int, Optional[int]]] = (1, 1)
    # When True the runtime passes ``_num_outputs=<outputs the node declares>`` to compute (Split
    # without sizes, Dropout/MaxPool optional outputs); otherwise extra outputs are simply dropped.
    wants_num_outputs: ClassVar[bool] = False

    # --- attributes -------------------------------------------------------------------------
    def resolve_attrs(self, given: dict[str, Any]) -> dict[str, Any]:
        """Check names and fill defaults; raises OpAttributeError (no node name in the message)."""
        unknown = sorted(set(given) - set(self.attrs))
        if unknown:
            raise OpAttributeError(f"unknown attribute(s) {unknown}; {self.op_type} takes {sorted(self.attrs)}")
        out = {}
        for name, default in self.attrs.items():
            if name in given:
                _check_attr_type(name, given[name], default)
                out[name] = given[name]
            elif default is REQUIRED:
                raise OpAttributeError(f"required attribute {name!r} is missing")
            else:
                out[name] = default
        return out

    # --- inference ----------------------------------------------------------------------------
    def infer_dtype(self, ctx: InferContext) -> Sequence[Optional[np.dtype]]:
        return [ctx.dtype(0)]

    def infer_shape(self, ctx: InferContext) -> Sequence[Shape]:
        return [broadcast_shapes(*(t.shape if t is not None else None for t in ctx.inputs if t is not None))]

    def infer(self, ctx: InferContext) -> list[TensorType]:
        dtypes = list(self.infer_dtype(ctx))
        shapes = list(self.infer_shape(ctx))
        return [TensorType(d if d is not None else np.float32, s) if d is not None else None
                for d, s in zip(dtypes, shapes)]

    # --- execution ----------------------------------------------------------------------------
    def compute(self, *inputs: Optional[np.ndarray], **attrs: Any):
        raise NotImplementedError(f"{type(self).__name__}.compute")
