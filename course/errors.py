"""Every problem the engine detects in a model or a feed raises a subclass of EngineError.

Messages name the node or input and say what is wrong, e.g.
``ShapeError: node 'conv1' (Conv): input 'W' has 3 dims, expected 4``.
"""
from __future__ import annotations


class EngineError(Exception):
    """Base class of all errors the engine raises for bad models or bad feeds."""


class ModelError(EngineError):
    """The model itself is malformed: not ONNX, cycles, dangling values, duplicate names."""


class GraphCycleError(ModelError):
    """The graph has a cycle; the message lists nodes on it."""


class DanglingValueError(ModelError):
    """A node reads a value that nothing produces and that is not an input or initializer."""


class UnsupportedOpError(EngineError):
    """No kernel for this op type (or for this opset version of it)."""


class OpsetError(UnsupportedOpError):
    """The model's opset for a domain is outside what the engine implements."""


class AttributeError_(EngineError):
    """An attribute is missing, unknown, or has the wrong type/value."""


class ShapeError(EngineError):
    """Shapes (or ranks) of a node's inputs are incompatible."""


class DTypeError(EngineError):
    """Element types of a node's inputs are incompatible or unsupported."""


class FeedError(EngineError):
    """A feed given to InferenceSession.run is missing, extra, or has the wrong dtype/rank/dims."""


class KernelError(EngineError):
    """A kernel failed while running a node; the message names the node."""


class ProfileError(FeedError):
    """A shape outside an engine's optimisation profile: a feed whose dim lies outside the
    profile's [min, max] (the message names the input, the dim and the range), or, at build
    time, a profile that does not fit the model's inputs."""


class HookError(EngineError):
    """A part plugged into a session (``scheduler=``, ``partitioner=``, ``planner=``,
    ``interpreter=``) gave an answer the engine cannot use: an order that reads a value before it
    is made, a node left without a provider, a provider that cannot run the node it was given.
    The message names the hook and the node."""


class EngineFileError(EngineError):
    """An engine file that cannot be loaded. ``reason`` says which check failed: "truncated",
    "magic" (not an engine file), "version" (another format or engine version), "checksum"
    (corrupted), "device" (built for a provider this process lacks) or "corrupted"."""

    def __init__(self, message: str, reason: str = "corrupted"):
        super().__init__(message)
        self.reason = reason


# Public, readable alias; the trailing underscore avoids shadowing the builtin inside this module.
OpAttributeError = AttributeError_

__all__ = [
    "EngineError", "ModelError", "GraphCycleError", "DanglingValueError", "UnsupportedOpError",
    "OpsetError", "OpAttributeError", "ShapeError", "DTypeError", "FeedError", "KernelError",
    "ProfileError", "EngineFileError",
]
