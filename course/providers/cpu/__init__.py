"""The fast CPU engine as an execution provider: ``CPUExecutionProvider``.

Importing this package is light (numpy only): numba is imported, and the Numba cache read, when
the first kernel is made or run. ``python -m course.providers.cpu.warm`` compiles every job kind
once so that a fresh environment's first run does not. ``COURSE_NUM_THREADS`` sets the thread
budget (1: no helper thread).
"""
from course.providers.cpu.provider import CPUExecutionProvider

__all__ = ["CPUExecutionProvider"]
