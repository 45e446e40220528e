"""Graph passes: one pass per module, each a ``Pass`` whose ``call(graph)`` returns a ``PassResult``.

``default_passes()`` is what ``InferenceSession`` runs at ``graph_optimization_level="all"``::

    from course.passes import PassManager, default_passes
    result = PassManager(default_passes()).run(graph)   # result.graph, result.modified
"""
from __future__ import annotations

from typing import Iterable

from course.passes.base import Pass, PassError, PassManager, PassResult
from course.passes.eliminate_identity import EliminateIdentity
from course.passes.fold_batchnorm import FoldBatchNorm
from course.passes.fuse_conv_activation import FuseConvActivation
from course.passes.fuse_conv_add import FuseConvAdd


def default_passes(protected: Iterable[str] = ()) -> list[Pass]:
    """The passes the session runs, in order. ``protected`` op types are left untouched (the
    session passes the op types that have custom kernels)."""
    protected = frozenset(protected)
    return [EliminateIdentity(protected), FoldBatchNorm(protected), FuseConvActivation(protected),
            FuseConvAdd(protected)]


__all__ = ["Pass", "PassError", "PassManager", "PassResult", "EliminateIdentity", "FoldBatchNorm",
           "FuseConvActivation", "FuseConvAdd", "default_passes"]
