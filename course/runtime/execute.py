"""Running a bound plan: fetch each step's input slots, call its kernel, check and store the
outputs, drop the slots nobody reads any more.

Errors name the node: an ``EngineError`` a kernel raises gets ``node 'name' (OpType):`` in front;
any other exception becomes a ``KernelError`` saying which node's kernel failed and how.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np

from course.errors import EngineError, KernelError
from course.providers.base import NodeSpec
from course.runtime.plan import BoundPlan


def prefix(spec: NodeSpec) -> str:
    return f"node {spec.name!r} ({spec.op_type}): "


def execute(bound: BoundPlan, slots: list) -> list:
    """Run every step over ``slots`` (inputs and constants already placed); returns ``slots``.
    The loop is written out flat: on a model of small ops (ShuffleNet's reshapes and splits) each
    function call per step is a measurable share of the run."""
    ours = [p for p in bound.providers if not p.isolated]
    with contextlib.ExitStack() as stack:
        for p in bound.providers:
            stack.enter_context(p.running())
        for st, fn, isolated, expect in zip(bound.plan.steps, bound.kernels, bound.isolated, bound.expect):
            args = [slots[i] if i >= 0 else None for i in st.ins]
            try:
                if isolated and ours:
                    out = _paused(ours, fn, args)
                else:
                    out = fn(*args)
            except Exception as e:
                raise _failed(st.spec, e) from (None if isinstance(e, EngineError) else e)
            if type(out) is not tuple:
                out = (out,)
            if len(out) < len(st.outs):
                raise KernelError(f"{prefix(st.spec)}kernel returned {len(out)} output(s), "
                                  f"the node needs {len(st.outs)}")
            for s, arr, (dtype, shape) in zip(st.outs, out, expect):
                if s >= 0:
                    if type(arr) is not np.ndarray or arr.dtype != dtype or (shape is not None and arr.shape != shape):
                        arr = _check_output(st.spec, arr, dtype, shape)
                    slots[s] = arr
            for s in st.free:
                slots[s] = None
    return slots


def _paused(ours, fn, args):
    """Call an isolated provider's kernel with every provider of ours paused around it."""
    with contextlib.ExitStack() as pause:
        for p in ours:
            pause.enter_context(p.paused())
        return fn(*args)


def _failed(spec: NodeSpec, e: Exception) -> Exception:
    """The error to raise for a kernel that raised ``e``: an EngineError with the node in front,
    anything else as a KernelError naming the node."""
    if isinstance(e, EngineError):
        msg = str(e)
        return e if msg.startswith(prefix(spec)) else type(e)(prefix(spec) + msg)
    return KernelError(f"{prefix(spec)}kernel failed: {type(e).__name__}: {e}")


def _check_output(spec: NodeSpec, arr, dtype, shape: Optional[tuple]) -> np.ndarray:
    """Slow path of the output check: accept numpy scalars, explain anything else."""
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    if not isinstance(arr, np.ndarray):
        raise KernelError(f"{prefix(spec)}kernel returned {type(arr).__name__}, not a numpy array")
    if dtype is not None and arr.dtype != dtype:
        raise KernelError(f"{prefix(spec)}kernel returned dtype {arr.dtype}, expected {dtype}")
    if shape is not None and arr.shape != shape:
        raise KernelError(f"{prefix(spec)}kernel returned shape {arr.shape}, expected {shape}")
    return arr
