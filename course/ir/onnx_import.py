"""ONNX -> IR: ``from_onnx(model)`` builds a ``Graph`` and checks the model's structure.

What is checked here (each error names the node or value): the bytes are an ONNX model; opset
imports (one per domain, ``ai.onnx`` within the versions the engine knows); every op has a kernel
for the model's opset; attributes convert to Python values; value names are unique; every node
input is defined (``""`` = omitted optional input); the graph has no cycle (nodes may come in
any order: they are sorted, ties kept in file order). Shapes and dtypes are the job of
``infer_types``. Intermediate ``value_info`` entries are ignored: inference recomputes them.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np
import onnx
from onnx import AttributeProto, ModelProto, numpy_helper

from course.errors import DanglingValueError, DTypeError, EngineError, ModelError, OpAttributeError, OpsetError, \
    ShapeError, UnsupportedOpError
from course.ir import dtypes
from course.ir.graph import Graph, Node, Value
from course.ir.types import TensorType
from course.ops import registry

MIN_OPSET = 1  # each op's registered range decides what an old opset may use (OpsetError per node)
MAX_OPSET = onnx.defs.onnx_opset_version()  # newest opset the pinned onnx package defines

ModelLike = Union[ModelProto, bytes, bytearray, str, "os.PathLike[str]"]


def load_model_proto(model: ModelLike) -> tuple[ModelProto, Optional[str]]:
    """A ModelProto from a proto, bytes or a path; also the folder holding external data."""
    if isinstance(model, ModelProto):
        return model, None
    if isinstance(model, (bytes, bytearray, memoryview)):
        return _parse(bytes(model)), None
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            return _parse(f.read()), os.path.dirname(os.path.abspath(model))
    raise TypeError(f"model must be an onnx.ModelProto, bytes or a path, not {type(model).__name__}")


def _parse(data: bytes) -> ModelProto:
    proto = ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError, or worse on arbitrary bytes
        raise ModelError(f"not an ONNX model: the bytes do not parse as a ModelProto ({e})") from None
    if not proto.HasField("graph"):
        raise ModelError("not an ONNX model: it has no graph")
    return proto


def from_onnx(model: ModelLike) -> Graph:
    """Import an ONNX model (proto, bytes or path) into a sorted, structurally valid Graph."""
    proto, base_dir = load_model_proto(model)
    if not proto.HasField("graph"):
        raise ModelError("not an ONNX model: it has no graph")
    graph = _Builder(proto, base_dir).build()
    graph.sort()  # GraphCycleError names the nodes on a cycle
    return graph


def opset_imports(proto: ModelProto) -> dict[str, int]:
    out: dict[str, int] = {}
    for o in proto.opset_import:
        d = "" if o.domain in ("", "ai.onnx") else o.domain
        if d in out:
            raise ModelError(f"the model imports domain {d or 'ai.onnx'!r} twice")
        if d == "" and not MIN_OPSET <= o.version <= MAX_OPSET:
            raise OpsetError(f"the model imports ai.onnx opset {o.version}; this engine implements "
                             f"opsets {MIN_OPSET} to {MAX_OPSET}")
        out[d] = int(o.version)
    return out


class _Builder:
    def __init__(self, proto: ModelProto, base_dir: Optional[str]):
        self.proto, self.g, self.base_dir = proto, proto.graph, base_dir
        self.values: dict[str, Value] = {}

    def build(self) -> Graph:
        graph = Graph(opset_imports=opset_imports(self.proto), name=self.g.name or "graph")
        graph.ir_version = int(self.proto.ir_version) or None
        graph.initializers = self._initializers()
        graph.inputs = self._inputs(graph.initializers)
        names = self._node_names()
        made = [self._node_outputs(n, names[i]) for i, n in enumerate(self.g.node)]
        graph.append([self._node(graph, n, node) for n, node in zip(self.g.node, made)])
        graph.outputs = self._outputs()
        return graph

    # --- values -------------------------------------------------------------------------------
    def _claim(self, v: Value, where: str) -> None:
        if not v.name:
            raise ModelError(f"{where} has an empty name")
        if v.name in self.values:
            raise ModelError(f"duplicate value name {v.name!r}: {where} reuses a name already defined")
        self.values[v.name] = v

    def _initializers(self) -> dict[str, Value]:
        out: dict[str, Value] = {}
        tensors = [(t, t.name) for t in self.g.initializer]
        tensors += [(s, s.values.name) for s in self.g.sparse_initializer]
        for t, name in tensors:
            arr = self._array(t, f"initializer {name!r}")
            v = Value(name, TensorType(arr.dtype, arr.shape), const_value=arr)
            self._claim(v, f"initializer {name!r}")
            out[name] = v
        return out

    def _array(self, t, what: str) -> np.ndarray:
        if isinstance(t, onnx.SparseTensorProto):
            return _sparse_to_dense(t, what)
        dtypes.to_numpy(t.data_type, what)
        try:
            return numpy_helper.to_array(t, self.base_dir or "")
        except Exception as e:
            raise ModelError(f"{what} cannot be read: {type(e).__name__}: {e}") from None

    def _inputs(self, inits: dict[str, Value]) -> list[Value]:
        out = []
        for vi in self.g.input:
            t = value_info_type(vi, f"graph input {vi.name!r}", required=vi.name not in inits)
            if vi.name in inits:  # IR < 4 style: the initializer is a default a feed may override
                v = inits[vi.name]
                if t is not None and t.dtype != v.type.dtype:
                    raise DTypeError(f"graph input {vi.name!r} is declared {t.dtype} but its "
                                     f"initializer holds {v.type.dtype}")
                if any(o is v for o in out):
                    raise ModelError(f"graph input {vi.name!r} is listed twice")
                v.type = t if t is not None and t.shape is not None else v.type
            else:
                v = Value(vi.name, t)
                self._claim(v, f"graph input {vi.name!r}")
            out.append(v)
        return out

    def _outputs(self) -> list[Value]:
        if not self.g.output:
            raise ModelError("the graph declares no outputs: there is nothing to compute")
        out = []
        for vi in self.g.output:
            v = self.values.get(vi.name)
            if v is None:
                raise DanglingValueError(f"graph output {vi.name!r} is not produced by any node, "
                                         f"nor a graph input or initializer")
            if any(o is v for o in out):
                raise ModelError(f"graph output {vi.name!r} is listed twice")
            t = value_info_type(vi, f"graph output {vi.name!r}", required=False)
            if t is not None and v.producer() is not None:
                v.type = t  # declared; infer_types merges it with what the node computes
            out.append(v)
        return out

    # --- nodes --------------------------------------------------------------------------------
    def _node_names(self) -> list[str]:
        """Node names, unique: unnamed nodes get ``OpType_i``, repeated names a suffix."""
        taken = {n.name for n in self.g.node if n.name}
        used: set[str] = set()
        out = []
        for i, n in enumerate(self.g.node):
            name = n.name if n.name and n.name not in used else None
            base = n.name or f"{n.op_type}_{i}"
            k = 0
            while name is None:
                cand = base if k == 0 and not n.name else f"{base}_{k}"
                if cand not in taken and cand not in used:
                    name = cand
                k += 1
            used.add(name)
            out.append(name)
        return out

    def _node_outputs(self, n: onnx.NodeProto, name: str) -> Node:
        outs: list[Optional[Value]] = [Value(o) if o else None for o in n.output]
        for v in outs:
            if v is not None:
                self._claim(v, f"output {v.name!r} of node {name!r} ({n.op_type})")
        return Node(n.op_type, (), outs, name=name, domain="" if n.domain == "ai.onnx" else n.domain)

    def _node(self, graph: Graph, n: onnx.NodeProto, node: Node) -> Node:
        where = f"node {node.name!r} ({n.op_type})"
        opset = graph.opset(node.domain)
        if opset is None:
            raise OpsetError(f"{where}: the model imports no opset for domain {n.domain or 'ai.onnx'!r}")
        try:
            registry.lookup(n.op_type, opset, node.domain)
        except UnsupportedOpError as e:
            known = n.op_type in registry.supported_ops(node.domain)  # then only this opset is the problem
            raise (OpsetError if known else type(e))(f"{where}: {e}") from None
        inputs: list[Optional[Value]] = []
        for name in n.input:
            if name and name not in self.values:
                raise DanglingValueError(f"{where} reads {name!r}, which no node produces and which is "
                                         f"not a graph input or initializer")
            inputs.append(self.values[name] if name else None)
        while inputs and inputs[-1] is None:
            inputs.pop()
        node._inputs = inputs
        node.attrs = self._attrs(n, where)
        return node

    def _attrs(self, n: onnx.NodeProto, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a in n.attribute:
            if a.name in out:
                raise OpAttributeError(f"{where}: attribute {a.name!r} is given twice")
            out[a.name] = convert_attribute(a, f"{where}: attribute {a.name!r}", self.base_dir)
        if n.op_type == "Constant" and "sparse_value" in out:
            out["value"] = out.pop("sparse_value")  # densified above; the kernel reads `value`
        return out


def value_info_type(vi: onnx.ValueInfoProto, what: str, required: bool) -> Optional[TensorType]:
    """The TensorType a ValueInfoProto declares (None if it declares none and none is required)."""
    kind = vi.type.WhichOneof("value") if vi.HasField("type") else None
    if kind is None:
        if required:
            raise ModelError(f"{what} has no type")
        return None
    if kind != "tensor_type":
        raise DTypeError(f"{what} has a {kind.removesuffix('_type')} type; this engine supports only tensors")
    tt = vi.type.tensor_type
    dtype = dtypes.to_numpy(tt.elem_type, what)
    if not tt.HasField("shape"):
        return TensorType(dtype, None)
    dims = []
    for d in tt.shape.dim:
        which = d.WhichOneof("value")
        if which == "dim_value":
            if d.dim_value < 0:
                raise ShapeError(f"{what} has a negative dimension {d.dim_value}")
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param if which == "dim_param" and d.dim_param else None)
    return TensorType(dtype, tuple(dims))


def convert_attribute(a: AttributeProto, what: str, base_dir: Optional[str] = None) -> Any:
    """An AttributeProto as a Python value: int, float, str, ndarray or a list of those."""
    T = AttributeProto
    if a.ref_attr_name:
        raise UnsupportedOpError(f"{what} refers to a function attribute; functions are not supported")
    if a.type in (T.GRAPH, T.GRAPHS):
        raise UnsupportedOpError(f"{what} is a subgraph; control flow is not supported")
    if a.type in (T.TYPE_PROTO, T.TYPE_PROTOS):
        raise UnsupportedOpError(f"{what} is a type; type attributes are not supported")
    if a.type == T.FLOAT:
        return float(a.f)
    if a.type == T.INT:
        return int(a.i)
    if a.type == T.STRING:
        return _decode(a.s, what)
    if a.type == T.FLOATS:
        return [float(x) for x in a.floats]
    if a.type == T.INTS:
        return [int(x) for x in a.ints]
    if a.type == T.STRINGS:
        return [_decode(s, what) for s in a.strings]
    if a.type == T.TENSOR:
        return _attr_tensor(a.t, what, base_dir)
    if a.type == T.TENSORS:
        return [_attr_tensor(t, what, base_dir) for t in a.tensors]
    if a.type == T.SPARSE_TENSOR:
        return _sparse_to_dense(a.sparse_tensor, what)
    if a.type == T.SPARSE_TENSORS:
        return [_sparse_to_dense(t, what) for t in a.sparse_tensors]
    raise OpAttributeError(f"{what} has no valid type (type code {a.type})")


def _decode(s: bytes, what: str) -> str:
    try:
        return s.decode("utf-8")
    except UnicodeDecodeError:
        raise OpAttributeError(f"{what} is not valid UTF-8 text") from None


def _attr_tensor(t: onnx.TensorProto, what: str, base_dir: Optional[str]) -> np.ndarray:
    dtypes.to_numpy(t.data_type, what)
    try:
        return numpy_helper.to_array(t, base_dir or "")
    except Exception as e:
        raise OpAttributeError(f"{what} holds a tensor that cannot be read: {type(e).__name__}: {e}") from None


def _sparse_to_dense(s: onnx.SparseTensorProto, what: str) -> np.ndarray:
    """Scatter a sparse tensor's values (indices flat [NNZ] or per-dim [NNZ, rank]) into zeros."""
    try:
        dtype = dtypes.to_numpy(s.values.data_type, what)
        values = numpy_helper.to_array(s.values).reshape(-1)
        idx = numpy_helper.to_array(s.indices).astype(np.int64) if s.indices.dims else np.zeros(0, np.int64)
        shape = tuple(int(d) for d in s.dims)
        dense = np.zeros(shape, dtype=dtype)
        flat = np.ravel_multi_index(tuple(idx.T), shape) if idx.ndim == 2 else idx.reshape(-1)
        dense.reshape(-1)[flat] = values
        return dense
    except EngineError:
        raise
    except Exception as e:
        raise ModelError(f"{what} is a sparse tensor that cannot be read: {type(e).__name__}: {e}") from None
