"""``ReferenceExecutionProvider``: the op definitions of ``course/ops``, as they are written.

It claims every op the engine defines, so a session always has somewhere to fall back to (a
session appends it to any provider list that lacks it), and
it is what the graded tests and every faster provider are checked against. Ops whose
``compute`` takes ``out=`` (destination passing) write straight into the session's arena.
"""
from __future__ import annotations

import functools
import inspect
from typing import Optional

from course.errors import UnsupportedOpError
from course.ops import registry
from course.ops.base import Op
from course.providers.base import ExecutionProvider, IntoKernel, Kernel, NodeSpec


class ReferenceExecutionProvider(ExecutionProvider):
    name = "ReferenceExecutionProvider"

    def claims(self, spec: NodeSpec) -> bool:
        """Every op whose class defines ``compute`` (a custom op's schema alone is not enough)."""
        try:
            op = registry.lookup(spec.op_type, spec.opset, spec.domain)
        except UnsupportedOpError:
            return False
        return type(op).compute is not Op.compute

    def kernel(self, spec: NodeSpec) -> Kernel:
        op = registry.lookup(spec.op_type, spec.opset, spec.domain)
        return functools.partial(op.compute, **spec.attrs)

    def kernel_into(self, spec: NodeSpec) -> Optional[IntoKernel]:
        """``compute(*inputs, out=view, **attrs)`` for a single-output node whose op's
        ``compute`` takes ``out``; None for the others."""
        op = registry.lookup(spec.op_type, spec.opset, spec.domain)
        if len(spec.outputs) != 1 or "out" not in inspect.signature(op.compute).parameters:
            return None
        return functools.partial(_write_into, op.compute, spec.attrs)


def _write_into(compute, attrs, *inputs, out):
    compute(*inputs, out=out[0], **attrs)
