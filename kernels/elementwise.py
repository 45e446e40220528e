"""Elementwise kernels: ``map`` (one input) and ``zip`` (two inputs) with a grid-stride loop.

A grid-stride loop lets a fixed-size grid cover any ``n``: thread ``i`` handles elements
``i, i + stride, i + 2*stride, ...`` where ``stride`` is the total number of threads. Adjacent
threads touch adjacent elements on every iteration, so each warp's loads are coalesced.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from kernels.launch import THREADS, ceil_div, device_empty, to_device

MAX_BLOCKS = 1024  # cap the grid; the grid-stride loop covers the rest


@cuda.jit
def tensor_add_kernel(out, a, b):
    """out[i] = a[i] + b[i] for every i < out.size (1D arrays of equal length)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, out.shape[0], stride):
        out[i] = a[i] + b[i]


def make_map_kernel(fn):
    """Compile ``fn(x) -> y`` as a device function and return ``kernel(out, a)``: out[i] = fn(a[i])."""
    dev = cuda.jit(device=True)(fn)

    @cuda.jit
    def map_kernel(out, a):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, out.shape[0], stride):
            out[i] = dev(a[i])

    return map_kernel


def make_zip_kernel(fn):
    """Compile ``fn(x, y) -> z`` as a device function and return ``kernel(out, a, b)``."""
    dev = cuda.jit(device=True)(fn)

    @cuda.jit
    def zip_kernel(out, a, b):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, out.shape[0], stride):
            out[i] = dev(a[i], b[i])

    return zip_kernel


def _relu(x):
    return x if x > 0 else 0.0


def _exp(x):
    return math.exp(x)


def _mul(x, y):
    return x * y


relu_kernel = make_map_kernel(_relu)
exp_kernel = make_map_kernel(_exp)
mul_kernel = make_zip_kernel(_mul)


def _launch_1d(kernel, n: int, *arrays):
    # Launch configuration: THREADS per block, enough blocks to cover n, capped at MAX_BLOCKS.
    blocks = max(1, min(MAX_BLOCKS, ceil_div(n, THREADS)))
    kernel[blocks, THREADS](*arrays)


def tensor_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise a + b on the device for 1D arrays of the same length and dtype."""
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"tensor_add: need two 1D arrays of equal shape, got {a.shape} and {b.shape}")
    d_out = device_empty(a.shape, a.dtype)
    _launch_1d(tensor_add_kernel, a.size, d_out, to_device(a), to_device(b))
    return d_out.copy_to_host()


def map_array(kernel, a: np.ndarray) -> np.ndarray:
    """Run a kernel built by :func:`make_map_kernel` on a 1D array."""
    d_out = device_empty(a.shape, a.dtype)
    _launch_1d(kernel, a.size, d_out, to_device(a))
    return d_out.copy_to_host()


def zip_arrays(kernel, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Run a kernel built by :func:`make_zip_kernel` on two 1D arrays of equal shape."""
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"zip_arrays: need two 1D arrays of equal shape, got {a.shape} and {b.shape}")
    d_out = device_empty(a.shape, a.dtype)
    _launch_1d(kernel, a.size, d_out, to_device(a), to_device(b))
    return d_out.copy_to_host()
