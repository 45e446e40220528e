"""The CUDA execution provider: the course's Numba CUDA kernels (``kernels/``, lessons 04-05 and
08) running the nodes they can, with tensors kept on the device between them (issue 18).

``CUDAExecutionProvider()`` works on a GPU and on Numba's CUDA simulator (slow: small models
only). ``provider.py`` holds the class and its claim table, ``claims.py`` the rules, ``state.py``
streams, pinned buffers and weight uploads, and one file per kernel family (conv, gemm,
elementwise, softmax, pool, views, epilogue).
"""
from course.providers.cuda.provider import CUDAExecutionProvider

__all__ = ["CUDAExecutionProvider"]
