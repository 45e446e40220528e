"""Arena execution (lesson 09's plug-in): a run's intermediates live in one buffer, at offsets
planned once.

``plan_arena(plan)`` places the plan's slots with ``course.memory.plan_memory`` and returns an
``ArenaLayout``: plain data that the plan carries (``Plan.arena``) and saves. For each run an
``ArenaPool`` lends one arena -- a buffer, and the views carved from it at each planned slot's
offset with the shapes of this run -- and kernels with destination passing
(``ExecutionProvider.kernel_into``) write straight into those views.

Which slots are planned, and why:

- slots a step writes: graph inputs are the caller's arrays, weights the plan's own;
- not graph outputs: they go back to the caller, who may keep them while the next run reuses
  the arena. Left out, the kernel's own array is handed over without a copy;
- outputs of steps whose kernel writes into the view it is handed (``into``). A kernel that
  allocates its own output keeps it: copying it in costs a copy and saves no memory
  (docs/benchmarks.md). ``into=None`` plans every step's outputs anyway, copied in;
- a static size once each symbolic dim is replaced by its largest value (``dims``): a run with
  smaller dims fits in the bytes reserved; a slot still symbolic is allocated per run;
- a plain host dtype (no strings or objects).

Two more kinds of bytes share the arena. A Concat's inputs may be planned inside its output
(course.memory.alias_into: NCHW channels at batch 1, shapes static in the plan), so their
producers write straight into the output and the Concat copies nothing (``within``). And a step
whose provider declares scratch (``ExecutionProvider.workspace_bytes``) gets a workspace living
for that step only (``workspaces``), handed to its kernel as ``into(..., workspace=view)``.

View ops (Reshape, Flatten, Split...) may return a view of their input rather than a new
array. Their outputs are not planned; instead every read of such a view counts as a read of
the slot it views, so those bytes stay reserved while the view is in use.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Iterator, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from course.memory import (
    DEFAULT_ALIGNMENT, Arena, MemoryPlanError, liveness, plan_concat_candidates, plan_memory, plan_outputs,
    plan_types, static_shape, tensor_bytes, validate, workspace_key,
)
from course.memory.place import Strategy

# ops whose kernel may return a view of its first input instead of a new array
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Split",
                      "Slice", "Transpose"})


@dataclass
class ArenaLayout:
    """Where each planned slot of a plan lives in one arena of ``arena_bytes`` bytes."""

    strategy: str
    alignment: int
    arena_bytes: int
    lower_bound_bytes: int  # the most bytes alive at one step: no placement can do better
    offsets: dict[int, int]  # planned slot -> byte offset
    sizes: dict[int, int]  # planned slot -> bytes reserved (aligned; the most any run may use)
    inplace: dict[int, int] = field(default_factory=dict)  # slot -> slot whose bytes it takes over
    views: dict[int, int] = field(default_factory=dict)  # unplanned slot -> planned slot it may view
    dims: dict[str, int] = field(default_factory=dict)  # symbolic dims, at the sizes planned for
    within: dict[int, tuple[int, int]] = field(default_factory=dict)  # chunk slot -> (Concat output, bytes in)
    workspaces: dict[int, tuple[int, int]] = field(default_factory=dict)  # step -> (offset, bytes) of its scratch

    def to_dict(self) -> dict:
        """JSON-able data (slot numbers as ints in lists: JSON keys would turn them to strings)."""
        return {"strategy": self.strategy, "alignment": self.alignment, "arena_bytes": self.arena_bytes,
                "lower_bound_bytes": self.lower_bound_bytes,
                "slots": [[s, self.offsets[s], self.sizes[s]] for s in sorted(self.offsets)],
                "inplace": sorted([d, r] for d, r in self.inplace.items()),
                "views": sorted([v, r] for v, r in self.views.items()), "dims": dict(self.dims),
                "within": sorted([s, c, off] for s, (c, off) in self.within.items()),
                "workspaces": sorted([i, off, n] for i, (off, n) in self.workspaces.items())}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ArenaLayout":
        """The layout of ``to_dict``; a key an older file lacks means none of that kind."""
        slots = [tuple(int(v) for v in row) for row in data["slots"]]
        return cls(str(data["strategy"]), int(data["alignment"]), int(data["arena_bytes"]),
                   int(data["lower_bound_bytes"]), {s: off for s, off, _ in slots}, {s: n for s, _, n in slots},
                   {int(d): int(r) for d, r in data.get("inplace", [])},
                   {int(v): int(r) for v, r in data.get("views", [])},
                   {str(k): int(v) for k, v in data.get("dims", {}).items()},
                   {int(s): (int(c), int(off)) for s, c, off in data.get("within", [])},
                   {int(i): (int(off), int(n)) for i, off, n in data.get("workspaces", [])})


# --- planning -------------------------------------------------------------------------------------


def plan_arena(plan: Any, dims: Optional[Mapping[str, int]] = None, strategy: Strategy = "best",
               inplace: bool = True, into: Optional[Sequence] = None,
               alignment: int = DEFAULT_ALIGNMENT, providers: Optional[Mapping[str, Any]] = None,
               concat: bool = True) -> ArenaLayout:
    """Place ``plan``'s slots in one arena (which ones: see the module) and validate the result.

    ``dims`` maps symbolic dims to the largest size a run will use; ``into`` has, per step, its
    destination-passing kernel or None (only those steps' outputs are planned); ``inplace`` lets
    an elementwise step write over an input that dies there (course.memory.INPLACE_OPS);
    ``concat`` lets a Concat's inputs live inside its output; ``providers`` (by name) are asked
    for each destination-passing step's scratch (``workspace_bytes``), placed beside the slots.
    """
    dims = {str(k): int(v) for k, v in (dims or {}).items()}
    left_out = _left_out(plan, into)
    views = _view_sources(plan, left_out)
    mp = plan_memory(_for_planning(plan, dims, views), strategy, alignment, inplace=inplace,
                     workspaces=_workspaces(plan, dims, into, providers), exclude=left_out,
                     concat=plan_concat_candidates(plan) if concat else False)
    slots = {s: off for s, off in mp.offsets.items() if not isinstance(s, tuple)}
    sizes = {s: mp.sizes[mp.alias.get(s, s)] for s in slots}
    views = {v: r for v, r in views.items() if r in slots}
    spaces = {key[1]: (off, mp.sizes[key]) for key, off in mp.offsets.items() if isinstance(key, tuple)}
    return ArenaLayout(mp.strategy, alignment, mp.arena_bytes, mp.lower_bound_bytes, slots, sizes,
                       dict(mp.alias), views, dims, dict(mp.within), spaces)


def _workspaces(plan: Any, dims: Mapping[str, int], into: Optional[Sequence],
                providers: Optional[Mapping[str, Any]]) -> dict[int, int]:
    """``{step: scratch bytes}`` the providers declare for the steps with destination passing,
    each asked with every shape of its spec at the planned ``dims``."""
    if not providers:
        return {}
    out = {}
    for i, st in enumerate(plan.steps):
        p = providers.get(st.provider)
        if p is not None and (into is None or into[i] is not None):
            spec = dataclasses.replace(st.spec, inputs=[_resolved(t, dims) for t in st.spec.inputs],
                                       outputs=[_resolved(t, dims) for t in st.spec.outputs])
            n = int(p.workspace_bytes(spec))
            if n > 0:
                out[i] = n
    return out


def _left_out(plan: Any, into: Optional[Sequence]) -> set[int]:
    """Slots the planner must not place: graph outputs, outputs of steps without destination
    passing (when ``into`` is given) and tensors of objects or strings."""
    out = set(plan_outputs(plan))
    for i, st in enumerate(plan.steps):
        for s, t in zip(st.outs, st.spec.outputs):
            if s >= 0 and ((into is not None and into[i] is None) or t is None or np.dtype(t[0]).kind in "OUSV"):
                out.add(s)
    return out


def _view_sources(plan: Any, left_out: set[int]) -> dict[int, int]:
    """``{slot: slot whose bytes it may view}`` for the unplanned outputs of view ops (a chain of
    views leads back to its first slot). Graph outputs are not views: they are copied out."""
    outputs, src = plan_outputs(plan), {}
    for st in plan.steps:
        if st.spec.op_type in VIEW_OPS and st.ins and st.ins[0] >= 0:
            root = src.get(st.ins[0], st.ins[0])
            src.update({s: root for s in st.outs if s >= 0 and s in left_out and s not in outputs})
    return src


def _for_planning(plan: Any, dims: Mapping[str, int], views: Mapping[int, int]) -> SimpleNamespace:
    """``plan`` as the memory planner should see it: symbolic dims at their ``dims`` sizes, and
    each read of a view also a read of the slot it views."""
    steps = []
    for st in plan.steps:
        extra = tuple(views[s] for s in st.ins if s in views)
        steps.append(dataclasses.replace(st, spec=_resolved_spec(st.spec, dims), ins=tuple(st.ins) + extra))
    return SimpleNamespace(steps=steps, slot_of=plan.slot_of, value_names=plan.value_names,
                           constants=plan.constants)


def _resolved_spec(spec: Any, dims: Mapping[str, int]) -> Any:
    """The spec with its output shapes resolved by ``dims``. An input keeps its symbols unless it
    has exactly the first output's type: the in-place rule compares input and output types, and
    two different symbols planned at one size may still differ in a run (one of them 1)."""
    outs = [_resolved(t, dims) for t in spec.outputs]
    first = spec.outputs[0] if spec.outputs else None
    ins = [outs[0] if t is not None and first is not None and _same(t, first) else t for t in spec.inputs]
    return dataclasses.replace(spec, inputs=ins, outputs=outs)


def _same(a, b) -> bool:
    return a[0] == b[0] and a[1] is not None and b[1] is not None and tuple(a[1]) == tuple(b[1])


def _resolved(t, dims: Mapping[str, int]):
    if t is None or t[1] is None:
        return t
    return (t[0], tuple(dims.get(d, d) if isinstance(d, str) else d for d in t[1]))


# --- checking and describing ----------------------------------------------------------------------


def validate_layout(plan: Any, layout: ArenaLayout) -> None:
    """Check ``layout`` against ``plan`` with course.memory's validator: no two slots alive at one
    step (a view's reads counted as reads of what it views) share a byte, every offset is
    aligned and inside the arena, every slot's reserved bytes hold its tensor at ``layout.dims``,
    and no graph output, input or weight is placed; a Concat's chunk sits where the Concat puts
    that input, and a workspace lives for its step only. Raises ``MemoryPlanError``."""
    shaped = _for_planning(plan, layout.dims, layout.views)
    live, types, names = liveness(shaped), plan_types(shaped), plan.value_names
    outside = set(plan_outputs(plan)) | set(plan.constants) | (set(plan.slot_of.values()) - set(live))
    merged: dict = {}
    for s, off in layout.offsets.items():
        root = layout.inplace.get(s, s)
        shape = static_shape(types[s][1]) if s in types else None
        if s in outside or s not in live or shape is None or off != layout.offsets.get(root):
            raise MemoryPlanError(f"slot {names[s]!r} cannot be placed at offset {off} in this plan's arena")
        if tensor_bytes(types[s][0], shape, layout.alignment) > layout.sizes[s]:
            raise MemoryPlanError(f"slot {names[s]!r} needs more than the {layout.sizes[s]} bytes reserved")
        first, last = merged.get(root, live[s])
        merged[root] = (min(first, live[s][0]), max(last, live[s][1]))
    _check_chunks(plan, layout)
    sizes, offsets = {s: layout.sizes[s] for s in merged}, {s: layout.offsets[s] for s in merged}
    tags = {s: names[s] for s in merged}
    for i, (off, n) in layout.workspaces.items():
        if not 0 <= i < len(plan.steps):
            raise MemoryPlanError(f"a workspace for step {i}, which this plan of {len(plan.steps)} steps lacks")
        key = workspace_key(i)
        merged[key], sizes[key], offsets[key], tags[key] = (i, i), n, off, f"workspace of step {i}"
    validate(merged, sizes, offsets, layout.alignment, names=tags, capacity=layout.arena_bytes,
             within=layout.within)


def _check_chunks(plan: Any, layout: ArenaLayout) -> None:
    """Each chunk must be an input of a Concat that writes its container, at the byte offset where
    that Concat puts it, and a slot of the layout."""
    where = {(t, c): off for _, c, parts in plan_concat_candidates(plan) for t, off in parts}
    for t, (c, off) in layout.within.items():
        if where.get((t, c)) != off or t not in layout.offsets or c not in layout.offsets:
            raise MemoryPlanError(f"slot {plan.value_names[t]!r} cannot be a chunk {off} bytes into "
                                  f"{plan.value_names[c]!r}")


def arena_report(plan: Any, layout: ArenaLayout) -> dict:
    """The layout a session runs with, by value name: the keys of ``course.memory.memory_report``
    (``arena_bytes``, ``lower_bound_bytes``, ``strategy``, ``offsets``...; ``dynamic``: written
    slots whose shape stays symbolic), plus ``views``, ``dims``, ``outside``: every written
    slot not in the arena (graph outputs, outputs of kernels without destination passing, views),
    ``within`` (``{chunk: (Concat output, byte offset)}``), ``concats_in_place`` and
    ``workspaces`` (``{node: scratch bytes}``)."""
    names = plan.value_names
    shaped = _for_planning(plan, layout.dims, layout.views)
    live, types = liveness(shaped), plan_types(shaped)
    written = list(dict.fromkeys(s for st in plan.steps for s in st.outs if s >= 0))
    return {
        "strategy": layout.strategy, "alignment": layout.alignment, "arena_bytes": layout.arena_bytes,
        "lower_bound_bytes": layout.lower_bound_bytes, "naive_bytes": sum(layout.sizes.values()),
        "weights_bytes": sum(tensor_bytes(a.dtype, a.shape, layout.alignment)
                             for a in plan.constants.values() if hasattr(a, "dtype")),
        "offsets": {names[s]: off for s, off in layout.offsets.items()},
        "sizes": {names[s]: n for s, n in layout.sizes.items()},
        "intervals": {names[s]: live[s] for s in layout.offsets},
        "inplace": {names[d]: names[r] for d, r in layout.inplace.items()},
        "views": {names[v]: names[r] for v, r in layout.views.items()},
        "within": {names[t]: (names[c], off) for t, (c, off) in layout.within.items()},
        "concats_in_place": len({c for c, _ in layout.within.values()}),
        "workspaces": {plan.steps[i].spec.name: n for i, (_, n) in layout.workspaces.items()},
        "dims": dict(layout.dims),
        "dynamic": [names[s] for s in written if static_shape(types.get(s, (None, None))[1]) is None],
        "outside": [names[s] for s in written if s not in layout.offsets],
    }


# --- running ----------------------------------------------------------------------------------------

VIEW = "view"  # an output the step may return as a view of its first input (see VIEW_OPS)


class Place(NamedTuple):
    """A planned output: its bytes in the arena, and its type with the plan's symbols."""

    offset: int
    nbytes: int
    dtype: np.dtype
    shape: tuple


class StepViews(NamedTuple):
    """What a run's step writes into: ``into`` when its kernel writes into ``out`` itself (a view
    for every output); else ``out`` holds per output a view to copy into, VIEW, or None.
    ``workspace``: the step's scratch bytes (uint8) for an ``into`` kernel that declared some."""

    into: bool
    out: tuple
    workspace: Optional[np.ndarray] = None


class ArenaPool:
    """The arenas of one bound plan, lent one per run by ``lease`` (thread-safe: concurrent runs
    get one each, a new arena is made only when all are out). Sequential runs reuse one arena,
    so they allocate nothing for the planned slots; the pool keeps as many arenas as runs ever
    overlapped."""

    def __init__(self, bound: Any):
        plan = bound.plan
        self.layout: ArenaLayout = plan.arena
        self.table = _step_table(plan, self.layout)
        self.into = [k is not None for k in (bound.into or [None] * len(plan.steps))]
        self.symbols = _input_symbols(plan)
        self.created = 0  # arenas made so far
        self._free: list[RunArena] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lease(self, slots: Sequence) -> Iterator["RunArena"]:
        """An arena with its views carved for the dims of the inputs already in ``slots``."""
        with self._lock:
            run = self._free.pop() if self._free else None
        if run is None:
            run = RunArena(self)
            with self._lock:
                self.created += 1
        try:
            run.carve({name: slots[s].shape[axis] for name, s, axis in self.symbols})
            yield run
        finally:
            with self._lock:
                self._free.append(run)


class RunArena:
    """One arena of a pool: its buffer, and per step the views a run writes (``places``), carved
    once for each new set of symbolic dims (once for good when there are none)."""

    def __init__(self, pool: ArenaPool):
        self.pool = pool
        self.arena = Arena(pool.layout.arena_bytes, pool.layout.alignment)
        self.buffer = self.arena.buffer
        self.places: list[Optional[StepViews]] = []
        self._dims: Optional[dict] = None

    def carve(self, dims: dict) -> None:
        if dims == self._dims:
            return
        spaces = self.pool.layout.workspaces
        self.places = [None if outs is None else self._step(outs, dims, into, spaces.get(i))
                       for i, (outs, into) in enumerate(zip(self.pool.table, self.pool.into))]
        self._dims = dims

    def _step(self, outs: tuple, dims: dict, into: bool, space: Optional[tuple]) -> StepViews:
        views = tuple(self._view(o, dims) if type(o) is Place else o for o in outs)
        into = into and all(type(v) is np.ndarray for v in views)
        scratch = self.arena.view(space[0], np.uint8, (space[1],)) if into and space is not None else None
        return StepViews(into, views, scratch)

    def _view(self, p: Place, dims: dict) -> Optional[np.ndarray]:
        """The slot's view with this run's shape, or None when that shape is unknown or does not
        fit the bytes reserved (the kernel's own array is used then)."""
        shape = tuple(dims.get(d) if isinstance(d, str) else d for d in p.shape)
        if any(d is None for d in shape) or int(np.prod(shape, dtype=np.int64)) * p.dtype.itemsize > p.nbytes:
            return None
        return self.arena.view(p.offset, p.dtype, shape)


def _step_table(plan: Any, layout: ArenaLayout) -> list[Optional[tuple]]:
    """Per step, per output: its Place, VIEW or None; None for a whole step that neither writes
    nor reads the arena (its outputs cannot be arena memory: no check needed)."""
    in_arena = set(layout.offsets) | set(layout.views)
    table = []
    for st in plan.steps:
        types = list(st.spec.outputs) + [None] * (len(st.outs) - len(st.spec.outputs))
        outs = tuple(_place(s, t, layout) for s, t in zip(st.outs, types))
        touches = any(o is not None for o in outs) or any(s in in_arena for s in st.ins)
        table.append(outs if touches else None)
    return table


def _place(slot: int, t, layout: ArenaLayout):
    if slot in layout.offsets and t is not None and t[1] is not None:
        return Place(layout.offsets[slot], layout.sizes[slot], np.dtype(t[0]), tuple(t[1]))
    return VIEW if slot in layout.views else None


def _input_symbols(plan: Any) -> list[tuple[str, int, int]]:
    """``(symbol, slot, axis)``: where a run finds each symbolic dim of the graph inputs."""
    written = {s for st in plan.steps for s in st.outs}
    fed = {s for s in plan.slot_of.values() if s not in written and s not in plan.constants}
    out, seen = [], set()
    for st in plan.steps:
        for s, t in zip(st.ins, st.spec.inputs):
            if s in fed and t is not None and t[1] is not None:
                for axis, d in enumerate(t[1]):
                    if isinstance(d, str) and d not in seen:
                        seen.add(d)
                        out.append((d, s, axis))
    return out


def arena_pool(bound: Any, enabled: bool = True, dims: Optional[Mapping[str, int]] = None,
               strategy: Optional[Strategy] = None) -> Optional[ArenaPool]:
    """The arenas a session runs ``bound`` in, or None when ``enabled`` is False. The plan's own
    layout is used when it has one (an engine file's: validated first) and neither ``dims`` nor
    a ``strategy`` (a name, or a placement function: course.memory.place) is asked for;
    otherwise the layout is planned here and stored in the plan."""
    if not enabled:
        return None
    plan = bound.plan
    if plan.arena is None or dims is not None or strategy is not None:
        plan.arena = plan_arena(plan, dims, strategy or "best", into=bound.into,
                                providers={p.name: p for p in bound.providers})
    else:
        validate_layout(plan, plan.arena)
    return ArenaPool(bound)
