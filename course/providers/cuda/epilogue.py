"""Epilogues: the elementwise kernels that finish a matmul on the device.

* ``conv_epilogue_kernel``: the im2col product is (F, N*P) (filters x all output positions of
  the batch); it is written out as NCHW (N, F, P) while adding the bias, a FusedConv's residual
  Z and its activation, in the order the reference rounds them: ((conv + b) + z) then act.
* ``gemm_epilogue_kernel``: Y = alpha * (A @ B) + beta * C in place, C broadcast along any axis
  of length 1 (``C[r % cm, c % cn]``).

One thread per output element, the bounds guard first. The activation is written inline (no
device function) so the kernels type and lower without a GPU (tests/test_provider_cuda.py).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import cuda, float32

from kernels.launch import THREADS, ceil_div

IDENTITY, RELU, LEAKY_RELU, CLIP = 0, 1, 2, 3
ACTIVATIONS = {"Identity": IDENTITY, "Relu": RELU, "LeakyRelu": LEAKY_RELU, "Clip": CLIP}


class Activation(NamedTuple):
    """Which activation (``ACTIVATIONS``) and its parameters: alpha for LeakyRelu, lo/hi for Clip."""

    kind: int
    alpha: np.float32
    lo: np.float32
    hi: np.float32

    @classmethod
    def of(cls, name: str, params=()) -> "Activation":
        p = [np.float32(v) for v in params] + [np.float32(0)] * 2
        if name == "LeakyRelu":
            return cls(LEAKY_RELU, p[0], np.float32(0), np.float32(0))
        return cls(ACTIVATIONS[name], np.float32(0), p[0], p[1])


@cuda.jit
def conv_epilogue_kernel(y, mat, bias, z, planes, act, use_bias, use_z):
    """y[(n*F + f)*P + p] = act(mat[f, n*P + p] + bias[f] + z[...]) for y flat NCHW, P = planes."""
    i = cuda.grid(1)
    if i < y.shape[0]:
        filters = mat.shape[0]
        p = i % planes
        f = (i // planes) % filters
        n = i // (planes * filters)
        v = mat[f, n * planes + p]
        if use_bias:
            v += bias[f]
        if use_z:
            v += z[i]
        if act.kind == RELU:
            v = max(v, float32(0.0))
        elif act.kind == LEAKY_RELU:
            if v < 0:
                v = v * act.alpha
        elif act.kind == CLIP:
            v = min(max(v, act.lo), act.hi)  # max first: hi wins when lo > hi, as ONNX says
        y[i] = v


@cuda.jit
def gemm_epilogue_kernel(y, c, alpha, beta, use_c):
    """y = alpha * y + beta * c in place, for y (M, N) and c (cm, cn) with cm in {1, M}, cn in {1, N}."""
    i = cuda.grid(1)
    if i < y.shape[0] * y.shape[1]:
        r = i // y.shape[1]
        col = i % y.shape[1]
        v = alpha * y[r, col]
        if use_c:
            v += beta * c[r % c.shape[0], col % c.shape[1]]
        y[r, col] = v


def conv_epilogue(state, y_flat, mat, bias, z_flat, planes: int, act: Activation) -> None:
    # Launch configuration: one thread per output element, THREADS per block.
    n = y_flat.shape[0]
    if n:
        state.launch(conv_epilogue_kernel, ceil_div(n, THREADS), THREADS, y_flat, mat,
                     bias if bias is not None else state.constant(_NO_VECTOR),
                     z_flat if z_flat is not None else state.constant(_NO_VECTOR),
                     planes, act, bias is not None, z_flat is not None)


def gemm_epilogue(state, y, c, alpha: float, beta: float) -> None:
    # Launch configuration: one thread per element of y, THREADS per block.
    n = y.shape[0] * y.shape[1]
    if n:
        state.launch(gemm_epilogue_kernel, ceil_div(n, THREADS), THREADS, y,
                     c if c is not None else state.constant(_NO_MATRIX),
                     np.float32(alpha), np.float32(beta), c is not None)


_NO_VECTOR = np.zeros(1, np.float32)  # stands in for an absent bias / residual (never read)
_NO_MATRIX = np.zeros((1, 1), np.float32)
