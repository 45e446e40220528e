"""FusedGemm (domain "course"): Gemm followed by an activation, ``Y = activation(Gemm(A, B, C))``,
as onnxruntime's com.microsoft FusedGemm.

Written by the ``FuseGemmActivation`` pass, never by model authors. ``activation`` is "Relu",
"Sigmoid", "Tanh", "LeakyRelu" (``activation_params`` = [alpha]) or "Clip" ([min, max]).
The activation runs through the reference op of that name on Gemm's result, so the output is
bit for bit that of the two nodes run one after the other.
"""
from __future__ import annotations

from course.errors import OpAttributeError
from course.ops.base import REQUIRED, InferContext, Op
from course.ops.fused_elementwise import Step, run_step
from course.ops.gemm import Gemm
from course.ops.registry import register

# activation -> the names of its activation_params, in order (the reference op's attributes)
ACTIVATIONS = {"Relu": (), "Sigmoid": (), "Tanh": (), "LeakyRelu": ("alpha",), "Clip": ("min", "max")}


def check_activation(activation, params) -> None:
    names = ACTIVATIONS.get(activation)
    if names is None or len(names) != len(params or []):
        raise OpAttributeError(f"activation {activation!r} with {len(params or [])} parameter(s) is not "
                               f"supported; expected one of {ACTIVATIONS} (name: parameter names)")


@register("FusedGemm", since=1, domain="course")
class FusedGemm(Op):
    attrs = {**Gemm.attrs, "activation": REQUIRED, "activation_params": []}
    num_inputs = (2, 3)

    def infer_shape(self, ctx: InferContext):
        check_activation(ctx.attrs["activation"], ctx.attrs["activation_params"])
        return Gemm.infer_shape(self, ctx)

    def compute(self, a, b, c=None, activation="Relu", activation_params=(), alpha=1.0, beta=1.0,
                transA=0, transB=0):
        check_activation(activation, activation_params)
        y = Gemm.compute(self, a, b, c, alpha=alpha, beta=beta, transA=transA, transB=transB)
        step = Step("y", activation, ("x0",), dict(zip(ACTIVATIONS[activation], activation_params)))
        return run_step(step, [y])
