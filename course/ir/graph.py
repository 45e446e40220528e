"""The engine's graph IR: ``Value``s (edges) and ``Node``s (ops) with use-def links.

Every ``Value`` knows its producer (the node that writes it, or ``None`` for graph inputs and
initializers) and its uses (``(node, input_index)`` pairs of nodes *in a graph* that read it).
Passes never edit these links by hand: they call ``Graph.append/insert_before/insert_after/
remove/replace_all_uses_with`` and ``Node.set_input``, which keep them consistent.

An omitted optional input or output (``""`` in ONNX) is ``None`` in ``node.inputs`` /
``node.outputs``. An initializer is a ``Value`` whose ``const_value`` holds its numpy payload; if
it is also listed in ``graph.inputs`` (ONNX IR < 4 style) a feed may override it.
"""
from __future__ import annotations

import heapq
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from course.errors import GraphCycleError, ModelError
from course.ir.types import TensorType


class Value:
    """A tensor flowing along an edge: a name, a static type, and use-def links."""

    __slots__ = ("name", "type", "const_value", "_producer", "_uses")

    def __init__(self, name: str, type: Optional[TensorType] = None, const_value: Optional[np.ndarray] = None):
        self.name = name
        self.type = type
        self.const_value = const_value  # the payload of an initializer, else None
        self._producer: Optional[Node] = None
        self._uses: list[tuple[Node, int]] = []

    def producer(self) -> Optional["Node"]:
        """The node whose output this is; None for graph inputs and initializers."""
        return self._producer

    def uses(self) -> list[tuple["Node", int]]:
        """``(node, input_index)`` for every input slot of an in-graph node that reads this value."""
        return list(self._uses)

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.type})"


class Node:
    """One operator application. ``inputs``/``outputs`` are tuples; change inputs with ``set_input``."""

    def __init__(self, op_type: str, inputs: Sequence[Optional[Value]] = (),
                 outputs: Sequence[Union[str, Value, None]] = (), attrs: Optional[dict[str, Any]] = None,
                 name: str = "", domain: str = ""):
        self.op_type = op_type
        self.domain = domain
        self.name = name
        self.attrs: dict[str, Any] = dict(attrs or {})
        # What passes note for the providers (``{"layout": "NHWC"}``); never exported to ONNX.
        self.meta: dict[str, Any] = {}
        self.graph: Optional[Graph] = None
        self._inputs: list[Optional[Value]] = list(inputs)
        outs: list[Optional[Value]] = []
        for o in outputs:
            v = Value(o) if isinstance(o, str) else o
            if v is not None:
                if v._producer is not None and v._producer is not self:
                    raise ValueError(f"value {v.name!r} is already produced by node {v._producer.name!r}")
                v._producer = self
            outs.append(v)
        self._outputs = tuple(outs)

    @property
    def inputs(self) -> tuple[Optional[Value], ...]:
        return tuple(self._inputs)

    @property
    def outputs(self) -> tuple[Optional[Value], ...]:
        return self._outputs

    def set_input(self, index: int, value: Optional[Value]) -> None:
        """Point input ``index`` at ``value`` (None = omitted), keeping use lists right."""
        old = self._inputs[index]
        if self.graph is not None and old is not None:
            old._uses.remove((self, index))
        self._inputs[index] = value
        if self.graph is not None and value is not None:
            value._uses.append((self, index))

    def _attach(self, graph: "Graph") -> None:
        if self.graph is not None:
            raise ValueError(f"node {self.name!r} is already in a graph")
        self.graph = graph
        for i, v in enumerate(self._inputs):
            if v is not None:
                v._uses.append((self, i))

    def _detach(self) -> None:
        for i, v in enumerate(self._inputs):
            if v is not None:
                v._uses.remove((self, i))
        self.graph = None

    def __repr__(self) -> str:
        ins = ", ".join("" if v is None else v.name for v in self._inputs)
        outs = ", ".join("" if v is None else v.name for v in self._outputs)
        return f"Node({self.name!r}, {self.op_type}({ins}) -> ({outs}))"


NodeOrNodes = Union[Node, Iterable[Node]]


def _as_list(nodes: NodeOrNodes) -> list[Node]:
    return [nodes] if isinstance(nodes, Node) else list(nodes)


class Graph:
    """Nodes in execution order plus graph inputs, outputs and initializers."""

    def __init__(self, inputs: Sequence[Value] = (), outputs: Sequence[Value] = (),
                 initializers: Sequence[Value] = (), nodes: Sequence[Node] = (),
                 opset_imports: Optional[dict[str, int]] = None, name: str = "graph"):
        self.name = name
        self.inputs: list[Value] = list(inputs)
        self.outputs: list[Value] = list(outputs)
        self.initializers: dict[str, Value] = {v.name: v for v in initializers}
        self.opset_imports: dict[str, int] = dict(opset_imports or {})
        self.ir_version: Optional[int] = None  # kept from an imported model, for export
        self._nodes: list[Node] = []
        self.append(list(nodes))

    # --- reading --------------------------------------------------------------------------------
    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(tuple(self._nodes))

    def __len__(self) -> int:
        return len(self._nodes)

    def opset(self, domain: str = "") -> Optional[int]:
        """The opset version the graph imports for ``domain`` ("" and "ai.onnx" are the same)."""
        d = "" if domain == "ai.onnx" else domain
        return self.opset_imports.get(d, self.opset_imports.get("ai.onnx") if d == "" else None)

    def is_overridable(self, value: Value) -> bool:
        """True for an initializer that is also a graph input: a feed may replace its payload."""
        return value.const_value is not None and any(v is value for v in self.inputs)

    def values(self) -> Iterator[Value]:
        """Every value once: inputs, initializers, then node outputs in node order."""
        seen: set[int] = set()
        for v in [*self.inputs, *self.initializers.values(),
                  *(o for n in self._nodes for o in n.outputs if o is not None)]:
            if id(v) not in seen:
                seen.add(id(v))
                yield v

    # --- building -------------------------------------------------------------------------------
    def add_initializer(self, name: str, array: np.ndarray) -> Value:
        """Add a constant tensor and return its Value (typed from the array)."""
        arr = np.asarray(array)
        v = Value(name, TensorType(arr.dtype, arr.shape), const_value=arr)
        self.initializers[name] = v
        return v

    def append(self, nodes: NodeOrNodes) -> None:
        for n in _as_list(nodes):
            n._attach(self)
            self._nodes.append(n)

    def insert_before(self, anchor: Node, nodes: NodeOrNodes) -> None:
        self._insert_at(self._index(anchor), _as_list(nodes))

    def insert_after(self, anchor: Node, nodes: NodeOrNodes) -> None:
        self._insert_at(self._index(anchor) + 1, _as_list(nodes))

    def _insert_at(self, pos: int, nodes: list[Node]) -> None:
        for n in nodes:
            n._attach(self)
        self._nodes[pos:pos] = nodes

    def _index(self, node: Node) -> int:
        for i, n in enumerate(self._nodes):
            if n is node:
                return i
        raise ValueError(f"node {node.name!r} is not in this graph")

    # --- editing --------------------------------------------------------------------------------
    def remove(self, node: Node, force: bool = False) -> None:
        """Take ``node`` out of the graph. Its outputs must be unused unless ``force``."""
        idx = self._index(node)
        if not force:
            for v in node.outputs:
                if v is None:
                    continue
                if v._uses:
                    users = ", ".join(repr(u.name) for u, _ in v._uses)
                    raise ModelError(f"cannot remove node {node.name!r} ({node.op_type}): "
                                     f"its output {v.name!r} is still used by {users}")
                if any(o is v for o in self.outputs):
                    raise ModelError(f"cannot remove node {node.name!r} ({node.op_type}): "
                                     f"its output {v.name!r} is a graph output")
        del self._nodes[idx]
        node._detach()

    def replace_all_uses_with(self, old: Value, new: Value, replace_graph_outputs: bool = False) -> None:
        """Make every node that reads ``old`` read ``new`` instead.

        Graph outputs are left alone unless ``replace_graph_outputs`` (a graph output's name is
        part of the model's interface; a pass that replaces one usually renames ``new`` too).
        """
        for node, i in old.uses():
            node.set_input(i, new)
        if replace_graph_outputs:
            self.outputs = [new if o is old else o for o in self.outputs]

    # --- order ----------------------------------------------------------------------------------
    def sort(self) -> None:
        """Topological sort (Kahn), ties broken by current order; GraphCycleError on a cycle."""
        self._nodes = [self._nodes[i] for i in self._topo_order()]

    def reorder(self, nodes: Sequence[Node]) -> None:
        """Put the graph's nodes in the order of ``nodes``, which must hold each of them once
        (whether the order is topological is ``verify``'s to say)."""
        if len(nodes) != len(self._nodes) or {id(n) for n in nodes} != {id(n) for n in self._nodes}:
            raise ValueError("reorder needs every node of the graph exactly once")
        self._nodes = list(nodes)

    def _topo_order(self) -> list[int]:
        """Indices of the nodes in sorted order; raises GraphCycleError listing a cycle."""
        order = {id(n): i for i, n in enumerate(self._nodes)}
        deps: dict[int, set[int]] = {}
        users: dict[int, list[int]] = {i: [] for i in range(len(self._nodes))}
        for i, n in enumerate(self._nodes):
            deps[i] = {order[id(v._producer)] for v in n.inputs
                       if v is not None and v._producer is not None and id(v._producer) in order}
            for d in deps[i]:
                users[d].append(i)
        ready = [i for i, d in deps.items() if not d]
        heapq.heapify(ready)
        out: list[int] = []
        while ready:
            i = heapq.heappop(ready)
            out.append(i)
            for u in users[i]:
                deps[u].discard(i)
                if not deps[u]:
                    heapq.heappush(ready, u)
        if len(out) != len(self._nodes):
            stuck = {i for i, d in deps.items() if d}
            cycle = [self._nodes[i] for i in self._find_cycle(stuck, deps)]
            names = " -> ".join(f"{n.name!r} ({n.op_type})" for n in cycle)
            raise GraphCycleError(f"graph has a cycle: {names} -> back to {cycle[0].name!r}")
        return out

    @staticmethod
    def _find_cycle(stuck: set[int], deps: dict[int, set[int]]) -> list[int]:
        """Every stuck node still waits on a stuck producer, so walking producers must loop."""
        path: list[int] = []
        where: dict[int, int] = {}
        i = min(stuck)
        while i not in where:
            where[i] = len(path)
            path.append(i)
            i = min(deps[i])
        return list(reversed(path[where[i]:]))  # producer -> consumer order

    # --- checks (implemented beside the IR) ------------------------------------------------------
    def verify(self, check_types: bool = True) -> None:
        """Raise a ModelError subclass naming the node if the graph is not well formed."""
        from course.ir.verify import verify

        verify(self, check_types=check_types)

    def infer_types(self) -> None:
        """Run every op's shape/dtype inference in order and set ``value.type``."""
        from course.ir.infer import infer_types

        infer_types(self)
