"""``InferenceSession``: onnxruntime's API over the course engine.

Construction does all the work once: import -> verify -> graph passes (course.passes, lessons
07/08) -> infer types -> partition the nodes over the execution providers (course.providers) ->
layout marks for the providers that honour them -> a plan (plain data) -> kernels bound per step.
``run`` then only checks the feeds and walks the bound plan, inside an arena planned once
(lesson 09: course/runtime/arena.py; ``arena=False`` allocates every tensor per run instead).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from course import providers as _providers
from course.errors import FeedError
from course.ir import dtypes
from course.ir.graph import Graph, Value
from course.ir.onnx_import import from_onnx
from course.ir.types import Dim, TensorType
from course.ops import registry
from course.passes.pipeline import optimize
from course.providers.base import ExecutionProvider
from course.providers.kernels import KernelProvider
from course.providers.reference import ReferenceExecutionProvider
from course.runtime import hooks
from course.runtime.arena import arena_pool, arena_report
from course.runtime.copies import insert_copies
from course.runtime.execute import execute
from course.runtime.partition import assignment_table, node_spec, partition
from course.runtime.plan import BoundPlan, Plan, bind, build_plan

PROVIDERS = list(_providers.DEFAULT)


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
    place: passes and inference rewrite it). ``providers`` is an ordered list of provider names
    (``course.providers.available_providers()``) or provider objects; each node runs on the first
    that claims it (default: ``["CPUExecutionProvider", "ReferenceExecutionProvider"]``; the
    reference is appended as the fallback when the list lacks it).
    ``KernelProvider({"Conv": fn})`` listed first runs your own kernels (``fn(*inputs, **attrs)``,
    ``Op.compute``'s contract); ``custom_kernels={"Conv": fn}`` is shorthand for that.
    ``graph_optimization_level`` is onnxruntime's: "basic" (constant folding, algebraic clean-up,
    CSE, Conv+BN folding, dead code), "extended" (also op replacement, Transpose sinking and the
    Conv fusions), "all" (default: extended, then the layout marks), "disable" (none);
    ``passes=[...]`` runs exactly those instead. Op types a ``KernelProvider`` claims are never
    fused or folded away.
    ``arena`` (default True): the intermediates that kernels write into views live in one arena
    planned here (``memory_report()`` describes it); ``arena_dims={"N": 8}`` plans symbolic
    dims at those largest sizes, so smaller runs fit too. ``run`` may be called from several
    threads at once: each concurrent run gets an arena of its own.
    Parts of your own run inside the session (course/runtime/hooks.py says what each gets and
    must return; a wrong answer raises ``HookError`` naming the node): ``scheduler=`` orders the
    nodes (lesson 06's ``topo_order``), ``partitioner=`` gives each node a provider (lesson 12's
    ``dispatch``), ``planner=`` places the arena (lesson 09's placement, or a strategy name of
    course.memory), ``interpreter=`` runs the plan (lesson 06's ``run_graph``; kernels then
    allocate their outputs: no arena).
    """

    def __init__(self, model: Union[str, bytes, Any, Graph], providers: Optional[Sequence] = None,
                 custom_kernels: Optional[dict[str, Callable]] = None,
                 graph_optimization_level: str = "all", passes: Optional[Sequence] = None,
                 arena: bool = True, arena_dims: Optional[Mapping[str, int]] = None,
                 scheduler: Optional[Callable] = None, partitioner: Optional[Callable] = None,
                 planner: Union[None, str, Callable] = None, interpreter: Optional[Callable] = None):
        self._provider_objs = _resolve_providers(providers, custom_kernels)
        protected = {t for p in self._provider_objs if isinstance(p, KernelProvider) for t in p.kernels}
        self.graph = model if isinstance(model, Graph) else from_onnx(model)
        self.graph.verify(check_types=False)
        self.graph = optimize(self.graph, graph_optimization_level, protected=protected, passes=passes)
        self.graph.infer_types()
        self.graph.verify()
        if partitioner is None:
            owner = partition(self.graph, self._provider_objs)
        else:
            specs = {id(n): node_spec(self.graph, n) for n in self.graph.nodes}
            owner = hooks.assign(self.graph, specs, self._provider_objs, partitioner)
        insert_copies(self.graph, owner)  # host<->device transfer nodes at the borders (issue 18)
        if graph_optimization_level == "all" and passes is None:
            _mark_layouts(self.graph, owner)
        if scheduler is not None:
            hooks.schedule(self.graph, scheduler)
        specs = {id(n): node_spec(self.graph, n) for n in self.graph.nodes}
        plan = build_plan(self.graph, specs, owner)
        self._attach(plan, [v for v in self.graph.inputs if not self.graph.is_overridable(v)],
                     [v for v in self.graph.inputs if self.graph.is_overridable(v)], list(self.graph.outputs),
                     arena and interpreter is None, arena_dims, planner)
        self._interpreter = interpreter

    @classmethod
    def from_plan(cls, plan: Plan, inputs: Sequence[Value], outputs: Sequence[Value],
                  providers: Optional[Sequence] = None, overridable: Sequence[Value] = (),
                  arena: bool = True) -> "InferenceSession":
        """A session over an already built plan (an engine file's): no import, no pass, no
        partitioning -- only the kernels bound, and the arena taken from ``plan.arena`` (planned
        here if it has none; ``arena=False``: none). ``inputs`` (to be fed), ``overridable``
        (initializers a feed may replace) and ``outputs`` describe the graph's I/O as Values
        (a name and a TensorType each); feeds are checked against them as in any session."""
        self = cls.__new__(cls)
        self._provider_objs = _resolve_providers(providers, None)
        self.graph = None  # nothing but the plan: the graph was optimised away when it was built
        self._attach(plan, list(inputs), list(overridable), list(outputs), arena)
        self._interpreter = None
        return self

    def _attach(self, plan: Plan, inputs: list[Value], overridable: list[Value], outputs: list[Value],
                arena: bool = True, arena_dims: Optional[Mapping[str, int]] = None,
                planner: Union[None, str, Callable] = None) -> None:
        """Everything after planning, shared by ``__init__`` and ``from_plan``: bind the kernels,
        plan the arena (or take the plan's) and keep the I/O description that ``run`` checks
        feeds against."""
        self._plan: Plan = plan
        self._bound: BoundPlan = bind(plan, {p.name: p for p in self._provider_objs})
        self._arenas = arena_pool(self._bound, arena, arena_dims, planner)  # None: every tensor allocated per run
        self._inputs, self._overridable, self._outputs = inputs, overridable, outputs
        self._feedable = {v.name: v for v in [*inputs, *overridable]}
        self._output_names = [v.name for v in outputs]
        self._quick = {v.name: _quick_type(v) for v in self._feedable.values()}
        # every run starts from a copy of this: the weights in their slots (a feed may replace
        # an overridable one in the run's copy)
        self._template: list[Any] = [None] * plan.num_slots
        for s, arr in plan.constants.items():
            self._template[s] = arr
        self._constant_ids = frozenset(id(a) for a in plan.constants.values())

    # --- description ----------------------------------------------------------------------------
    def get_inputs(self) -> list[NodeArg]:
        """Inputs that must be fed (initializers that are also inputs are listed separately)."""
        return [NodeArg.of(v) for v in self._inputs]

    def get_overridable_initializers(self) -> list[NodeArg]:
        return [NodeArg.of(v) for v in self._overridable]

    def get_outputs(self) -> list[NodeArg]:
        return [NodeArg.of(v) for v in self._outputs]

    def get_providers(self) -> list[str]:
        """The session's providers, in the order nodes were offered to them."""
        return [p.name for p in self._provider_objs]

    def assignment(self) -> dict[str, str]:
        """``{node name: provider name}`` for every step of the plan."""
        return {st.spec.name: st.provider for st in self._plan.steps}

    def describe_partition(self) -> str:
        """A readable table: each node, its op type and the provider that runs it."""
        return assignment_table([(st.spec.name, st.spec.op_type, st.provider) for st in self._plan.steps])

    def memory_report(self, strategy: Optional[str] = None) -> dict:
        """The arena this session's runs use (planned at construction): at least ``arena_bytes``,
        ``lower_bound_bytes``, ``naive_bytes``, ``strategy`` and per-tensor ``offsets``
        (course.runtime.arena.arena_report). With a ``strategy`` named, or with the arena off:
        how course.memory would pack every intermediate of the plan by that strategy."""
        if strategy is None and self._arenas is not None:
            return arena_report(self._plan, self._arenas.layout)
        from course.memory import memory_report

        return memory_report(self._plan, strategy=strategy or "best")

    @property
    def plan(self) -> Plan:
        """The session's plan (plain data; ``plan.to_dict()`` serialises it)."""
        return self._plan

    # --- running --------------------------------------------------------------------------------
    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any],
            run_options: Any = None) -> list[np.ndarray]:
        """Compute the named outputs (all of them for None) from ``{input name: array}``."""
        names = self._output_names if output_names is None else self._check_output_names(output_names)
        if self._interpreter is not None:
            out = hooks.interpret(self._bound, self._interpreter, self._check_feeds(input_feed), list(names),
                                  [v.name for v in self._inputs], self._output_names)
        else:
            slots = self._template.copy()
            slot_of = self._plan.slot_of
            for name, arr in self._check_feeds(input_feed).items():
                slots[slot_of[name]] = arr
            execute(self._bound, slots, self._arenas)  # thread-safe: each run borrows its own arena
            out = [slots[slot_of[n]] for n in names]
        # Never hand out the session's own initializer arrays: a caller could write into them.
        return [a.copy() if id(a) in self._constant_ids else a for a in out]

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
        if type(feeds) is dict and self._quick_feeds(feeds):
            return feeds
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

    def _quick_feeds(self, feeds: dict) -> bool:
        """True when the feeds need nothing done: every input there, and each feed a plain
        ndarray of its input's dtype and shape (symbolic dims agreeing). False leaves the
        verdict, conversions and messages to the full check."""
        symbols: dict[str, int] = {}
        quick = self._quick
        for name, arr in feeds.items():
            want = quick.get(name)
            if want is None or type(arr) is not np.ndarray or arr.dtype != want[0]:
                return False
            shape = want[1]
            if shape is None:
                continue
            if arr.ndim != len(shape):
                return False
            for got, dim in zip(arr.shape, shape):
                if type(dim) is int:
                    if got != dim:
                        return False
                elif dim is not None and symbols.setdefault(dim, got) != got:
                    return False
        return all(v.name in feeds for v in self._inputs)


def _quick_type(v: Value):
    """(dtype, shape) a feed of ``v`` is taken as it is with (see ``_quick_feeds``); None for a
    value whose feeds are always converted (strings and objects)."""
    return None if v.type.dtype == object else (v.type.dtype, None if v.type.shape is None else tuple(v.type.shape))


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


def _mark_layouts(graph: Graph, owner: Mapping[int, ExecutionProvider]) -> None:
    """Run the layout pass: channels last between convolutions whose provider writes NHWC. A node
    of an isolated provider (someone's own kernel) is never marked and never handed a
    channels-last input, so it sees NCHW tensors as the ONNX model describes them."""
    from course.passes.mark_channels_last import MarkChannelsLast, reads_any_layout

    def eligible(node) -> bool:
        return "NHWC" in owner[id(node)].layouts

    def any_layout(node) -> bool:
        return reads_any_layout(node) and not owner[id(node)].isolated

    MarkChannelsLast(eligible, any_layout=any_layout).call(graph)


def _resolve_providers(providers, custom_kernels) -> list[ExecutionProvider]:
    """Provider objects, in order, from names / (name, options) pairs / objects; custom_kernels
    become a KernelProvider listed first; the reference provider is appended when missing, so
    every op the engine defines has a kernel (onnxruntime appends its CPU provider likewise)."""
    given = list(PROVIDERS if providers is None else providers)
    if not given:
        raise ValueError(f"no execution provider given; available: {_providers.available_providers()}")
    objs = [_providers.make(p) for p in given]
    if not any(isinstance(p, ReferenceExecutionProvider) for p in objs):
        objs.append(ReferenceExecutionProvider())  # the fallback, as onnxruntime appends its CPU provider
    if custom_kernels:
        objs.insert(0, KernelProvider(_check_custom(custom_kernels)))
    names = [p.name for p in objs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"execution provider(s) {dup} listed twice")
    for p in objs:
        for op in p.schemas():
            registry.add_schema(op)
    return objs


def _check_custom(custom: dict[str, Callable]) -> dict[str, Callable]:
    """custom_kernels may only replace ops the engine knows (a custom op needs KernelProvider's
    ``ops=``); KernelProvider itself checks that each kernel is callable."""
    unknown = sorted(set(custom) - set(registry.supported_ops()))
    if unknown:
        raise ValueError(f"custom kernel for {unknown[0]!r}, which is not an op this engine knows")
    return dict(custom)
