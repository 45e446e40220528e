"""Elementwise ops on the device, all through ``kernels/fused_elementwise.py``'s generator.

A FusedElementwise node already carries its program; a single op (Relu, Add, LeakyRelu, ...) is
the one-line program ``t0 = Op(x0, x1)``, so both compile to the same kind of grid-stride
``@cuda.jit`` kernel over flat arrays. Inputs made on the device have the output's shape (the
claim checks); a constant input is broadcast to that shape on the host and uploaded once.
"""
from __future__ import annotations

import functools

import numpy as np

from course.ops.fused_elementwise import ELEMENTWISE, Step, format_step
from course.providers.base import NodeSpec
from kernels.fused_elementwise import MAX_BLOCKS, make_kernel
from kernels.launch import THREADS, ceil_div

# the single ops the generator knows with attributes (Clip takes its bounds as inputs: not here)
SINGLE = frozenset(ELEMENTWISE) - {"Clip"}


def program_of(spec: NodeSpec) -> str:
    """The FusedElementwise program that computes ``spec``'s node."""
    if spec.op_type == "FusedElementwise":
        return spec.attrs["program"]
    arity, names = ELEMENTWISE[spec.op_type]
    args = tuple(f"x{i}" for i in range(arity))
    return format_step(Step("t0", spec.op_type, args, {k: float(spec.attrs[k]) for k in names}))


def activation_program(activation: str, params=()) -> str:
    """The one-step program of a fused activation (a FusedGemm's): ``t0 = LeakyRelu(x0, alpha=0.1)``."""
    return format_step(Step("t0", activation, ("x0",), dict(zip(ELEMENTWISE[activation][1], map(float, params)))))


def run_program(state, *inputs, kernel, shape):
    """One launch of ``kernel`` over ``inputs`` (device arrays of ``shape``, or host constants)."""
    shape = tuple(shape) if shape is not None else tuple(next(x for x in inputs if not isinstance(x, np.ndarray)).shape)
    size = int(np.prod(shape))
    flat = [state.on_device(x, ("broadcast", shape), functools.partial(_broadcast, shape=shape)).reshape((size,))
            for x in inputs]
    out = state.empty((size,))
    if size:
        # Launch configuration: THREADS per block, enough blocks to cover size, capped (grid-stride loop).
        blocks = max(1, min(MAX_BLOCKS, ceil_div(size, THREADS)))
        state.launch(kernel, blocks, THREADS, out, *flat)
    return out.reshape(shape)


def _broadcast(x: np.ndarray, shape) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(x, shape), dtype=np.float32)


def make_elementwise(state, spec: NodeSpec):
    out_shape = spec.outputs[0][1]
    static = all(isinstance(d, int) for d in out_shape)
    return functools.partial(run_program, state, kernel=make_kernel(program_of(spec), "cuda"),
                             shape=tuple(out_shape) if static else None)
