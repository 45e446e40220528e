"""The pass contract: a ``Pass`` rewrites a graph and says whether it changed anything.

``Pass.call(graph) -> PassResult(graph, modified)``; a ``PassManager`` runs a list of passes
over and over until a whole round changes nothing (a fixpoint) or ``steps`` rounds are done.
Passes edit graphs only through the IR's own API (``insert_before``, ``remove``,
``replace_all_uses_with``, ``set_input``), which keeps use-def links right; the helpers below
cover the few chores every rewrite shares (fresh names, reading constants, retiring values).
"""
from __future__ import annotations

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


class PassManager:
    """Run ``passes`` in order, repeatedly, until a round modifies nothing (at most ``steps`` rounds).

    With ``verify=True`` the graph is checked (structure only: passes may run before types are
    inferred) after every pass, so a pass that breaks the graph is named, not a later stage.
    """

    def __init__(self, passes: Sequence[Pass], steps: int = 8, verify: bool = True):
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.passes = list(passes)
        self.steps = steps
        self.verify = verify

    def __call__(self, graph: Graph) -> PassResult:
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
        return result.graph, result.modified


# --- helpers shared by the passes ---------------------------------------------------------------
def constant(graph: Graph, v: Optional[Value]) -> Optional[np.ndarray]:
    """The payload of ``v`` if it is a fixed initializer (not one a feed may override), else None."""
    if v is None or v.const_value is None or v.producer() is not None or graph.is_overridable(v):
        return None
    return v.const_value


def only_reader(graph: Graph, v: Value) -> Optional[Node]:
    """The single node reading ``v`` through a single input slot, if ``v`` is not a graph output."""
    uses = v.uses()
    if len(uses) != 1 or any(o is v for o in graph.outputs):
        return None
    return uses[0][0]


class Namer:
    """Hands out value names not yet used in the graph (``base``, ``base_1``, ...)."""

    def __init__(self, graph: Graph):
        self.taken = {v.name for v in graph.values()}

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
