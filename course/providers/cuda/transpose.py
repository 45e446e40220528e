"""Transpose on the device: a matrix goes through ``kernels/transpose.py``'s padded shared-memory
kernel (coalesced reads and writes, no bank conflicts); any other permutation through a gather,
one thread per output element, that walks the output index from the last axis to the first."""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from course.providers.base import NodeSpec
from kernels.launch import THREADS, ceil_div
from kernels.transpose import transpose_padded_kernel


@cuda.jit
def permute_kernel(y, x, out_shape, src_strides):
    """y[i] = x[sum_d index_d(i) * src_strides[d]] for flat y, x; index_d is i's digit in out_shape."""
    i = cuda.grid(1)
    if i < y.shape[0]:
        rest = i
        src = 0
        for k in range(len(out_shape)):
            d = len(out_shape) - 1 - k
            src += (rest % out_shape[d]) * src_strides[d]
            rest //= out_shape[d]
        y[i] = x[src]


def transpose(state, x, *, perm):
    shape = tuple(x.shape)
    perm = tuple(perm) if perm else tuple(reversed(range(len(shape))))
    out_shape = tuple(shape[p] for p in perm)
    y = state.empty(out_shape)
    size = int(np.prod(shape))
    if not size:
        return y
    if perm == (1, 0):
        tile, rows = transpose_padded_kernel.tiling
        # Launch configuration: (tile, rows) threads; one block per tile x tile tile of x.
        state.launch(transpose_padded_kernel, (ceil_div(shape[1], tile), ceil_div(shape[0], tile)), (tile, rows), y, x)
        return y
    strides = [int(np.prod(shape[d + 1:])) for d in range(len(shape))]  # x's element strides
    # Launch configuration: one thread per output element, THREADS per block.
    state.launch(permute_kernel, ceil_div(size, THREADS), THREADS, y.reshape((size,)), x.reshape((size,)),
                 out_shape, tuple(strides[p] for p in perm))
    return y


def make_transpose(state, spec: NodeSpec):
    return functools.partial(transpose, state, perm=spec.attrs.get("perm"))
