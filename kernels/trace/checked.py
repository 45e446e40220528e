"""``checked_run``: the grader's way to launch a learner's kernel.

It traces the kernel and turns every fault into an AssertionError with a readable message, so a
test cell fails (and the grading of the rest goes on) instead of crashing or hanging.
"""
from __future__ import annotations

import numpy as np

import course


def checked_run(kernel, grid, block, *args, timeout: float = 20, max_steps: int = 200_000) -> dict:
    """Run ``kernel[grid, block](*args)`` on the instrumented simulator; return ``report.as_dict()``
    plus ``per_array`` (loads/stores/sectors per array, keyed by the kernel's parameter names).

    numpy arrays among ``args`` are updated in place, as a launch would. Raises AssertionError when
    the kernel crashes, never ends, reads or writes out of bounds, races on shared memory or lets
    threads skip a barrier. On a GPU the kernel then also runs for real on copies of the inputs,
    and its results must agree with the traced run.
    """
    from kernels import trace

    before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        rep = trace.run(kernel, grid, block, *args, timeout=timeout, max_steps=max_steps)
    except trace.TraceTimeout as e:
        raise AssertionError(f"the kernel did not finish (endless loop?): {e}") from None
    except trace.TraceError as e:
        raise AssertionError(f"the kernel failed: {e}") from None
    if rep.out_of_bounds_count:
        raise AssertionError(f"{rep.out_of_bounds_count} out-of-bounds access(es); first: {rep.out_of_bounds[0]} "
                             "(is a bounds guard missing or wrong?)")
    if rep.race_count:
        raise AssertionError(f"{rep.race_count} shared-memory race(s); first: {rep.races[0]} "
                             "(is a cuda.syncthreads() missing?)")
    if course.CUDA_MODE == "gpu":
        _compare_with_gpu(kernel, grid, block, before, args)
    d = rep.as_dict()
    d["per_array"] = rep.per_array
    return d


def _compare_with_gpu(kernel, grid, block, before, traced_args) -> None:
    from numba import cuda

    dev = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in before]
    kernel[grid, block](*dev)
    cuda.synchronize()
    for d, traced in zip(dev, traced_args):
        if isinstance(traced, np.ndarray):
            got = d.copy_to_host()
            if not np.allclose(got, traced, rtol=1e-4, atol=1e-4, equal_nan=True):
                raise AssertionError("the kernel gives different results on the GPU and on the tracer "
                                     "(a race, or a result that depends on thread order?)")
