"""Numba CUDA kernels of the course and ``kernels.trace``, the instrumented simulator that grades them.

Importing this package first lets ``course`` decide between a real GPU and the CUDA simulator.
"""
import course  # noqa: F401  (switches the simulator on before numba loads when no GPU exists)
