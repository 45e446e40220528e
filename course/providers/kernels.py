"""``KernelProvider``: kernels someone hands the engine -- a learner's ``conv2d``, a custom op.

``KernelProvider({"Conv": conv2d})`` claims every node of those op types (in the default domain,
or in ``domain``); a key ``"domain:OpType"`` names an op of another domain (``"course:FusedConv"``,
``"course.nhwc:Conv"``: the engine's fused and channels-last ops), so one provider can hold kernels
for the ops of several domains; listed first in a session's providers it runs them in place of the engine's
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

    def _key(self, spec: NodeSpec):
        """The key of ``spec``'s kernel in ``kernels``, or None when this provider has none."""
        if spec.domain == self.domain and spec.op_type in self.kernels:
            return spec.op_type
        qualified = f"{spec.domain}:{spec.op_type}"
        return qualified if qualified in self.kernels else None

    def claims(self, spec: NodeSpec) -> bool:
        return self._key(spec) is not None

    def kernel(self, spec: NodeSpec) -> Kernel:
        return functools.partial(self.kernels[self._key(spec)], **spec.attrs)

    def schemas(self) -> list[type]:
        return list(self.ops)

    def __repr__(self) -> str:
        return f"<KernelProvider {self.name!r}: {sorted(self.kernels)}>"
