"""Softmax on the device: ``kernels/softmax.py``'s row kernel (one block per row, max-subtracted).

The input is viewed as (rows, cols) with cols the product of the dims from ``axis`` on: the last
dim for opset 13 (the claim checks that axis is the last), the flattened tail for opsets < 13,
whose Softmax coerces its input to 2-D exactly so.
"""
from __future__ import annotations

import functools

import numpy as np

from course.providers.base import NodeSpec
from kernels.softmax import THREADS, softmax_rows_kernel


def softmax(state, x, *, axis: int):
    shape = tuple(x.shape)
    ax = axis % len(shape)
    rows, cols = int(np.prod(shape[:ax])), int(np.prod(shape[ax:]))
    y = state.empty((rows, cols))
    if rows and cols:
        # Launch configuration: one block per row, THREADS threads stride along the row.
        state.launch(softmax_rows_kernel, rows, THREADS, y, x.reshape((rows, cols)))
    return y.reshape(shape)


def make_softmax(state, spec: NodeSpec):
    return functools.partial(softmax, state, axis=int(spec.attrs["axis"]))
