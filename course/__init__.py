"""Inference Engines from Scratch: the reference engine the lessons build, piece by piece.

Importing ``course`` first decides whether Numba uses a GPU or its CUDA simulator (before numba
is loaded anywhere), so ``import course`` is the first line of every lesson.
"""
from __future__ import annotations

from course._env import configure_cuda as _configure_cuda

CUDA_MODE = _configure_cuda()

from course.errors import (  # noqa: E402
    DanglingValueError,
    DTypeError,
    EngineError,
    EngineFileError,
    FeedError,
    GraphCycleError,
    HookError,
    KernelError,
    ModelError,
    OpAttributeError,
    OpsetError,
    ProfileError,
    ShapeError,
    UnsupportedOpError,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: keep `import course` light (no onnx/onnxruntime import) for lessons that do not need them.
    if name == "InferenceSession":
        from course.runtime.session import InferenceSession

        return InferenceSession
    if name == "onnx_backend":
        from course.runtime import backend

        return backend
    raise AttributeError(f"module 'course' has no attribute {name!r}")


__all__ = [
    "CUDA_MODE", "EngineError", "ModelError", "GraphCycleError", "DanglingValueError",
    "UnsupportedOpError", "OpsetError", "OpAttributeError", "ShapeError", "DTypeError",
    "FeedError", "KernelError", "ProfileError", "EngineFileError", "HookError", "InferenceSession", "onnx_backend",
]
