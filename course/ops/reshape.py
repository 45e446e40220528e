"""Reshape (shape input: 0 copies the input dim unless allowzero, -1 is inferred)."""
from __future__ import annotations

from course.errors import ShapeError
from course.ops._common import as_ints, dim_product
from course.ops.base import InferContext, Op
from course.ops.registry import register


def target_shape(in_shape, spec, allowzero=0):
    """Resolve a Reshape spec against in_shape (dims may be symbolic); ShapeError if impossible."""
    if sum(v == -1 for v in spec) > 1:
        raise ShapeError(f"shape {spec} has more than one -1")
    if any(v < -1 for v in spec) or (allowzero and 0 in spec and -1 in spec):
        raise ShapeError(f"shape {spec} is not a valid Reshape target")
    out = []
    for i, v in enumerate(spec):
        if v == 0 and not allowzero:
            if i >= len(in_shape):
                raise ShapeError(f"shape {spec}: 0 at position {i} but the input has rank {len(in_shape)}")
            out.append(in_shape[i])
        else:
            out.append(v)
    if -1 in out:
        out[out.index(-1)] = _infer_minus_one(in_shape, [d for d in out if d != -1], spec)
    total, new = dim_product(in_shape), dim_product(out)
    if total is not None and new is not None and total != new:
        raise ShapeError(f"cannot reshape {tuple(in_shape)} ({total} elements) to {spec}")
    return tuple(out)


def _infer_minus_one(in_shape, others, spec):
    """The -1 dim: a plain division when sizes are known; a symbol that cancels out otherwise."""
    syms_in = [d for d in in_shape if not isinstance(d, int)]
    syms_out = [d for d in others if not isinstance(d, int)]
    num_in = dim_product([d for d in in_shape if isinstance(d, int)])
    num_out = dim_product([d for d in others if isinstance(d, int)])
    if num_out == 0 or (num_in % num_out):
        if not syms_in:
            raise ShapeError(f"cannot reshape {tuple(in_shape)} to {spec}")
        return None
    rest = [s for s in syms_in]
    for s in syms_out:
        if s in rest and s is not None:
            rest.remove(s)
        else:
            return None
    if not rest:
        return num_in // num_out
    return rest[0] if len(rest) == 1 and rest[0] is not None and num_in == num_out else None


@register("Reshape", since=5)
class Reshape(Op):
    num_inputs = (2, 2)

    def infer_shape(self, ctx: InferContext):
        x, spec = ctx.shape(0), ctx.const(1)
        if spec is None:
            s = ctx.shape(1)
            return [None if s is None or not isinstance(s[0], int) else (None,) * s[0]]
        return [None if x is None else target_shape(x, as_ints(spec), ctx.attrs.get("allowzero", 0))]

    def compute(self, x, shape, allowzero=0):
        return x.reshape(target_shape(x.shape, as_ints(shape), allowzero))


@register("Reshape", since=14)
class Reshape14(Reshape):
    attrs = {"allowzero": 0}
