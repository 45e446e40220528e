"""Partitioning: which provider runs each node (onnxruntime's ``GetCapability`` loop, simplified).

Providers are asked in the session's order; a node goes to the first that claims it. A node
nobody claims is an error that names it. A device provider (``provider.device != "cpu"``) keeps
its tensors in device memory: ``copies.insert_copies`` then adds the transfer nodes at the
borders, and the assignment table counts them in its footer.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from course.errors import UnsupportedOpError
from course.ir.graph import Graph, Node
from course.ir.infer import bind, node_prefix
from course.providers.base import ExecutionProvider, NodeSpec
from course.runtime.copies import TO_DEVICE, TO_HOST


def node_spec(graph: Graph, node: Node) -> NodeSpec:
    """The plain-data description of ``node`` that providers claim and make kernels from."""
    op, attrs = bind(graph, node)
    if getattr(op, "wants_num_outputs", False):
        attrs["_num_outputs"] = len(node.outputs)
    return NodeSpec(
        name=node.name, op_type=node.op_type, domain=node.domain, opset=graph.opset(node.domain),
        attrs=attrs, inputs=[_type(v) for v in node.inputs], outputs=[_type(v) for v in node.outputs],
        marks=dict(node.meta),
        constant_inputs=tuple(i for i, v in enumerate(node.inputs)
                              if v is not None and v.const_value is not None and not graph.is_overridable(v)),
    )


def _type(v):
    if v is None or v.type is None:
        return None
    return (np.dtype(v.type.dtype), v.type.shape)


def partition(graph: Graph, providers: Sequence[ExecutionProvider]) -> dict[int, ExecutionProvider]:
    """``{id(node): provider}`` for every node of ``graph`` (types inferred)."""
    out = {}
    for node in graph.nodes:
        spec = node_spec(graph, node)
        owner = next((p for p in providers if p.claims(spec)), None)
        if owner is None:
            names = ", ".join(p.name for p in providers)
            raise UnsupportedOpError(f"{node_prefix(node)}no execution provider can run this node "
                                     f"(tried {names}); add ReferenceExecutionProvider or a provider with "
                                     f"a kernel for {node.op_type!r}")
        out[id(node)] = owner
    return out


def assignment_table(rows: Sequence[tuple[str, str, str]]) -> str:
    """A readable table of (node name, op type, provider) rows; when some rows are host<->device
    copies, a footer counts them."""
    header = ("node", "op", "provider")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(3)]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    table = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
    to_device, to_host = (sum(r[1] == op for r in rows) for op in (TO_DEVICE, TO_HOST))
    if to_device or to_host:
        table.append(f"host<->device copies per run: {to_device + to_host} "
                     f"({to_device} to the device, {to_host} to the host)")
    return "\n".join(table)
