"""The pass contract: a ``Pass`` rewrites a graph and says whether it changed anything.

``Pass.call(graph) -> PassResult(graph, modified)``; a ``PassManager`` runs a list of passes
over and over until a whole round changes nothing (a fixpoint) or ``steps`` rounds are done.
Passes edit graphs only through the IR's own API (``insert_before``, ``remove``,
``replace_all_uses_with``, ``set_input``), which keeps use-def links right; the helpers below
cover the few chores every rewrite shares (fresh names, reading constants, retiring values).
The manager keeps a ``PassRecord`` per pass run (op counts before -> after, seconds taken);
``format_report`` prints them as a table.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from course.errors import EngineError
from course.ir.graph import Graph, Node, Value


class PassError(EngineError):
    """A pass failed or left a malformed graph; the message names the pass."""


@dataclass(frozen=True)
class PassResult:
    graph: Graph
    modified: bool


class Pass:
    """Base class: subclasses implement ``call``. ``protected`` op types are never rewritten.

    ``InferenceSession`` protects every op type that has a custom kernel, so a learner's Conv
    plugged in through ``custom_kernels`` still sees every Conv node of the model.
    """

    def __init__(self, protected: Iterable[str] = ()):
        self.protected = frozenset(protected)

    @property
    def name(self) -> str:
        return type(self).__name__

    def call(self, graph: Graph) -> PassResult:
        raise NotImplementedError(f"{self.name}.call")

    def __call__(self, graph: Graph) -> PassResult:
        result = self.call(graph)
        if not isinstance(result, PassResult):
            raise PassError(f"pass {self.name!r} returned {type(result).__name__}, not a PassResult")
        return result

    def __repr__(self) -> str:
        return f"{self.name}()"


@dataclass(frozen=True)
class PassRecord:
    """What one run of one pass did: op-type counts before and after, and the time it took."""

    name: str
    round: int
    modified: bool
    before: Counter
    after: Counter
    seconds: float

    def changes(self) -> dict[str, tuple[int, int]]:
        """``{op_type: (before, after)}`` for the op types whose count changed."""
        return {k: (self.before.get(k, 0), self.after.get(k, 0))
                for k in sorted(set(self.before) | set(self.after)) if self.before.get(k, 0) != self.after.get(k, 0)}


def op_counts(graph: Graph) -> Counter:
    return Counter(n.op_type for n in graph.nodes)


def format_report(records: Sequence[PassRecord]) -> str:
    """One line per pass run: round, pass, nodes before -> after, milliseconds, op types changed."""
    lines = [f"{'round':>5}  {'pass':<32} {'nodes':>13} {'ms':>8}  changes"]
    for r in records:
        nodes = f"{sum(r.before.values())} -> {sum(r.after.values())}"
        changed = ", ".join(f"{k} {a}->{b}" for k, (a, b) in r.changes().items())
        lines.append(f"{r.round:>5}  {r.name:<32} {nodes:>13} {1000 * r.seconds:8.2f}  {changed}")
    return "\n".join(lines)


class PassManager:
    """Run ``passes`` in order, repeatedly, until a round modifies nothing (at most ``steps`` rounds).

    With ``verify=True`` the graph is checked (structure only: passes may run before types are
    inferred) after every pass, so a pass that breaks the graph is named, not a later stage.
    ``report`` holds a ``PassRecord`` for every pass run of the last ``run``.
    """

    def __init__(self, passes: Sequence[Pass], steps: int = 8, verify: bool = True):
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.passes = list(passes)
        self.steps = steps
        self.verify = verify
        self.report: list[PassRecord] = []

    def __call__(self, graph: Graph) -> PassResult:
        self.report = []
        modified = False
        for step in range(self.steps):
            changed = False
            for p in self.passes:
                graph, did = self._run_one(p, graph, step)
                changed |= did
            modified |= changed
            if not changed:
                break
        return PassResult(graph, modified)

    run = __call__

    def _run_one(self, p: Pass, graph: Graph, step: int) -> tuple[Graph, bool]:
        where = f"pass {p.name!r} (round {step + 1})"
        before, start = op_counts(graph), time.perf_counter()
        try:
            result = p(graph)
        except PassError:
            raise
        except Exception as e:
            raise PassError(f"{where} failed: {type(e).__name__}: {e}") from e
        if self.verify:
            try:
                result.graph.verify(check_types=False)
            except EngineError as e:
                raise PassError(f"{where} left a malformed graph: {type(e).__name__}: {e}") from e
        self.report.append(PassRecord(p.name, step + 1, result.modified, before, op_counts(result.graph),
                                      time.perf_counter() - start))
        return result.graph, result.modified


# --- helpers shared by the passes ---------------------------------------------------------------
def constant(graph: Graph, v: Optional[Value]) -> Optional[np.ndarray]:
    """The payload of ``v`` if it is a fixed initializer (not one a feed may override), else None."""
    if v is None or v.const_value is None or v.producer() is not None or graph.is_overridable(v):
        return None
    return v.const_value


def is_output(graph: Graph, v: Optional[Value]) -> bool:
    """True if ``v`` is one of the graph's outputs (its name is part of the model's interface)."""
    return v is not None and any(o is v for o in graph.outputs)


def forward(graph: Graph, old: Value, new: Value) -> bool:
    """Make readers of ``old`` read ``new``; False (nothing done) if that would lose an output name.

    When ``old`` is a graph output, ``new`` takes over its name; that is impossible when ``new``
    is a graph input, an initializer or another graph output (their names are fixed too).
    """
    if is_output(graph, old):
        if new.producer() is None or is_output(graph, new):
            return False
        take_over(graph, old, new)
    else:
        graph.replace_all_uses_with(old, new)
    return True


def infer_quietly(graph: Graph) -> None:
    """Refresh ``value.type`` where inference can; a pass that needs shapes calls this first.

    A graph inference fails on keeps the types set before the failing node: passes then skip
    rewrites that need an unknown shape, and the session reports the error itself later.
    """
    try:
        graph.infer_types()
    except EngineError:
        pass


def rank(v: Optional[Value]) -> Optional[int]:
    """The rank of ``v`` if known."""
    t = None if v is None else v.type
    return None if t is None or t.shape is None else len(t.shape)


def static_shape(v: Optional[Value]) -> Optional[tuple[int, ...]]:
    """The shape of ``v`` if every dim is a known int."""
    t = None if v is None else v.type
    if t is None or t.shape is None or not all(isinstance(d, int) for d in t.shape):
        return None
    return tuple(t.shape)


def only_reader(graph: Graph, v: Value) -> Optional[Node]:
    """The single node reading ``v`` through a single input slot, if ``v`` is not a graph output."""
    uses = v.uses()
    if len(uses) != 1 or any(o is v for o in graph.outputs):
        return None
    return uses[0][0]


class Namer:
    """Hands out names no value or node of the graph uses yet (``base``, ``base_1``, ...)."""

    def __init__(self, graph: Graph):
        self.taken = {v.name for v in graph.values()} | {n.name for n in graph.nodes}

    def __call__(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


def take_over(graph: Graph, old: Value, new: Value) -> None:
    """Make ``new`` stand in for ``old`` everywhere, graph outputs included, under old's name.

    Call it once the node producing ``new`` is in the graph and before the node producing ``old``
    is removed; the name moves over so the model's interface (output names) does not change.
    """
    graph.replace_all_uses_with(old, new, replace_graph_outputs=True)
    if new.type is None:
        new.type = old.type
    new.name, old.name = old.name, f"{old.name}~replaced"


def drop_unused_initializers(graph: Graph, values: Iterable[Optional[Value]]) -> None:
    """Forget initializers among ``values`` that nothing reads any more (so their memory goes)."""
    for v in values:
        if v is None or v.uses() or graph.initializers.get(v.name) is not v:
            continue
        if any(x is v for x in graph.inputs) or any(x is v for x in graph.outputs):
            continue
        del graph.initializers[v.name]
