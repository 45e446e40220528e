"""Shape and dtype inference over a whole graph, with constant propagation for shape inputs.

Each node's op (from the registry, for the graph's opset) gets an ``InferContext``: its input
types and, where known, the *values* of its inputs. Known values are what make Reshape, Slice,
Expand, ConstantOfShape ... inferable: initializer payloads (not overridable ones), outputs of
Constant nodes, ``Shape`` of a statically shaped tensor, and the outputs of any node whose inputs
are all known and small (so ``Shape -> Gather -> Concat -> Reshape`` chains fold too).

Errors the op raises are re-raised as the same class with ``node 'name' (OpType): `` in front.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from course.errors import EngineError, KernelError, ModelError, OpsetError, ShapeError, DTypeError
from course.ir.graph import Graph, Node, Value
from course.ir.types import Shape, TensorType
from course.ops import registry
from course.ops.base import InferContext, Op

# Largest tensor (elements) computed at inference time; shape arithmetic is far below this.
FOLD_LIMIT = 4096


def node_prefix(node: Node) -> str:
    return f"node {node.name!r} ({node.op_type}): "


def with_node(node: Node, exc: EngineError) -> EngineError:
    """The same error class, its message prefixed with the node (unless it already names it)."""
    msg = str(exc)
    prefix = node_prefix(node)
    return exc if msg.startswith(prefix) else type(exc)(prefix + msg)


def bind(graph: Graph, node: Node) -> tuple[Op, dict[str, Any]]:
    """The node's Op (for the graph's opset) and its attributes with defaults filled in."""
    opset = graph.opset(node.domain)
    if opset is None:
        raise OpsetError(f"{node_prefix(node)}the model imports no opset for domain {node.domain or 'ai.onnx'!r}")
    try:
        op = registry.lookup(node.op_type, opset, node.domain)
        attrs = op.resolve_attrs(node.attrs)
    except EngineError as e:
        raise with_node(node, e) from None
    _check_arity(node, op)
    return op, attrs


def _check_arity(node: Node, op: Op) -> None:
    ins = list(node.inputs)
    while ins and ins[-1] is None:
        ins.pop()
    for what, got, (lo, hi) in (("input(s)", len(ins), op.num_inputs), ("output(s)", len(node.outputs), op.num_outputs)):
        if got < lo or (hi is not None and got > hi):
            want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            raise ModelError(f"{node_prefix(node)}takes {want} {what}, got {got}")
    for i in range(op.num_inputs[0]):
        if ins[i] is None:
            raise ModelError(f"{node_prefix(node)}required input {i} is omitted")


def infer_types(graph: Graph) -> None:
    """Set ``value.type`` on every node output (graph outputs merge with their declared type)."""
    consts: dict[int, np.ndarray] = {}
    for v in graph.initializers.values():
        if v.type is None:
            v.type = TensorType(v.const_value.dtype, v.const_value.shape)
        if not graph.is_overridable(v):
            consts[id(v)] = v.const_value
    declared = {id(v) for v in graph.outputs}
    for node in graph.nodes:
        for v in node.outputs:
            if v is not None and id(v) not in declared:
                v.type = None  # stale from an earlier run (a pass may have changed the graph)
    for node in graph.nodes:
        op, attrs = bind(graph, node)
        ctx = InferContext(inputs=[None if v is None else v.type for v in node.inputs],
                           consts=[None if v is None else consts.get(id(v)) for v in node.inputs],
                           attrs=attrs, num_outputs=len(node.outputs))
        types = _run_infer(node, op, ctx)
        for v, t in zip(node.outputs, types):
            if v is not None:
                v.type = merge_types(node, v, v.type, t)
        _fold(node, op, ctx, consts)


def _run_infer(node: Node, op: Op, ctx: InferContext) -> list[Optional[TensorType]]:
    try:
        return list(op.infer(ctx))
    except EngineError as e:
        raise with_node(node, e) from None
    except Exception as e:  # an op's inference must not crash the engine on odd shapes
        raise ShapeError(f"{node_prefix(node)}shape inference failed ({type(e).__name__}: {e})") from e


def merge_types(node: Node, v: Value, declared: Optional[TensorType], inferred: Optional[TensorType]):
    """Combine a declared type (graph outputs) with the inferred one; conflicts are errors."""
    if inferred is None or declared is None:
        return declared if inferred is None else inferred
    if declared.dtype != inferred.dtype:
        raise DTypeError(f"{node_prefix(node)}output {v.name!r} is declared {declared.dtype} "
                         f"but computes {inferred.dtype}")
    return TensorType(inferred.dtype, _merge_shapes(node, v, declared.shape, inferred.shape))


def _merge_shapes(node: Node, v: Value, a: Shape, b: Shape) -> Shape:
    if a is None or b is None:
        return b if a is None else a
    if len(a) != len(b):
        raise ShapeError(f"{node_prefix(node)}output {v.name!r} is declared with rank {len(a)} "
                         f"but computes rank {len(b)}")
    out = []
    for da, db in zip(a, b):
        if isinstance(da, int) and isinstance(db, int) and da != db:
            raise ShapeError(f"{node_prefix(node)}output {v.name!r} is declared {a} but computes {b}")
        out.append(db if isinstance(db, int) else da if da is not None else db)
    return tuple(out)


def _fold(node: Node, op: Op, ctx: InferContext, consts: dict[int, np.ndarray]) -> None:
    """Compute the node now if its inputs are known and small, recording its outputs as known."""
    outs = [v for v in node.outputs if v is not None]
    if not outs or any(v.type is None or not v.type.is_static or _size(v.type.shape) > FOLD_LIMIT for v in outs):
        return
    args = list(ctx.consts)
    if node.op_type == "Shape" and ctx.inputs and ctx.inputs[0] is not None and ctx.inputs[0].is_static:
        # Only the shape matters: a zero-strided view holds it without allocating the tensor.
        args = [np.broadcast_to(np.zeros((), ctx.inputs[0].dtype), ctx.inputs[0].shape)]
    present = [a for a, v in zip(args, node.inputs) if v is not None]
    if any(a is None for a in present) or sum(a.size for a in present) > FOLD_LIMIT:
        return
    results = run_kernel(node, op.compute, args, ctx.attrs, op)
    for v, r in zip(node.outputs, results):
        if v is not None:
            consts[id(v)] = r


def run_kernel(node: Node, fn, args: list, attrs: dict[str, Any], op: Op) -> tuple:
    """Call a kernel once (used by folding); errors name the node, as in the runtime."""
    kw = dict(attrs)
    if getattr(op, "wants_num_outputs", False):
        kw["_num_outputs"] = len(node.outputs)
    try:
        out = fn(*args, **kw)
    except EngineError as e:
        raise with_node(node, e) from None
    except Exception as e:
        raise KernelError(f"{node_prefix(node)}kernel failed: {type(e).__name__}: {e}") from e
    return out if isinstance(out, tuple) else (out,)


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
