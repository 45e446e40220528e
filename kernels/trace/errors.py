"""Errors the tracer raises. All are ``course.KernelError`` (hence ``course.EngineError``) subclasses."""
from __future__ import annotations

from course.errors import KernelError


class TraceError(KernelError):
    """The kernel could not be traced: unsupported construct, bad launch, or an error in its body."""


class KernelFault(TraceError):
    """A Python exception escaped the kernel body; the message names the block and thread."""


class BarrierDivergenceError(TraceError):
    """Some threads of a block reached a ``syncthreads()`` that others never reach (or a different one).

    On a GPU this hangs or silently corrupts shared memory; the usual cause is an early
    ``return`` (a bounds guard) placed before a barrier.
    """


class TraceTimeout(TraceError):
    """The kernel ran past the ``timeout`` (seconds) or ``max_steps`` (per thread) limit of the trace."""
