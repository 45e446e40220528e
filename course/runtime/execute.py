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
    """Run every step over ``slots`` (inputs and constants already placed); returns ``slots``."""
    ours = [p for p in bound.providers if not p.isolated]
    with contextlib.ExitStack() as stack:
        for p in bound.providers:
            stack.enter_context(p.running())
        for st, fn, isolated, expect in zip(bound.plan.steps, bound.kernels, bound.isolated, bound.expect):
            args = [slots[i] if i >= 0 else None for i in st.ins]
            if isolated and ours:
                with contextlib.ExitStack() as pause:
                    for p in ours:
                        pause.enter_context(p.paused())
                    out = _call(st.spec, fn, args)
            else:
                out = _call(st.spec, fn, args)
            _store(st, out, expect, slots)
    return slots


def _call(spec: NodeSpec, fn, args):
    try:
        out = fn(*args)
    except EngineError as e:
        msg = str(e)
        raise (e if msg.startswith(prefix(spec)) else type(e)(prefix(spec) + msg)) from None
    except Exception as e:
        raise KernelError(f"{prefix(spec)}kernel failed: {type(e).__name__}: {e}") from e
    return out if type(out) is tuple else (out,)


def _store(st, out: tuple, expect: tuple, slots: list) -> None:
    if len(out) < len(st.outs):
        raise KernelError(f"{prefix(st.spec)}kernel returned {len(out)} output(s), "
                          f"the node needs {len(st.outs)}")
    for s, arr, (dtype, shape) in zip(st.outs, out, expect):
        if s < 0:
            continue
        if type(arr) is not np.ndarray or arr.dtype != dtype or (shape is not None and arr.shape != shape):
            arr = _check_output(st.spec, arr, dtype, shape)
        slots[s] = arr
    for s in st.free:
        slots[s] = None


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
