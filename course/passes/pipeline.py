"""What ``InferenceSession`` runs between import and planning, chosen like onnxruntime's
``graph_optimization_level``: "all" (the default passes) or "disable" (the graph as imported)."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

from course.ir.graph import Graph
from course.passes.base import Pass, PassManager

LEVELS = ("disable", "all")


def optimize(graph: Graph, level: str = "all", protected: Iterable[str] = (),
             passes: Optional[Sequence[Pass]] = None) -> Graph:
    """Rewrite ``graph`` (in place) with the passes of ``level``, or with ``passes`` if given.

    ``protected`` op types (those with custom kernels) are never fused or folded away.
    """
    from course.passes import default_passes

    if level not in LEVELS:
        raise ValueError(f"graph_optimization_level must be one of {LEVELS}, got {level!r}")
    if passes is None:
        passes = default_passes(protected) if level == "all" else []
    if not passes:
        return graph
    return PassManager(passes).run(graph).graph
