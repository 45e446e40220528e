"""Copies at device borders: after partitioning, explicit transfer nodes wherever a value crosses
between host memory and a device (onnxruntime's memcpy transformer, simplified).

Each provider says where its tensors live (``provider.device``: "cpu" for host numpy arrays,
"cuda" for device arrays). Graph inputs, initializers a feed may replace and the outputs of host
nodes live on the host. For a node input that lives elsewhere than where its node runs, one copy
node is inserted before the first node that needs it, and later readers on that side share it:

    MemcpyFromHost  (domain "course")  a host value -> its copy on the device
    MemcpyToHost    (domain "course")  a device value -> its copy on the host

A graph output made on a device gets a MemcpyToHost as well (``run`` returns numpy arrays); the
copy takes the output's name and the device value is renamed ``name@cuda``. Both copy ops run on
the device provider, as onnxruntime assigns them to the CUDA provider. Constant initializers get
no copy node: a device provider uploads each weight once and keeps it there.

Why on the graph and not on the plan: the copies become ordinary nodes, so the plan, its
liveness and memory plan, saved engines and ``describe_partition`` all see them with no special
case, and the count of copies per run is the count of copy steps in the plan.
"""
from __future__ import annotations

from typing import Mapping, MutableMapping, Optional

from course.ir.graph import Graph, Node, Value
from course.ops import registry
from course.ops.base import Op
from course.providers.base import ExecutionProvider

HOST = "cpu"
DOMAIN = "course"
TO_DEVICE, TO_HOST = "MemcpyFromHost", "MemcpyToHost"
COPY_OPS = frozenset({(TO_DEVICE, DOMAIN), (TO_HOST, DOMAIN)})


class MemcpyFromHost(Op):
    """Y = X, moved from host memory to the device of the provider that runs the node."""

    op_type, domain, since = TO_DEVICE, DOMAIN, 1


class MemcpyToHost(Op):
    """Y = X, moved from a device to host memory."""

    op_type, domain, since = TO_HOST, DOMAIN, 1


def device_of(provider: ExecutionProvider) -> str:
    return getattr(provider, "device", HOST) or HOST


def insert_copies(graph: Graph, owner: MutableMapping[int, ExecutionProvider]) -> int:
    """Insert the copies a partitioned ``graph`` needs (see the module); ``owner`` (``{id(node):
    provider}``, from ``partition``) gains an entry per copy node. Returns how many were inserted."""
    if all(device_of(p) == HOST for p in owner.values()):
        return 0
    for cls in (MemcpyFromHost, MemcpyToHost):
        registry.add_schema(cls)
    graph.opset_imports.setdefault(DOMAIN, 1)
    borders = _Borders(graph, owner)
    for node in graph.nodes:  # a snapshot: the copies inserted on the way are not visited
        provider = owner[id(node)]
        for i, v in enumerate(node.inputs):
            if v is None or (v.const_value is not None and not graph.is_overridable(v)):
                continue  # constants: a device provider keeps its own copy of each weight
            w = borders.at(v, device_of(provider), node, provider)
            if w is not v:
                node.set_input(i, w)
    renamed: dict[int, Value] = {}
    for k, v in enumerate(graph.outputs):
        if id(v) not in renamed and borders.place(v) != HOST:
            renamed[id(v)] = borders.output_on_host(v)
        graph.outputs[k] = renamed.get(id(v), v)
    return borders.count


class _Borders:
    """Where each value lives, and the copies made so far (one per value and place)."""

    def __init__(self, graph: Graph, owner: MutableMapping[int, ExecutionProvider]):
        self.graph, self.owner = graph, owner
        self.copies: dict[tuple[int, str], Value] = {}
        self.placed: dict[int, str] = {}  # id(copy) -> where it lives (a MemcpyToHost's is the host)
        self.taken = {v.name for v in graph.values()} | {n.name for n in graph.nodes}
        self.count = 0

    def place(self, v: Value) -> str:
        if id(v) in self.placed:
            return self.placed[id(v)]
        producer = v.producer()
        return HOST if producer is None else device_of(self.owner[id(producer)])

    def at(self, v: Value, where: str, before: Optional[Node], reader: ExecutionProvider) -> Value:
        """``v`` as it is at ``where``: itself, or its copy there (inserted before ``before``, or
        appended when None). A value on one device needed on another goes through the host."""
        if self.place(v) == where:
            return v
        key = (id(v), where)
        if key not in self.copies:
            if where == HOST:
                copy = self._insert(TO_HOST, v, where, before, self.owner[id(v.producer())])
            else:
                host = self.at(v, HOST, before, reader)
                copy = self._insert(TO_DEVICE, host, where, before, reader)
            self.copies[key] = copy
        return self.copies[key]

    def output_on_host(self, v: Value) -> Value:
        """The host copy of graph output ``v``, which takes over ``v``'s name."""
        host = self.at(v, HOST, None, self.owner[id(v.producer())])
        name = v.name
        v.name = self._fresh(f"{name}@{self.place(v)}")
        host.name = name
        return host

    def _insert(self, op_type: str, v: Value, where: str, before: Optional[Node],
                provider: ExecutionProvider) -> Value:
        out = Value(self._fresh(f"{v.name}@{where}"), v.type)
        node = Node(op_type, [v], [out], name=self._fresh(f"{op_type}_{v.name}"), domain=DOMAIN)
        if before is None:
            self.graph.append(node)
        else:
            self.graph.insert_before(before, node)
        self.owner[id(node)] = provider
        self.placed[id(out)] = where
        self.count += 1
        return out

    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name


def copy_count(plan, direction: Optional[str] = None) -> int:
    """Host<->device copies one run of ``plan`` makes (a Plan, or anything with ``.plan``, such as
    a session); ``direction`` "to_device" or "to_host" counts one kind only."""
    steps = getattr(plan, "plan", plan).steps
    want: Mapping[Optional[str], frozenset] = {None: COPY_OPS, "to_device": frozenset({(TO_DEVICE, DOMAIN)}),
                                               "to_host": frozenset({(TO_HOST, DOMAIN)})}
    if direction not in want:
        raise ValueError(f"direction must be 'to_device', 'to_host' or None, got {direction!r}")
    return sum((st.spec.op_type, st.spec.domain or "") in want[direction] for st in steps)
