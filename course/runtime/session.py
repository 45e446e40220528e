"""``InferenceSession``: onnxruntime's API over the course engine.

Construction does all the work once: import -> verify -> graph passes (course.passes, lessons
07/08) -> infer types -> build a plan. ``run`` then only checks the feeds and walks the plan. A
memory planner (lesson 09) is meant to slot in later at the line marked below in ``__init__``,
assigning arena offsets to the plan.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from course.errors import FeedError
from course.ir import dtypes
from course.ir.graph import Graph, Value
from course.ir.onnx_import import from_onnx
from course.ir.types import Dim, TensorType
from course.ops import registry
from course.passes.pipeline import optimize
from course.runtime.plan import Plan, build_plan, execute

PROVIDERS = ["CPUExecutionProvider"]


@dataclass(frozen=True)
class NodeArg:
    """An input or output as onnxruntime describes it (``shape`` is None when the rank is unknown)."""

    name: str
    shape: Optional[list[Dim]]
    type: str

    @classmethod
    def of(cls, v: Value) -> "NodeArg":
        t = v.type
        return cls(v.name, None if t.shape is None else list(t.shape), dtypes.ort_type_string(t.dtype))


class InferenceSession:
    """Run an ONNX model: ``InferenceSession(model).run(None, {"x": x}) -> [y, ...]``.

    ``model`` is a path, bytes, an ``onnx.ModelProto`` or a course ``Graph`` (a Graph is used in
    place: inference writes its value types). ``custom_kernels={"Conv": fn}`` replaces the
    kernel of every node of that op type by ``fn(*inputs, **attrs)`` (same contract as
    ``Op.compute``): lessons use it to run a learner's kernel inside the real engine.
    ``graph_optimization_level`` "all" (default) runs ``course.passes.default_passes()`` (Conv+BN
    folding, Conv+activation fusion) before planning, "disable" runs none; ``passes=[...]``
    runs exactly those instead (a Graph given as ``model`` is rewritten in place). Op types with
    a custom kernel are never fused or folded away.
    """

    def __init__(self, model: Union[str, bytes, Any, Graph], providers: Optional[Sequence] = None,
                 custom_kernels: Optional[dict[str, Callable]] = None,
                 graph_optimization_level: str = "all", passes: Optional[Sequence] = None):
        self._providers = _check_providers(providers)
        custom = _check_custom(custom_kernels)
        self.graph = model if isinstance(model, Graph) else from_onnx(model)
        self.graph.verify(check_types=False)
        self.graph = optimize(self.graph, graph_optimization_level, protected=custom, passes=passes)
        self.graph.infer_types()
        self.graph.verify()
        # (hook) memory planner: assign each plan slot an offset in one arena after planning.
        self._plan: Plan = build_plan(self.graph, custom)
        self._inputs = [v for v in self.graph.inputs if not self.graph.is_overridable(v)]
        self._overridable = [v for v in self.graph.inputs if self.graph.is_overridable(v)]
        self._feedable = {v.name: v for v in self.graph.inputs}
        self._output_names = [v.name for v in self.graph.outputs]
        self._threads = _thread_pool(self.graph)

    # --- description ----------------------------------------------------------------------------
    def get_inputs(self) -> list[NodeArg]:
        """Inputs that must be fed (initializers that are also inputs are listed separately)."""
        return [NodeArg.of(v) for v in self._inputs]

    def get_overridable_initializers(self) -> list[NodeArg]:
        return [NodeArg.of(v) for v in self._overridable]

    def get_outputs(self) -> list[NodeArg]:
        return [NodeArg.of(v) for v in self.graph.outputs]

    def get_providers(self) -> list[str]:
        return list(self._providers)

    # --- running --------------------------------------------------------------------------------
    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any],
            run_options: Any = None) -> list[np.ndarray]:
        """Compute the named outputs (all of them for None) from ``{input name: array}``."""
        names = self._check_output_names(output_names)
        slots: list[Any] = [None] * self._plan.num_slots
        for s, arr in self._plan.constants.items():
            slots[s] = arr
        for name, arr in self._check_feeds(input_feed).items():
            slots[self._plan.slot_of[name]] = arr
        with self._threads():
            execute(self._plan, slots)
        out = [slots[self._plan.slot_of[n]] for n in names]
        # Never hand out the session's own initializer arrays: a caller could write into them.
        return [a.copy() if any(a is c for c in self._plan.constants.values()) else a for a in out]

    def _check_output_names(self, output_names) -> list[str]:
        if output_names is None:
            return list(self._output_names)
        if isinstance(output_names, str):
            raise TypeError("output_names must be a list of names (or None for all outputs), not a str")
        names = list(output_names)
        for n in names:
            if n not in self._output_names:
                raise FeedError(f"unknown output name {n!r}; the model's outputs are {self._output_names}")
        return names

    def _check_feeds(self, feeds) -> dict[str, np.ndarray]:
        if not isinstance(feeds, Mapping):
            raise FeedError(f"feeds must be a dict {{input name: numpy array}}, got {type(feeds).__name__}")
        unknown = [k for k in feeds if k not in self._feedable]
        if unknown:
            raise FeedError(f"unknown input name(s) {unknown}; the model's inputs are "
                            f"{[v.name for v in self._inputs]}")
        for v in self._inputs:
            if v.name not in feeds:
                raise FeedError(f"missing input {v.name!r} ({v.type})")
        symbols: dict[str, tuple[int, str]] = {}
        return {name: _check_feed(self._feedable[name], arr, symbols) for name, arr in feeds.items()}


def _check_feed(v: Value, arr: Any, symbols: dict[str, tuple[int, str]]) -> np.ndarray:
    """One feed against its declared type; symbolic dims must agree across all feeds."""
    if isinstance(arr, np.generic) or (isinstance(arr, np.ndarray) and type(arr) is not np.ndarray):
        arr = np.asarray(arr)
    if not isinstance(arr, np.ndarray):
        raise FeedError(f"input {v.name!r} must be a numpy array (or numpy scalar), got {type(arr).__name__}; "
                        f"convert it with np.asarray(..., dtype=np.{v.type.dtype})")
    t: TensorType = v.type
    if t.dtype == object and arr.dtype.kind in "OUS":
        arr = arr.astype(object)
    elif arr.dtype != t.dtype:
        raise FeedError(f"input {v.name!r} has dtype {arr.dtype}, expected {t.dtype}")
    if t.shape is None:
        return arr
    if arr.ndim != len(t.shape):
        raise FeedError(f"input {v.name!r} has rank {arr.ndim} (shape {arr.shape}), expected rank "
                        f"{len(t.shape)} ({t})")
    for axis, (got, want) in enumerate(zip(arr.shape, t.shape)):
        if isinstance(want, int) and got != want:
            raise FeedError(f"input {v.name!r} has shape {arr.shape}, expected {t} (dim {axis} must be {want})")
        if isinstance(want, str):
            size, first = symbols.setdefault(want, (got, v.name))
            if size != got:
                raise FeedError(f"input {v.name!r} dim {axis} ({want!r}) is {got}, but input {first!r} "
                                f"gave {want!r} = {size}")
    return arr


def _thread_pool(graph: Graph) -> Callable:
    """The context each run executes in: with the helper thread of course/ops/_parallel.py when
    the model has convolutions (their GEMMs and depthwise loops are split over two threads)."""
    from course.ops import _blas

    if _blas.available() and any(n.op_type in ("Conv", "FusedConv") for n in graph.nodes):
        from course.ops import _parallel  # imports numba

        return _parallel.running
    return contextlib.nullcontext


def _check_providers(providers) -> list[str]:
    if providers is None:
        return list(PROVIDERS)
    names = [p[0] if isinstance(p, tuple) else p for p in providers]
    bad = [p for p in names if p not in PROVIDERS]
    if bad or not names:
        raise ValueError(f"unavailable execution provider(s) {bad or names}; available: {PROVIDERS}")
    return names


def _check_custom(custom: Optional[dict[str, Callable]]) -> dict[str, Callable]:
    if not custom:
        return {}
    known = set(registry.supported_ops())
    for op_type, fn in custom.items():
        if op_type not in known:
            raise ValueError(f"custom kernel for {op_type!r}, which is not an op this engine knows")
        if not callable(fn):
            raise TypeError(f"custom kernel for {op_type!r} is not callable")
    return dict(custom)
