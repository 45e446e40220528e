"""Parts of one's own inside the session: scheduler=, partitioner=, planner=, interpreter=
(course/runtime/hooks.py). Each hook's answer is used (the plan, the assignment, the arena and
the run show it) and each wrong answer is refused with a HookError / MemoryPlanError naming it."""
import heapq

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import course
from course.errors import HookError
from course.memory import MemoryPlanError, place, place_greedy_by_size
from course.models import build_model, digits_model_path, load_digits_split
from course.ops import lookup
from course.providers.kernels import KernelProvider
from course.providers.reference import ReferenceExecutionProvider


@pytest.fixture(scope="module")
def digits():
    return onnx.load(str(digits_model_path()))


@pytest.fixture(scope="module")
def images():
    return np.asarray(load_digits_split().x_test[:16], dtype=np.float32)


def _ort(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def last_first(nodes):
    """Kahn's algorithm taking the *latest* ready node first: a valid order unlike the graph's."""
    producer = {v: i for i, n in enumerate(nodes) for v in n["outputs"] if v}
    deps = [{producer[v] for v in n["inputs"] if v in producer} for n in nodes]
    ready = [-i for i, d in enumerate(deps) if not d]
    heapq.heapify(ready)
    order = []
    while ready:
        i = -heapq.heappop(ready)
        order.append(i)
        for j, d in enumerate(deps):
            if i in d:
                d.discard(i)
                if not d:
                    heapq.heappush(ready, -j)
    return [nodes[i]["name"] for i in order]


@pytest.fixture(scope="module")
def resnet():
    return build_model("resnet", image_size=32, num_classes=10, width=0.25)


def test_scheduler_orders_the_plan(resnet):
    seen = []

    def scheduler(nodes):
        seen.append(nodes)
        return last_first(nodes)

    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    plain = course.InferenceSession(resnet)
    mine = course.InferenceSession(resnet, scheduler=scheduler)
    assert seen and all({"name", "op_type", "inputs", "outputs", "attrs"} <= set(n) for n in seen[0])
    assert [st.spec.name for st in mine.plan.steps] == last_first(seen[0])
    assert [st.spec.name for st in mine.plan.steps] != [st.spec.name for st in plain.plan.steps]
    np.testing.assert_array_equal(mine.run(None, {"input": x})[0], plain.run(None, {"input": x})[0])


@pytest.mark.parametrize("answer, words", [
    (lambda nodes: [n["name"] for n in reversed(nodes)], "before its input"),
    (lambda nodes: [n["name"] for n in nodes][:-1], "missing"),
    (lambda nodes: [n["name"] for n in nodes] + [nodes[0]["name"]], "twice"),
    (lambda nodes: [n["name"] for n in nodes][:-1] + ["nope"], "'nope'"),
    (lambda nodes: ",".join(n["name"] for n in nodes), "not a list"),
])
def test_scheduler_answers_that_cannot_run_are_refused(digits, answer, words):
    with pytest.raises(HookError, match=words):
        course.InferenceSession(digits, graph_optimization_level="disable", scheduler=answer)


def _gemms_to(provider_name):
    def partitioner(specs, providers):
        by_name = {p.name: p for p in providers}
        assert set(by_name) >= {provider_name, "ReferenceExecutionProvider"}
        return {s.name: provider_name if s.op_type == "Gemm" else "ReferenceExecutionProvider" for s in specs}
    return partitioner


def test_partitioner_decides_where_nodes_run(digits, images):
    calls = []

    def gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
        calls.append(a.shape)
        return lookup("Gemm", 13).compute(a, b, c, alpha=alpha, beta=beta, transA=transA, transB=transB)

    mine = KernelProvider({"Gemm": gemm, "Relu": lambda x: np.maximum(x, 0)}, name="Mine")
    s = course.InferenceSession(digits, providers=[mine], partitioner=_gemms_to("Mine"))
    where = s.assignment()
    assert {n for n, p in where.items() if p == "Mine"} == {st.spec.name for st in s.plan.steps if st.spec.op_type == "Gemm"}
    assert "Relu" in {st.spec.op_type for st in s.plan.steps if st.provider == "ReferenceExecutionProvider"}
    got = s.run(None, {"input": images})[0]
    assert len(calls) == 2
    np.testing.assert_allclose(got, _ort(digits, images), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("answer, words", [
    (lambda specs, ps: {s.name: "ReferenceExecutionProvider" for s in specs[1:]}, "no provider"),
    (lambda specs, ps: {s.name: "TPU" for s in specs}, "not one of the session's providers"),
    (lambda specs, ps: {s.name: "Mine" for s in specs}, "cannot run it"),
    (lambda specs, ps: [s.name for s in specs], "not a dict"),
])
def test_partitioner_answers_that_cannot_run_are_refused(digits, answer, words):
    mine = KernelProvider({"Gemm": lambda *a, **k: None}, name="Mine")
    with pytest.raises(HookError, match=words):
        course.InferenceSession(digits, providers=[mine], partitioner=answer)


N16 = {"N": 16}


def test_planner_places_the_arena(images, digits):
    sizes_seen, answers = [], []

    def my_planner(intervals, sizes):
        sizes_seen.append(sum(sizes.values()))
        answers.append(place_greedy_by_size(intervals, sizes))
        return answers[-1]

    mine = course.InferenceSession(digits, providers=["ReferenceExecutionProvider"], planner=my_planner, arena_dims=N16)
    best = course.InferenceSession(digits, providers=["ReferenceExecutionProvider"], arena_dims=N16)
    report = mine.memory_report()
    assert sizes_seen and sizes_seen[0] > 0 and report["strategy"] == "my_planner"
    layout = mine.plan.arena.offsets
    assert {t: layout[t] for t in answers[0]} == answers[0]  # the arena is where my_planner put it
    np.testing.assert_array_equal(mine.run(None, {"input": images})[0], best.run(None, {"input": images})[0])
    named = course.InferenceSession(digits, providers=["ReferenceExecutionProvider"], planner="naive", arena_dims=N16)
    assert named.memory_report()["strategy"] == "naive"
    assert named.memory_report()["arena_bytes"] >= report["arena_bytes"] >= report["lower_bound_bytes"]


@pytest.mark.parametrize("answer, words", [
    (lambda iv, sz: {t: 0 for t in iv}, "overlap|share"),
    (lambda iv, sz: {t: 0 for t in list(iv)[1:]}, "no offset"),
    (lambda iv, sz: {t: 8 * i + 1 for i, t in enumerate(place_greedy_by_size(iv, sz))}, "not a multiple of 64"),
    (lambda iv, sz: {t: -64 for t in iv}, "non-negative"),
    (lambda iv, sz: None, "not a dict"),
])
def test_planner_answers_that_cannot_run_are_refused(digits, answer, words):
    with pytest.raises(MemoryPlanError, match=words):
        course.InferenceSession(digits, providers=["ReferenceExecutionProvider"], planner=answer, arena_dims=N16)


def test_place_takes_a_placement_function():
    iv, sz = {"a": (0, 1), "b": (1, 2), "c": (2, 3)}, {"a": 64, "b": 128, "c": 64}
    assert place(iv, sz, lambda i, s: {"a": 0, "b": 64, "c": 0}) == {"a": 0, "b": 64, "c": 0}
    with pytest.raises(MemoryPlanError, match="not given"):
        place(iv, sz, lambda i, s: {"a": 0, "b": 64, "c": 0, "d": 0})


def run_graph(graph, feeds, kernels=None):
    """Lesson 06's interpreter with the kernels an engine hands it."""
    env = dict(graph["initializers"])
    env.update(feeds)
    for n in graph["nodes"]:
        args = [env[v] if v else None for v in n["inputs"]]
        if kernels is not None:
            outs = kernels[n["name"]](*args)
        else:
            op = lookup(n["op_type"], graph["opset"])
            outs = op.compute(*args, **op.resolve_attrs(n["attrs"]))
        outs = outs if isinstance(outs, tuple) else (outs,)
        env.update({v: o for v, o in zip(n["outputs"], outs) if v})
    return [env[v] for v in graph["outputs"]]


def test_interpreter_runs_the_plan_with_the_providers_kernels(resnet):
    model = resnet
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    programs = []

    def interpreter(program, feeds, kernels):
        programs.append(program)
        return run_graph(program, feeds, kernels)

    mine = course.InferenceSession(model, interpreter=interpreter)
    plain = course.InferenceSession(model)
    got = mine.run(None, {"input": x})[0]
    np.testing.assert_array_equal(got, plain.run(None, {"input": x})[0])  # same kernels, same bits
    prog = programs[0]
    assert [n["name"] for n in prog["nodes"]] == [st.spec.name for st in plain.plan.steps]
    assert "FusedConv" in {n["op_type"] for n in prog["nodes"]}  # the optimised plan, not the file
    assert prog["inputs"] == ["input"] and len(prog["outputs"]) == 1
    assert mine.memory_report()["strategy"] == "best"  # described, though an interpreter runs without one


def test_interpreter_errors_name_the_node_and_the_hook(digits, images):
    def bad_relu(x):
        raise RuntimeError("boom")

    s = course.InferenceSession(digits, providers=[KernelProvider({"Relu": bad_relu})],
                                interpreter=lambda p, f, k: run_graph(p, f, k))
    with pytest.raises(course.KernelError, match=r"node '.*' \(Relu\).*boom"):
        s.run(None, {"input": images})
    short = course.InferenceSession(digits, interpreter=lambda p, f, k: [])
    with pytest.raises(HookError, match="one array per graph output"):
        short.run(None, {"input": images})
    with pytest.raises(course.FeedError):
        short.run(None, {"input": images.astype(np.float64)})


def test_an_engine_built_with_hooks_keeps_their_decisions_when_loaded(digits, images, tmp_path):
    from course.runtime import Engine, build_engine

    mine = KernelProvider({"Gemm": lambda a, b, c=None, **k: lookup("Gemm", 13).compute(a, b, c, **k)}, name="Mine")
    profile = {"input": {"min": (1, 1, 8, 8), "opt": (16, 1, 8, 8), "max": (16, 1, 8, 8)}}

    def my_planner(intervals, sizes):
        return place_greedy_by_size(intervals, sizes)

    engine = build_engine(digits, providers=[mine], partitioner=_gemms_to("Mine"), planner=my_planner,
                          scheduler=last_first, profiles=profile, tune=False)
    path = tmp_path / "digits.engine"
    engine.save(path)
    loaded = Engine.load(path, providers=[mine])
    assert loaded.assignment() == engine.assignment()
    assert {p for p in loaded.assignment().values()} == {"Mine", "ReferenceExecutionProvider"}
    assert loaded.plan.arena.strategy == "my_planner" and loaded.plan.arena.offsets == engine.plan.arena.offsets
    np.testing.assert_array_equal(loaded.run(None, {"input": images})[0], engine.run(None, {"input": images})[0])
    np.testing.assert_allclose(loaded.run(None, {"input": images})[0], _ort(digits, images), rtol=1e-4, atol=1e-4)
