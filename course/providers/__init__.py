"""Execution providers: who runs each node of a session's graph.

A session takes an ordered list (names or provider objects); each node goes to the first one
that claims it. Names known here::

    ReferenceExecutionProvider   course/ops as written: plain numpy, claims every op
    CPUExecutionProvider         the fast CPU engine (course/providers/cpu): compiled loops,
                                 BLAS, a helper thread; claims what it accelerates
    CUDAExecutionProvider        the course's CUDA kernels (kernels/, course/providers/cuda) on a GPU
                                 or Numba's simulator; tensors stay on the device, copies at borders

``KernelProvider({"Conv": fn})`` wraps kernels of your own (a lesson's exercise, a custom op).
Nothing in ``course/ops``, ``course/ir`` or ``course/passes`` imports this package.
"""
from __future__ import annotations

import functools

from course.providers.base import ExecutionProvider, Kernel, NodeSpec
from course.providers.kernels import KernelProvider
from course.providers.reference import ReferenceExecutionProvider

DEFAULT = ("CPUExecutionProvider", "ReferenceExecutionProvider")


def _cpu() -> ExecutionProvider:
    from course.providers.cpu import CPUExecutionProvider

    return CPUExecutionProvider()


def _cuda() -> ExecutionProvider:
    if not cuda_available():
        raise ValueError("CUDAExecutionProvider needs numba.cuda: no usable GPU, and the CUDA simulator is off "
                         "(set NUMBA_ENABLE_CUDASIM=1 before numba is first imported)")
    from course.providers.cuda import CUDAExecutionProvider

    return CUDAExecutionProvider()


_FACTORIES = {
    "ReferenceExecutionProvider": ReferenceExecutionProvider,
    "CPUExecutionProvider": _cpu,
    "CUDAExecutionProvider": _cuda,
}


@functools.lru_cache(maxsize=None)
def cuda_available() -> bool:
    """True when numba.cuda can run kernels: a GPU, or the simulator (``import course`` switches
    it on when no GPU is usable). Imports numba, so it is asked only when needed."""
    try:
        from numba import cuda
    except ImportError:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install is "not available", not a crash
        return False


def available_providers() -> list[str]:
    """Names a session accepts, fastest first (onnxruntime's ``get_available_providers``): the
    CUDA provider leads on a GPU and comes last on the simulator, where it is the slowest."""
    if not cuda_available():
        return list(DEFAULT)
    from course._env import simulator_on

    return [*DEFAULT, "CUDAExecutionProvider"] if simulator_on() else ["CUDAExecutionProvider", *DEFAULT]


def make(provider) -> ExecutionProvider:
    """A provider object from a name, an ``(name, options)`` pair (options unused) or an object."""
    if isinstance(provider, ExecutionProvider):
        return provider
    name = provider[0] if isinstance(provider, tuple) else provider
    if name not in _FACTORIES:
        raise ValueError(f"unavailable execution provider {name!r}; available: {available_providers()}")
    return _FACTORIES[name]()


__all__ = ["ExecutionProvider", "NodeSpec", "Kernel", "KernelProvider", "ReferenceExecutionProvider",
           "available_providers", "cuda_available", "make", "DEFAULT"]
