"""Issue 16's last two pieces at run time: workspaces (a CPU convolution's scratch planned in the
session's arena and handed to its kernel) and Concats written in place (their inputs' producers
write straight into the Concat's output)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course import InferenceSession
from course.bench import relative_error
from course.memory import MemoryPlanError
from course.ops import concat as concat_op
from course.providers.base import NodeSpec
from course.providers.cpu import scratch
from course.providers.cpu.provider import CPUExecutionProvider, _conv_case
from course.providers.cpu.routes import conv_route
from course.runtime.arena import ArenaLayout, plan_arena, validate_layout
from course.testing import random_tensor
from ir_builders import model

REF = ["ReferenceExecutionProvider"]
F32 = np.dtype(np.float32)

# branch: (name, weight shape, attributes, the route conv2d takes at x (1, 16, 16, 16))
BRANCHES = [
    ("wino", (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}, "winograd"),
    ("cols", (64, 16, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}, "im2col"),  # few pixels: shared matrix
    ("taps", (8, 16, 3, 2), {"pads": [1, 1, 1, 1]}, "taps"),
    ("pad1", (8, 16, 1, 1), {"pads": [1, 1, 1, 1]}, "pointwise"),
]


def routes_model():
    """x[1,16,16,16] -> four Convs, one per route with scratch, each -> Abs -> an output."""
    nodes, outs, inits = [], [], {}
    for i, (name, w, attrs, _) in enumerate(BRANCHES):
        inits[f"w_{name}"] = random_tensor(w, seed=i + 1)
        nodes += [h.make_node("Conv", ["x", f"w_{name}"], [f"c_{name}"], name=f"conv_{name}", **attrs),
                  h.make_node("Abs", [f"c_{name}"], [f"y_{name}"], name=f"abs_{name}")]
        outs.append((f"y_{name}", T.FLOAT, None))
    return model(nodes, [("x", T.FLOAT, [1, 16, 16, 16])], outs, inits)


def conv_steps(s):
    return {st.spec.name: i for i, st in enumerate(s.plan.steps) if st.spec.op_type in ("Conv", "FusedConv")}


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = scratch.allocate

    def allocate(dtype, shape):
        calls.append(shape)
        return real(dtype, shape)

    monkeypatch.setattr(scratch, "allocate", allocate)
    return calls


def test_each_route_declares_its_scratch_and_the_layout_plans_it():
    s = InferenceSession(routes_model())
    validate_layout(s.plan, s.plan.arena)
    cpu = CPUExecutionProvider()
    steps = conv_steps(s)
    assert len(steps) == len(BRANCHES)
    for name, _, _, route in BRANCHES:
        spec = s.plan.steps[steps[f"conv_{name}"]].spec
        assert conv_route(_conv_case(spec, True)) == route
        assert s.plan.arena.workspaces[steps[f"conv_{name}"]][1] == cpu.workspace_bytes(spec) > 0
    assert s.memory_report()["workspaces"]


def test_an_arena_run_allocates_no_scratch_and_matches_free_at_last_read(counted):
    s, plain = InferenceSession(routes_model()), InferenceSession(routes_model(), arena=False)
    xs = [random_tensor((1, 16, 16, 16), seed=k) for k in (10, 11, 12)]
    plain.run(None, {"x": xs[0]})
    assert counted  # without an arena the routes allocate their scratch (the count can tell)
    s.run(None, {"x": xs[0]})  # the first run records the replays
    del counted[:]
    for x in xs:
        got, want = s.run(None, {"x": x}), plain.run(None, {"x": x})
        assert all(np.array_equal(a, b) for a, b in zip(got, want))  # same kernels, same bits
        del counted[:]
        s.run(None, {"x": x})
        assert counted == []


def test_concurrent_runs_each_carve_scratch_from_their_own_arena():
    s = InferenceSession(routes_model())
    feeds = [[random_tensor((1, 16, 16, 16), seed=100 * t + i) for i in range(15)] for t in range(3)]
    want = [[s.run(None, {"x": x}) for x in row] for row in feeds]
    errors, start = [], threading.Barrier(3)

    def work(t):
        start.wait()
        for i, x in enumerate(feeds[t]):
            got = s.run(None, {"x": x})
            errors.extend((t, i) for a, b in zip(got, want[t][i]) if relative_error(a, b) > 1e-5)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]


def winograd_spec(x, w, b):
    attrs = {"pads": [1, 1, 1, 1], "strides": [1, 1], "dilations": [1, 1], "group": 1, "auto_pad": "NOTSET",
             "kernel_shape": list(w.shape[2:]), "activation": "Relu", "activation_params": []}
    return NodeSpec("c", "FusedConv", "course", 1, attrs, [(F32, x.shape), (F32, w.shape), (F32, b.shape)],
                    [(F32, (1, w.shape[0]) + x.shape[2:])], {}, (1, 2))


def test_a_replayed_convolution_keeps_no_run_s_workspace(counted):
    x, w = random_tensor((1, 16, 16, 16), seed=1), random_tensor((16, 16, 3, 3), seed=2)
    b = random_tensor((16,), seed=3)
    w.flags.writeable = b.flags.writeable = False
    cpu = CPUExecutionProvider()
    spec = winograd_spec(x, w, b)
    into, n = cpu.kernel_into(spec), cpu.workspace_bytes(spec)
    want = cpu.kernel(spec)(x, w, b)
    spaces = [np.full(n, 255, np.uint8) for _ in range(3)]
    del counted[:]
    with cpu.running():
        for ws in spaces:
            y = np.empty_like(want)
            into(x, w, b, out=(y,), workspace=ws)
            assert np.array_equal(y, want)
    assert counted == []
    prepared = into.args[0]
    assert prepared.fast is not None  # the later calls were replays
    assert not any(np.shares_memory(a, ws) for a in prepared.fast.job.keep for ws in spaces)
    y = np.empty_like(want)
    into(x, w, b, out=(y,), workspace=spaces[0][:n // 2])  # too small: scratch of its own
    assert np.array_equal(y, want) and counted


# --- Concat in place -----------------------------------------------------------------------------------
def concat_model():
    """x[1,4,8,8] -> Conv a (8 ch, 3x3) and Conv b (8 ch, 1x1) -> Concat (channels) -> Conv -> y."""
    inits = {"wa": random_tensor((8, 4, 3, 3), seed=1), "wb": random_tensor((8, 4, 1, 1), seed=2),
             "wc": random_tensor((4, 16, 1, 1), seed=3)}
    nodes = [h.make_node("Conv", ["x", "wa"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
             h.make_node("Conv", ["x", "wb"], ["b"], name="conv_b"),
             h.make_node("Concat", ["a", "b"], ["cat"], name="cat", axis=1),
             h.make_node("Conv", ["cat", "wc"], ["y"], name="conv_c")]
    return model(nodes, [("x", T.FLOAT, [1, 4, 8, 8])], [("y", T.FLOAT, [1, 4, 8, 8])], inits)


class CountingNumpy:
    """numpy, with its copyto calls counted (stands in for course.ops.concat's ``np``)."""

    def __init__(self):
        self.copies = 0

    def __getattr__(self, name):
        return getattr(np, name)

    def copyto(self, dst, src):
        self.copies += 1
        np.copyto(dst, src)


@pytest.mark.parametrize("providers", [REF, None], ids=["reference", "default"])
def test_concat_inputs_are_written_in_place_and_the_concat_copies_nothing(providers, monkeypatch):
    s = InferenceSession(concat_model(), providers=providers)
    layout, slot = s.plan.arena, s.plan.value_names.index
    validate_layout(s.plan, layout)
    a, b, cat = slot("a"), slot("b"), slot("cat")
    assert layout.within == {a: (cat, 0), b: (cat, 8 * 8 * 8 * 4)}
    assert layout.offsets[a] == layout.offsets[cat] and layout.offsets[b] == layout.offsets[cat] + 2048
    assert s.memory_report()["concats_in_place"] == 1
    counting = CountingNumpy()
    monkeypatch.setattr(concat_op, "np", counting)
    x = random_tensor((1, 4, 8, 8), seed=5)
    (y,) = s.run(None, {"x": x})
    assert counting.copies == 0
    plain = InferenceSession(concat_model(), providers=providers, arena=False)
    assert np.array_equal(y, plain.run(None, {"x": x})[0])
    s.plan.arena = plan_arena(s.plan, into=s._bound.into, concat=False)  # the copying layout, for contrast
    from course.runtime.arena import ArenaPool

    s._arenas = ArenaPool(s._bound)
    assert np.array_equal(s.run(None, {"x": x})[0], y) and counting.copies == 2


def test_validate_layout_rejects_a_chunk_where_the_concat_does_not_put_it():
    s = InferenceSession(concat_model(), providers=REF)
    good, slot = s.plan.arena, s.plan.value_names.index
    a, b, cat = slot("a"), slot("b"), slot("cat")
    swapped = ArenaLayout(**{**vars(good), "within": {a: (cat, 2048), b: (cat, 0)},
                             "offsets": {**good.offsets, a: good.offsets[cat] + 2048, b: good.offsets[cat]}})
    with pytest.raises(MemoryPlanError, match="cannot be a chunk"):
        validate_layout(s.plan, swapped)
    moved = ArenaLayout(**{**vars(good), "offsets": {**good.offsets, b: good.offsets[cat] + 1024}})
    with pytest.raises(MemoryPlanError, match="is not at"):
        validate_layout(s.plan, moved)


def test_layout_round_trips_chunks_and_workspaces_and_old_files_still_load():
    for m in (concat_model(), routes_model()):
        layout = InferenceSession(m).plan.arena
        assert ArenaLayout.from_dict(layout.to_dict()) == layout
    old = {k: v for k, v in layout.to_dict().items() if k not in ("within", "workspaces")}
    loaded = ArenaLayout.from_dict(old)
    assert loaded.within == {} and loaded.workspaces == {} and loaded.offsets == layout.offsets


def test_an_engine_plans_and_saves_its_workspaces(counted, tmp_path):
    from course.runtime import Engine, build_engine

    engine = build_engine(routes_model(), tune=False)
    steps = conv_steps(engine.session)
    assert set(engine.plan.arena.workspaces) == set(steps.values())  # build_engine asks the providers too
    engine.save(tmp_path / "routes.engine")
    loaded = Engine.load(tmp_path / "routes.engine")
    assert loaded.plan.arena.workspaces == engine.plan.arena.workspaces
    x = {"x": random_tensor((1, 16, 16, 16), seed=9)}
    want = InferenceSession(routes_model(), arena=False).run(None, x)
    del counted[:]
    got = loaded.run(None, x)
    assert not counted  # the loaded engine's convolutions take their scratch from its arena
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
