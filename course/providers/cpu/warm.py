"""Compile every job kind once, so Numba's on-disk cache is warm: ``python -m
course.providers.cpu.warm`` (``make install`` runs it). Without it the first fast run of a fresh
environment compiles the loops it meets, which takes tens of seconds."""
from __future__ import annotations

import time

import numpy as np

from course.providers.base import NodeSpec
from course.providers.cpu.provider import CPUExecutionProvider

F32 = np.dtype(np.float32)


def _conv(name, x, w, attrs, z=False, marks=None):
    """(spec, inputs) for a FusedConv (Clip) of x by w with the output's shape from a reference run."""
    from course.ops import registry

    rng = np.random.default_rng(0)
    xs = rng.standard_normal(x).astype(np.float32)
    ws = rng.standard_normal(w).astype(np.float32)
    b = rng.standard_normal(w[0]).astype(np.float32)
    y = registry.lookup("Conv", 11).compute(xs, ws, b, **attrs)
    inputs = [xs, ws, b] + ([np.ones_like(y)] if z else [])
    for a in inputs[1:3]:
        a.flags.writeable = False
    spec = NodeSpec(name, "FusedConv", "course", 1, {**attrs, "activation": "Clip", "activation_params": [0.0, 6.0]},
                    [(F32, a.shape) for a in inputs], [(F32, y.shape)], marks or {}, (1, 2))
    return spec, inputs


def cases() -> list:
    """One (spec, inputs) per job kind and route."""
    rng = np.random.default_rng(1)
    pool_x = rng.standard_normal((1, 8, 15, 15)).astype(np.float32)
    a, bm = rng.standard_normal((2, 512)).astype(np.float32), rng.standard_normal((1000, 512)).astype(np.float32)
    return [
        _conv("pointwise", (1, 16, 8, 8), (32, 16, 1, 1), {}),
        _conv("pointwise-nhwc", (1, 16, 8, 8), (64, 16, 1, 1), {}, marks={"layout": "NHWC"}),
        _conv("depthwise", (1, 8, 9, 9), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),
        _conv("winograd", (1, 8, 14, 14), (8, 8, 3, 3), {"pads": [1, 1, 1, 1]}, z=True),
        _conv("im2col-pixels", (1, 3, 16, 16), (8, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}, z=True),
        _conv("im2col-channels", (1, 8, 5, 5), (32, 8, 3, 3), {"pads": [1, 1, 1, 1]}),
        _conv("taps", (1, 16, 16, 16), (8, 16, 3, 2), {"pads": [1, 1, 1, 1]}, z=True),
        (NodeSpec("pool", "MaxPool", "", 12, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                               "auto_pad": "NOTSET", "ceil_mode": 0, "dilations": None,
                                               "storage_order": 0, "_num_outputs": 1},
                  [(F32, pool_x.shape)], [(F32, (1, 8, 8, 8))]), [pool_x]),
        (NodeSpec("head", "Gemm", "", 13, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1},
                  [(F32, a.shape), (F32, bm.shape), (F32, (1000,))], [(F32, (2, 1000))], {}, (1, 2)),
         [a, bm, np.ones(1000, np.float32)]),
    ]


def warm() -> float:
    """Run every case alone and in a run (the pool's loops too); returns the seconds it took."""
    from course.providers.cpu import pool

    start = time.perf_counter()
    provider = CPUExecutionProvider()
    kernels = [(provider.kernel(spec), inputs) for spec, inputs in cases()]
    for kernel, inputs in kernels:
        kernel(*inputs)
    with provider.running():
        for kernel, inputs in kernels:
            kernel(*inputs)
            kernel(*inputs)  # a replay
    pool.compile_loops()
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"CPUExecutionProvider: job kinds compiled and cached in {warm():.1f} s")
