"""course.passes.lesson_support, what lesson 07 runs around the learner's passes: random DAGs that
are valid ONNX, compute what onnxruntime computes and keep computing it through every course
pass; exporter_style models that compute what the clean model computes and that the course's
passes bring back to the clean node count; FunctionPass; the pictures (Agg backend)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pytest  # noqa: E402

from course.bench import relative_error  # noqa: E402
from course.ir.onnx_import import from_onnx  # noqa: E402
from course.models import MODEL_NAMES, build_model  # noqa: E402
from course.passes import (EliminateCommonSubexpressions, EliminateDeadCode, FoldConstants, PassManager,  # noqa: E402
                           SimplifyAlgebra, SinkTransposes, optimize)
from course.passes.evaluate import run_graph  # noqa: E402
from course.passes.lesson_support import (FunctionPass, exporter_style, random_graph_from_seed,  # noqa: E402
                                          random_graphs)
from course.viz.graph import draw_graph, op_count_stages, plot_op_counts  # noqa: E402
from course.runtime.session import InferenceSession  # noqa: E402
from course.testing import assert_close  # noqa: E402

SMALL = dict(image_size=32, num_classes=10, width=0.25)


def _ort(model, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("seed", range(0, 400, 8))
def test_random_graphs_are_valid_onnx_and_match_onnxruntime(seed):
    case = random_graph_from_seed(seed)
    onnx.checker.check_model(case.model, full_check=True)
    g = case.graph()
    g.infer_types()
    g.verify()
    for feeds in (case.feeds, case.overriding_feeds()):
        for a, b in zip(run_graph(g, feeds), _ort(case.model, feeds)):
            assert_close(a, b, what=f"seed {seed}")


@pytest.mark.parametrize("seed", range(60))
def test_every_course_pass_keeps_random_graphs_computing_the_same(seed):
    case = random_graph_from_seed(seed, max_steps=16)
    feeds = case.overriding_feeds()
    want = run_graph(case.graph(), feeds)
    for make in (EliminateDeadCode, FoldConstants, EliminateCommonSubexpressions, SimplifyAlgebra, SinkTransposes):
        g = case.graph()
        make()(g)
        g.verify(check_types=False)
        assert [v.name for v in g.outputs] == [o.name for o in case.model.graph.output]
        for a, b in zip(run_graph(g, feeds), want):
            assert_close(a, b, what=f"seed {seed}, {make.__name__}")
    for level in ("basic", "extended"):
        g = case.graph()
        optimize(g, level)
        g.infer_types()
        g.verify()
        for a, b in zip(run_graph(g, feeds), want):
            assert_close(a, b, what=f"seed {seed}, level {level}")


def test_the_hypothesis_strategy_gives_many_different_graphs():
    from hypothesis import given, settings

    seen = []

    @settings(derandomize=True, max_examples=40, deadline=None, database=None)
    @given(random_graphs())
    def collect(case):
        seen.append(tuple((n.op_type, tuple(v.name for v in n.inputs if v is not None)) for n in case.graph().nodes))

    collect()
    assert len(seen) == 40 and len(set(seen)) >= 30
    kinds = Counter(op for nodes in seen for op, _ in nodes)
    for op in ("Transpose", "Shape", "Identity", "Dropout", "Split", "Concat", "Mul", "Add"):
        assert kinds[op] > 0, f"no {op} in 40 random graphs"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_exporter_style_computes_the_same_and_the_course_passes_undo_it(name):
    clean = build_model(name, **SMALL)
    messy = exporter_style(clean)
    onnx.checker.check_model(messy, full_check=True)
    assert len(messy.graph.node) > 2 * len(clean.graph.node)
    kinds = Counter(n.op_type for n in messy.graph.node)
    assert kinds["Transpose"] > 0 and kinds["Shape"] == 1 and kinds["Constant"] > 0
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    ref = ["ReferenceExecutionProvider"]
    want = InferenceSession(clean, graph_optimization_level="disable", providers=ref).run(None, {"input": x})[0]
    got = InferenceSession(messy, graph_optimization_level="disable", providers=ref).run(None, {"input": x})[0]
    assert relative_error(got, want) == 0.0  # Transposes, Identity, Dropout and the shape chain only move data
    g = from_onnx(messy)
    PassManager([FoldConstants(), SimplifyAlgebra(), EliminateCommonSubexpressions(), SinkTransposes(),
                 EliminateDeadCode()]).run(g)
    # back to the clean model, with Flatten written as a Reshape and the Dropouts gone
    dropouts = Counter(n.op_type for n in clean.graph.node)["Dropout"]
    assert len(g.nodes) == len(clean.graph.node) - dropouts
    assert "Transpose" not in Counter(n.op_type for n in g.nodes) or name == "shufflenet"  # its channel shuffle stays
    assert not set(g.initializers) - {t.name for t in clean.graph.initializer} - {v.name for v in g.initializers.values()
                                                                                 if v.name.endswith("_folded")}


def test_function_pass_and_pictures():
    calls = []
    p = FunctionPass(lambda g: calls.append(len(g.nodes)) or True, name="counting")
    g = random_graph_from_seed(1).graph()
    result = p(g)
    assert p.name == "counting" and result.graph is g and result.modified is True and calls == [len(g.nodes)]
    assert FunctionPass(len).name == "len"
    import matplotlib.pyplot as plt

    manager = PassManager([FoldConstants(), SimplifyAlgebra(), EliminateDeadCode()])
    graph = from_onnx(exporter_style(build_model("squeezenet", **SMALL)))
    fig, axes = plt.subplots(3, 1)
    draw_graph(graph, axes[0])
    manager.run(graph)
    draw_graph(graph, axes[1], labels=True)
    plot_op_counts(manager.report, axes[2])
    plt.close(fig)
    stages = op_count_stages(manager.report)
    assert stages[0][0] == "as built" and sum(stages[-1][1].values()) == len(graph.nodes)
    assert all(label.endswith(")") for label, _ in stages[1:])
