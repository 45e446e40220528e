"""Run a float model over a calibration reader and hand back the intermediate tensors it makes.

The model is copied, every tensor asked about becomes a graph output, and the copy runs node by
node on the reference ops (``course.passes.evaluate.run_graph``) with no graph passes: a pass
could rename or fuse away the tensors being observed, and calibration needs no session.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

import numpy as np

from course.ir.graph import Graph


def load_graph(model) -> Graph:
    """A fresh Graph from an ONNX model, bytes, a path or a Graph (a Graph is copied)."""
    from course.ir.onnx_export import to_onnx
    from course.ir.onnx_import import from_onnx

    if isinstance(model, Graph):
        model.infer_types()
        model = to_onnx(model)
    graph = from_onnx(model)
    graph.infer_types()
    return graph


def float_tensors(graph: Graph) -> list[str]:
    """Names of the fed inputs and of every float tensor a node writes."""
    names = [v.name for v in graph.inputs if not graph.is_overridable(v)]
    for n in graph.nodes:
        names += [v.name for v in n.outputs if v is not None and v.type is not None and v.type.dtype.kind == "f"]
    return names


def observe(model, reader, names: Optional[Iterable[str]] = None) -> Iterator[dict[str, np.ndarray]]:
    """``{name: array}`` per batch the reader gives, for ``names`` (default: ``float_tensors``)."""
    from course.passes.evaluate import run_graph

    graph = load_graph(model)
    wanted = list(float_tensors(graph) if names is None else names)
    fed = {v.name for v in graph.inputs}
    values = {v.name: v for v in graph.values()}
    missing = [n for n in wanted if n not in values]
    if missing:
        raise KeyError(f"tensors {missing} are not in the model")
    outputs = {v.name for v in graph.outputs}
    graph.outputs += [values[n] for n in wanted if n not in fed and n not in outputs]
    produced = [n for n in wanted if n not in fed]
    position = {v.name: i for i, v in enumerate(graph.outputs)}
    while (feed := reader.get_next()) is not None:
        results = run_graph(graph, feed)
        batch = {n: results[position[n]] for n in produced}
        batch.update({n: np.asarray(feed[n]) for n in wanted if n in fed})
        yield batch
