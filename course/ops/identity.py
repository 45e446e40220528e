"""Identity and Dropout; in inference Dropout is the identity and its mask is all True."""
from __future__ import annotations

import numpy as np

from course.errors import OpAttributeError
from course.ops.base import InferContext, Op
from course.ops.registry import register


@register("Identity", since=1)
class Identity(Op):
    def infer_shape(self, ctx: InferContext):
        return [ctx.shape(0)]

    def compute(self, x):
        return x  # no copy: the runtime never writes into a kernel's inputs


@register("Dropout", since=7)
class Dropout(Op):
    attrs = {"ratio": 0.5}
    num_outputs = (1, 2)
    wants_num_outputs = True

    def infer_dtype(self, ctx: InferContext):
        return [ctx.dtype(0), np.dtype(np.bool_)]

    def infer_shape(self, ctx: InferContext):
        return [ctx.shape(0), ctx.shape(0)]

    def compute(self, x, ratio=0.5, _num_outputs=1):
        return x if _num_outputs == 1 else (x, np.ones(x.shape, dtype=np.bool_))


@register("Dropout", since=12)
class Dropout12(Dropout):
    attrs = {"seed": None}
    num_inputs = (1, 3)

    def compute(self, x, ratio=None, training_mode=None, seed=None, _num_outputs=1):
        if training_mode is not None and bool(np.asarray(training_mode)):
            raise OpAttributeError("training_mode=True is not supported: this engine runs inference only")
        return super().compute(x, _num_outputs=_num_outputs)
