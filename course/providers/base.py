"""The execution-provider interface: what a provider says about the nodes it can run.

A session partitions its graph over an ordered list of providers (onnxruntime's model): each
node goes to the first provider that ``claims`` it; the reference provider claims every op the
engine defines, so the rest falls back to it. The plan records, per step, the provider's name and
a :class:`NodeSpec` (plain data), and a provider turns a spec into a callable with ``kernel``
when the plan is bound -- at session creation, or when a saved plan is loaded.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Optional

import numpy as np

from course.ir.types import Shape


@dataclass
class NodeSpec:
    """Everything a kernel may know about its node, as plain data (no Node, no Graph).

    ``attrs`` are the node's attributes with the schema's defaults filled in (plus
    ``_num_outputs`` for ops that ask for it); ``inputs``/``outputs`` are (dtype, shape) per
    slot, ``None`` for an omitted optional one; ``marks`` are what graph passes noted for the
    providers (``{"layout": "NHWC"}``: make this output channels last), never seen by the
    reference."""

    name: str
    op_type: str
    domain: str
    opset: int
    attrs: dict[str, Any]
    inputs: list[Optional[tuple[np.dtype, Shape]]]
    outputs: list[Optional[tuple[np.dtype, Shape]]]
    marks: dict[str, Any] = field(default_factory=dict)
    constant_inputs: tuple[int, ...] = ()  # indices of inputs that are initializers (weights)

    def input_dtype(self, i: int) -> Optional[np.dtype]:
        t = self.inputs[i] if i < len(self.inputs) else None
        return None if t is None else t[0]

    def input_shape(self, i: int) -> Shape:
        t = self.inputs[i] if i < len(self.inputs) else None
        return None if t is None else t[1]


Kernel = Callable[..., Any]  # kernel(*inputs) -> array or tuple of arrays, as Op.compute returns
# into(*inputs, out=(y0, y1, ...)): writes output k into the array out[k]; its return is ignored
IntoKernel = Callable[..., Any]


class ExecutionProvider:
    """Base class. Subclasses set ``name`` and override ``claims`` and ``kernel``."""

    name: str = ""
    # True for providers whose kernels are someone else's code (a learner's): while one of their
    # kernels runs, the session pauses every other provider (``paused``), so nothing of ours
    # competes with it for the CPU or changes its BLAS threads.
    isolated: bool = False
    # Layouts its kernels can write besides NCHW, when a pass marks a node so ("NHWC"): the
    # session lets the layout pass mark only nodes of providers that list the layout.
    layouts: frozenset = frozenset()
    # Where this provider's kernels read and write tensors: "cpu" (host numpy arrays) or a device
    # ("cuda"). The session inserts explicit copy nodes wherever a value crosses between two
    # places (course/runtime/copies.py); a device provider runs those copies.
    device: str = "cpu"

    def claims(self, spec: NodeSpec) -> bool:
        """True when this provider runs the node (decided once, at partitioning)."""
        return False

    def kernel(self, spec: NodeSpec) -> Kernel:
        """A function of the node's inputs only (attributes bound) returning what the op's
        reference ``compute(*inputs, **spec.attrs)`` returns, within the dtype's tolerance."""
        raise NotImplementedError(f"{type(self).__name__}.kernel")

    def kernel_into(self, spec: NodeSpec) -> Optional[IntoKernel]:
        """The node's kernel in destination-passing form, or None (the default) when the
        provider only has ``kernel``. ``into(*inputs, out=views)`` must write every output k
        into ``views[k]``: C-contiguous host arrays of the output's dtype and of this run's
        shape, carved from the session's arena. A view may share its bytes with an input that
        dies at this node (in-place reuse, planned only for elementwise ops: see
        ``course.memory.INPLACE_OPS``), so element i is written only after input element i is
        read. A node without it gets ``kernel``; the session then keeps the array it returns."""
        return None

    def workspace_bytes(self, spec: NodeSpec) -> int:
        """Scratch bytes the node's ``kernel_into`` uses beside its outputs (im2col columns,
        Winograd tiles), 0 (the default) for none. A session plans that many bytes in its arena,
        living for this step only, and calls ``into(*inputs, out=views, workspace=buf)``: ``buf``
        a uint8 array of at least that many bytes, aligned to the arena's alignment, whose
        contents are garbage and which the kernel must not keep past the call (a concurrent run
        has an arena of its own). Asked with every shape of ``spec`` static (symbolic dims at
        their planned sizes); an ``into`` must still run when handed no workspace, or one too
        small for this call's shapes (then it allocates its own)."""
        return 0

    def running(self) -> ContextManager:
        """Entered around each run of a plan that has steps on this provider (the CPU provider
        starts its helper thread here). Default: nothing."""
        return contextlib.nullcontext()

    def paused(self) -> ContextManager:
        """Entered around each step of an ``isolated`` provider while this one is ``running``
        (the CPU provider parks its helper thread and gives BLAS its threads back). Default:
        nothing."""
        return contextlib.nullcontext()

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Memory for one tensor this provider's kernels write (host memory by default)."""
        return np.empty(shape, dtype=dtype)

    def schemas(self) -> list[type]:
        """Op classes (schema + compute) this provider adds to the engine: custom ops the
        engine lacks. Registered before the graph's types are inferred. Default: none."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
