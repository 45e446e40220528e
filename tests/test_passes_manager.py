"""PassManager: runs passes to a fixpoint, stops after ``steps`` rounds, names a failing pass;
and the session's pass pipeline (levels, explicit passes, custom kernels never fused away)."""
from __future__ import annotations

import numpy as np
import pytest

from course.ir.onnx_import import from_onnx
from course.ops import registry
from course.passes import LEVELS, FoldBatchNorm, FuseConvActivation, Pass, PassError, PassManager, PassResult, \
    default_passes, format_report, level_passes, optimize
from course.runtime.session import InferenceSession
from test_passes import conv_bn, ops, run_model


def conv_bn_relu():
    m, x = conv_bn(tail="Relu")
    return m, x


class Counting(Pass):
    """Says it modified the graph every time (a buggy pass that never reaches a fixpoint)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def call(self, graph):
        self.calls += 1
        return PassResult(graph, True)


class Boom(Pass):
    def call(self, graph):
        raise ValueError("something inside went wrong")


class Dangling(Pass):
    """Removes the first node even though others read its output: leaves a dangling value."""

    def call(self, graph):
        graph.remove(graph.nodes[0], force=True)
        return PassResult(graph, True)


class NoResult(Pass):
    def call(self, graph):
        return graph


def test_manager_reaches_the_fixpoint_and_reports_modified():
    m, x = conv_bn_relu()
    want = run_model(m, {"x": x})
    g = from_onnx(m)
    assert ops(g) == ["Conv", "BatchNormalization", "Relu"]
    res = PassManager(default_passes()).run(g)
    assert res.modified is True and res.graph is g
    assert ops(g) == ["FusedConv"]
    again = PassManager(default_passes())(g)
    assert again.modified is False and ops(g) == ["FusedConv"]
    got = InferenceSession(g, graph_optimization_level="disable").run(None, {"x": x})[0]
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
    g.verify()


def test_fixpoint_needs_a_second_round_when_passes_run_in_the_other_order():
    """Fuse runs first and finds only Conv -> BN (nothing to fuse); after the fold a second round
    fuses, and a third confirms nothing is left."""
    g = from_onnx(conv_bn_relu()[0])
    fuse, fold = FuseConvActivation(), FoldBatchNorm()
    seen = []

    class Spy(Pass):
        def call(self, graph):
            seen.append(ops(graph))
            return PassResult(graph, False)

    res = PassManager([fuse, fold, Spy()]).run(g)
    assert res.modified and ops(g) == ["FusedConv"]
    # round 1 folds, round 2 fuses, round 3 changes nothing: the fixpoint
    assert seen == [["Conv", "Relu"], ["FusedConv"], ["FusedConv"]]
    g.verify(check_types=False)


def test_manager_stops_after_steps_rounds():
    p = Counting()
    res = PassManager([p], steps=3).run(from_onnx(conv_bn_relu()[0]))
    assert p.calls == 3 and res.modified is True
    with pytest.raises(ValueError, match="steps"):
        PassManager([p], steps=0)


@pytest.mark.parametrize("bad, match", [
    (Boom(), r"pass 'Boom' \(round 1\) failed: ValueError: something inside went wrong"),
    (Dangling(), r"pass 'Dangling' \(round 1\) left a malformed graph: DanglingValueError: node 'bn'"),
    (NoResult(), r"pass 'NoResult' returned Graph, not a PassResult"),
])
def test_manager_errors_name_the_failing_pass(bad, match):
    with pytest.raises(PassError, match=match):
        PassManager([FoldBatchNorm(protected={"Conv"}), bad]).run(from_onnx(conv_bn_relu()[0]))


# --- the session's pipeline -------------------------------------------------------------------------
def test_session_levels_and_explicit_passes():
    m, x = conv_bn_relu()
    want = run_model(m, {"x": x})
    assert ops(InferenceSession(m).graph) == ["FusedConv"]
    assert ops(InferenceSession(m, graph_optimization_level="disable").graph) == ["Conv", "BatchNormalization",
                                                                                 "Relu"]
    only_fold = InferenceSession(m, passes=[FoldBatchNorm()])
    assert ops(only_fold.graph) == ["Conv", "Relu"]
    for s in (InferenceSession(m), only_fold):
        got = s.run(None, {"x": x})[0]
        assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
    with pytest.raises(ValueError, match="graph_optimization_level"):
        InferenceSession(m, graph_optimization_level="fastest")


def test_custom_conv_kernel_sees_every_conv():
    """A lesson plugs a learner's Conv in with custom_kernels: no Conv may be fused away."""
    from course.models import build_model

    m = build_model("mobilenetv2", image_size=32, num_classes=10, width=0.25)
    n_conv = sum(n.op_type == "Conv" for n in m.graph.node)
    conv = registry.lookup("Conv", 17)
    calls = []

    def learner_conv(x, w, b=None, **attrs):
        calls.append(w.shape)
        return conv.compute(x, w, b, **attrs)

    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    s = InferenceSession(m, custom_kernels={"Conv": learner_conv})
    assert ops(s.graph).count("Conv") == n_conv and "FusedConv" not in ops(s.graph)
    got = s.run(None, {"input": x})[0]
    assert len(calls) == n_conv == 52
    want = InferenceSession(m, providers=["ReferenceExecutionProvider"],
                            graph_optimization_level="disable").run(None, {"input": x})[0]
    np.testing.assert_array_equal(got, want)  # the same (reference) kernels ran, in the same order


def test_custom_activation_kernel_blocks_only_that_fusion():
    m, x = conv_bn(tail="Relu")
    seen = []
    s = InferenceSession(m, custom_kernels={"Relu": lambda v: seen.append(1) or np.maximum(v, 0)})
    assert ops(s.graph) == ["Conv", "Relu"]  # BN still folded, Relu kept for the custom kernel
    s.run(None, {"x": x})
    assert seen == [1]


# --- levels and the per-pass report ---------------------------------------------------------------
def test_levels_nest_like_onnxruntimes():
    names = {lvl: [p.name for p in level_passes(lvl)] for lvl in LEVELS}
    assert names["disable"] == []
    assert {"FoldConstants", "EliminateDeadCode", "EliminateCommonSubexpressions", "SimplifyAlgebra",
            "FoldBatchNorm"} == set(names["basic"])
    assert set(names["basic"]) < set(names["extended"]) and names["all"] == names["extended"]
    assert {"MatMulAddToGemm", "FuseConvActivation", "FuseSiblingConvs", "FuseGemmActivation", "SliceForward",
            "SinkTransposesThroughConcat", "SinkTransposesThroughSplit"} <= set(names["extended"]) - set(names["basic"])
    assert [p.name for p in default_passes()] == names["all"]
    with pytest.raises(ValueError, match="graph_optimization_level"):
        level_passes("fastest")
    with pytest.raises(ValueError, match="graph_optimization_level"):
        optimize(from_onnx(conv_bn_relu()[0]), "fastest")


@pytest.mark.parametrize("level, expected", [
    ("disable", ["MatMul", "Add", "Relu", "Gemm", "Softmax"]),
    ("basic", ["MatMul", "Add", "Relu", "Gemm", "Softmax"]),
    ("extended", ["FusedGemm", "Gemm", "Softmax"]),  # MatMul+Add -> Gemm, then Gemm+Relu -> FusedGemm
    ("all", ["FusedGemm", "Gemm", "Softmax"]),
])
def test_optimize_runs_the_levels_passes(level, expected):
    from course.passes import run_graph
    from ir_builders import mlp
    from test_passes import assert_same_outputs, reference

    m = mlp()
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    want = reference(m, {"x": x})
    g = from_onnx(m)
    assert optimize(g, level) is g
    assert ops(g) == expected
    assert_same_outputs(run_graph(g, {"x": x}), want)
    g.infer_types()
    g.verify()


def test_optimize_respects_protected_op_types_at_every_level():
    for level in ("basic", "extended", "all"):
        g = from_onnx(conv_bn_relu()[0])
        optimize(g, level, protected={"Conv"})
        assert ops(g) == ["Conv", "BatchNormalization", "Relu"]
        g.verify(check_types=False)


def test_report_lists_every_pass_run_with_counts_and_time():
    g = from_onnx(conv_bn_relu()[0])
    pm = PassManager([FoldBatchNorm(), FuseConvActivation()])
    pm.run(g)
    assert [(r.round, r.name, r.modified) for r in pm.report] == [
        (1, "FoldBatchNorm", True), (1, "FuseConvActivation", True),
        (2, "FoldBatchNorm", False), (2, "FuseConvActivation", False)]
    fold = pm.report[0]
    assert sum(fold.before.values()) == 3 and sum(fold.after.values()) == 2
    assert fold.changes() == {"BatchNormalization": (1, 0)}
    assert pm.report[1].changes() == {"Conv": (1, 0), "FusedConv": (0, 1), "Relu": (1, 0)}
    assert all(r.seconds >= 0 for r in pm.report)
    text = format_report(pm.report)
    assert "FoldBatchNorm" in text and "3 -> 2" in text and "BatchNormalization 1->0" in text
    pm.run(from_onnx(conv_bn_relu()[0]))
    assert len(pm.report) == 4  # a new run starts a new report
    g.verify(check_types=False)
