"""What ``InferenceSession`` runs between import and planning, chosen like onnxruntime's
``graph_optimization_level``:

- "disable":  nothing; the graph as imported.
- "basic":    rewrites that keep the model in standard ONNX ops and hold on any backend: constant
              folding, dead code, common subexpressions, the algebraic rule table, Conv+BN
              folding.
- "extended": basic, then replacements and reorderings (MatMul+Add -> Gemm, ReduceMean ->
              GlobalAveragePool, Transpose sinking through elementwise ops, Concat and Split),
              the fusions into the engine's own ``course.FusedConv`` (Conv+activation,
              Conv+Add(+activation)) and ``course.FusedGemm`` (Gemm+activation), horizontal
              fusion of sibling convolutions, and Slice forward (after the fusions, so that a
              Slice never takes an activation away from the Conv or Gemm whose epilogue it is).
- "all":      extended; the session adds the layout pass (channels last) at this level only.

``level_passes(level)`` lists a level's passes; ``optimize`` runs them with a ``PassManager``.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

from course.ir.graph import Graph
from course.passes.base import Pass, PassManager
from course.passes.eliminate_common_subexpressions import EliminateCommonSubexpressions
from course.passes.eliminate_dead_code import EliminateDeadCode
from course.passes.fold_batchnorm import FoldBatchNorm
from course.passes.fold_constants import FoldConstants
from course.passes.fuse_conv_activation import FuseConvActivation
from course.passes.fuse_conv_add import FuseConvAdd
from course.passes.fuse_gemm_activation import FuseGemmActivation
from course.passes.fuse_sibling_convs import FuseSiblingConvs
from course.passes.matmul_add_to_gemm import MatMulAddToGemm
from course.passes.reduce_mean_to_global_pool import ReduceMeanToGlobalAveragePool
from course.passes.simplify_algebra import SimplifyAlgebra
from course.passes.sink_transposes import SinkTransposes
from course.passes.sink_transposes_concat import SinkTransposesThroughConcat
from course.passes.sink_transposes_split import SinkTransposesThroughSplit
from course.passes.slice_forward import SliceForward

LEVELS = ("disable", "basic", "extended", "all")


def level_passes(level: str, protected: Iterable[str] = ()) -> list[Pass]:
    """The passes of ``level`` in the order they run each round; ``protected`` op types (those
    with custom kernels) are never fused or folded away."""
    if level not in LEVELS:
        raise ValueError(f"graph_optimization_level must be one of {LEVELS}, got {level!r}")
    protected = frozenset(protected)
    if level == "disable":
        return []
    passes: list[Pass] = [FoldConstants(protected), SimplifyAlgebra(protected),
                          EliminateCommonSubexpressions(protected), FoldBatchNorm(protected)]
    if level in ("extended", "all"):
        passes += [MatMulAddToGemm(protected), ReduceMeanToGlobalAveragePool(protected),
                   SinkTransposes(protected), SinkTransposesThroughConcat(protected),
                   SinkTransposesThroughSplit(protected), FuseConvActivation(protected),
                   FuseGemmActivation(protected), FuseConvAdd(protected), FuseSiblingConvs(protected),
                   SliceForward(protected)]
    return passes + [EliminateDeadCode(protected)]


def optimize(graph: Graph, level: str = "all", protected: Iterable[str] = (),
             passes: Optional[Sequence[Pass]] = None) -> Graph:
    """Rewrite ``graph`` (in place) with the passes of ``level``, or with ``passes`` if given."""
    if level not in LEVELS:
        raise ValueError(f"graph_optimization_level must be one of {LEVELS}, got {level!r}")
    chosen = level_passes(level, protected) if passes is None else list(passes)
    if not chosen:
        return graph
    return PassManager(chosen).run(graph).graph
