"""Workspaces: scratch a kernel needs while it runs (im2col matrices, Winograd tiles).

A step declares how many bytes; the planner places them like a tensor that lives for that one
step, so the scratch of one convolution reuses the bytes of tensors that are already dead.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, Optional

import numpy as np

from course.memory.liveness import Interval
from course.memory.sizes import DEFAULT_ALIGNMENT, static_shape, tensor_bytes


def workspace_key(step: int) -> tuple[str, int]:
    """The key a step's scratch goes by among the tensors."""
    return ("workspace", step)


def add_workspaces(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int],
                   workspaces: Mapping[int, int], alignment: int = DEFAULT_ALIGNMENT) -> tuple[dict, dict]:
    """Copies of ``intervals`` and ``sizes`` with ``workspace_key(step)`` living at ``step``
    only, ``workspaces[step]`` bytes rounded up to ``alignment`` (steps asking 0 bytes: none)."""
    intervals, sizes = dict(intervals), dict(sizes)
    for step, nbytes in workspaces.items():
        if nbytes > 0:
            intervals[workspace_key(step)] = (step, step)
            sizes[workspace_key(step)] = tensor_bytes(np.uint8, (nbytes,), alignment)
    return intervals, sizes


def im2col_bytes(spec: Any) -> int:
    """Scratch of a Conv done as im2col + GEMM, one image and one group at a time: a column
    matrix of (C/group * taps) rows by output positions (a NodeSpec read by attribute; 0 for
    other ops or unknown shapes)."""
    if spec.op_type not in ("Conv", "FusedConv"):
        return 0
    w, y = static_shape(spec.inputs[1][1]), static_shape(spec.outputs[0][1])
    if w is None or y is None:
        return 0
    taps = int(np.prod(w[2:]))
    if taps == 1 and all(s == 1 for s in spec.attrs.get("strides") or [1]):
        return 0  # a pointwise convolution reads its input as the matrix itself
    return w[1] * taps * int(np.prod(y[2:])) * np.dtype(spec.outputs[0][0]).itemsize


def plan_workspaces(plan: Any, estimate: Optional[Callable[[Any], int]] = None) -> dict[int, int]:
    """``{step: scratch bytes}`` for a runtime plan, by ``estimate(spec)`` (im2col by default)."""
    estimate = estimate or im2col_bytes
    return {i: n for i, st in enumerate(plan.steps) if (n := estimate(st.spec)) > 0}
