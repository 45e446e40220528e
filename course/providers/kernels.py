"""``KernelProvider``: kernels someone hands the engine -- a learner's ``conv2d``, a custom op.

``KernelProvider({"Conv": conv2d})`` claims every node of those op types (in the default domain,
or in ``domain``); listed first in a session's providers it runs them in place of the engine's
own kernels. Each kernel has ``Op.compute``'s contract: ``fn(*inputs, **attrs)`` with the node's
attributes (defaults filled in), returning an array or a tuple of arrays. ``ops=[MyOp]`` adds
op types the engine lacks (``Op`` subclasses registered with ``course.ops.registry.register``,
whose ``infer_*`` type the outputs), as onnxruntime's custom ops and TensorRT's plugins do.

Its kernels are someone else's code, so it is ``isolated``: while one runs, the engine's own
providers pause (no helper thread competing for the CPU, BLAS with its usual threads).
"""
from __future__ import annotations

import functools
from typing import Callable, Iterable, Mapping

from course.providers.base import ExecutionProvider, Kernel, NodeSpec


class KernelProvider(ExecutionProvider):
    isolated = True

    def __init__(self, kernels: Mapping[str, Callable], name: str = "LearnerExecutionProvider",
                 domain: str = "", ops: Iterable[type] = ()):
        for op_type, fn in kernels.items():
            if not callable(fn):
                raise TypeError(f"kernel for {op_type!r} is not callable")
        self.kernels = dict(kernels)
        self.name = name
        self.domain = "" if domain == "ai.onnx" else domain
        self.ops = list(ops)

    def claims(self, spec: NodeSpec) -> bool:
        return spec.domain == self.domain and spec.op_type in self.kernels

    def kernel(self, spec: NodeSpec) -> Kernel:
        return functools.partial(self.kernels[spec.op_type], **spec.attrs)

    def schemas(self) -> list[type]:
        return list(self.ops)

    def __repr__(self) -> str:
        return f"<KernelProvider {self.name!r}: {sorted(self.kernels)}>"
