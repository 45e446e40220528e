"""Execution providers: who runs each node of a session's graph.

A session takes an ordered list (names or provider objects); each node goes to the first one
that claims it. Names known here::

    ReferenceExecutionProvider   course/ops as written: plain numpy, claims every op
    CPUExecutionProvider         the fast CPU engine (course/providers/cpu): compiled loops,
                                 BLAS, a helper thread; claims what it accelerates

``KernelProvider({"Conv": fn})`` wraps kernels of your own (a lesson's exercise, a custom op).
Nothing in ``course/ops``, ``course/ir`` or ``course/passes`` imports this package.
"""
from __future__ import annotations

from course.providers.base import ExecutionProvider, Kernel, NodeSpec
from course.providers.kernels import KernelProvider
from course.providers.reference import ReferenceExecutionProvider

DEFAULT = ("CPUExecutionProvider", "ReferenceExecutionProvider")


def _cpu() -> ExecutionProvider:
    from course.providers.cpu import CPUExecutionProvider

    return CPUExecutionProvider()


_FACTORIES = {
    "ReferenceExecutionProvider": ReferenceExecutionProvider,
    "CPUExecutionProvider": _cpu,
}


def available_providers() -> list[str]:
    """Names a session accepts, fastest first (onnxruntime's ``get_available_providers``)."""
    return list(DEFAULT)


def make(provider) -> ExecutionProvider:
    """A provider object from a name, an ``(name, options)`` pair (options unused) or an object."""
    if isinstance(provider, ExecutionProvider):
        return provider
    name = provider[0] if isinstance(provider, tuple) else provider
    if name not in _FACTORIES:
        raise ValueError(f"unavailable execution provider {name!r}; available: {available_providers()}")
    return _FACTORIES[name]()


__all__ = ["ExecutionProvider", "NodeSpec", "Kernel", "KernelProvider", "ReferenceExecutionProvider",
           "available_providers", "make", "DEFAULT"]
