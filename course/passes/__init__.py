"""Graph passes: one pass per module, each a ``Pass`` whose ``call(graph)`` returns a ``PassResult``.

``default_passes()`` is what ``InferenceSession`` runs at ``graph_optimization_level="all"``
(``course.passes.pipeline`` lists every level)::

    from course.passes import PassManager, default_passes
    result = PassManager(default_passes()).run(graph)   # result.graph, result.modified
"""
from __future__ import annotations

from typing import Iterable

from course.passes.base import Pass, PassError, PassManager, PassRecord, PassResult, format_report
from course.passes.batchnorm_to_mul_add import BatchNormToMulAdd
from course.passes.eliminate_common_subexpressions import EliminateCommonSubexpressions
from course.passes.eliminate_dead_code import EliminateDeadCode
from course.passes.eliminate_identity import EliminateIdentity
from course.passes.evaluate import run_graph, run_node
from course.passes.fold_batchnorm import FoldBatchNorm
from course.passes.fold_constants import FoldConstants
from course.passes.fuse_conv_activation import FuseConvActivation
from course.passes.fuse_conv_add import FuseConvAdd
from course.passes.fuse_gemm_activation import FuseGemmActivation
from course.passes.fuse_sibling_convs import FuseSiblingConvs
from course.passes.matmul_add_to_gemm import MatMulAddToGemm
from course.passes.pipeline import LEVELS, level_passes, optimize
from course.passes.reduce_mean_to_global_pool import ReduceMeanToGlobalAveragePool
from course.passes.simplify_algebra import RULES, SimplifyAlgebra
from course.passes.sink_transposes import SinkTransposes
from course.passes.sink_transposes_concat import SinkTransposesThroughConcat
from course.passes.sink_transposes_split import SinkTransposesThroughSplit
from course.passes.slice_forward import SliceForward


def default_passes(protected: Iterable[str] = ()) -> list[Pass]:
    """The passes the session runs at level "all", in order. ``protected`` op types are left
    untouched (the session passes the op types that have custom kernels)."""
    return level_passes("all", protected)


__all__ = ["Pass", "PassError", "PassManager", "PassRecord", "PassResult", "format_report", "BatchNormToMulAdd",
           "EliminateCommonSubexpressions", "EliminateDeadCode", "EliminateIdentity", "FoldBatchNorm",
           "FoldConstants", "FuseConvActivation", "FuseConvAdd", "FuseGemmActivation", "FuseSiblingConvs",
           "MatMulAddToGemm", "ReduceMeanToGlobalAveragePool", "RULES", "SimplifyAlgebra", "SinkTransposes",
           "SinkTransposesThroughConcat", "SinkTransposesThroughSplit", "SliceForward", "LEVELS",
           "level_passes", "optimize", "default_passes", "run_graph", "run_node"]
