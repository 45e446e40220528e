"""Arena execution (issue 16): a session's intermediates live in one arena planned at
construction; kernels with destination passing write straight into it; graph outputs never
point into it; concurrent runs each borrow an arena of their own; the plan carries the layout.

Every session these tests build goes through ``session()``, which checks its layout with the
validator (course.memory.validate, via ``validate_layout``) before anything runs.
"""
import json
import threading

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper as h

from course import InferenceSession
from course.bench import relative_error
from course.memory import MemoryPlanError, liveness, plan_outputs
from course.models import MODEL_NAMES, MODELS, build_model
from course.ops import registry
from course.providers import ReferenceExecutionProvider
from course.providers.base import NodeSpec
from course.runtime.arena import ArenaLayout, arena_pool, plan_arena, validate_layout
from course.runtime.execute import execute
from course.runtime.plan import Plan, bind
from course.testing import assert_close, random_tensor
from ir_builders import model

REF = ["ReferenceExecutionProvider"]
REL_TOL = 1e-4  # as tests/test_models.py: max|ours - ort| / max|ort| over the logits
SMALL = dict(image_size=32, num_classes=10, width=0.25)


def session(m, **kwargs) -> InferenceSession:
    s = InferenceSession(m, **kwargs)
    if s.plan.arena is not None:
        validate_layout(s.plan, s.plan.arena)
    return s


def image(batch=1, size=224, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def ort_logits(m, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def planned_by_into(s: InferenceSession) -> set:
    """The slots the default policy must place: outputs (not graph outputs) of steps whose
    kernel writes into views, with a static shape."""
    outputs, want = plan_outputs(s.plan), set()
    for st, into in zip(s.plan.steps, s._bound.into):
        for slot, t in zip(st.outs, st.spec.outputs):
            if into is not None and slot >= 0 and slot not in outputs and all(isinstance(d, int) for d in t[1]):
                want.add(slot)
    return want


# --- every model, in an arena, against onnxruntime ------------------------------------------------
@pytest.fixture(scope="module")
def reference_logits():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = (MODELS[name](), ort_logits(MODELS[name](), image()))
        return cache[name]

    return get


@pytest.mark.parametrize("providers", [REF, None], ids=["reference", "default"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_runs_in_an_arena_and_matches_onnxruntime(name, providers, reference_logits):
    m, want = reference_logits(name)
    s = session(m, providers=providers)
    layout, report = s.plan.arena, s.memory_report()
    assert set(layout.offsets) == planned_by_into(s)  # every destination-passing output, nothing else
    assert {"arena_bytes", "lower_bound_bytes", "strategy", "offsets"} <= set(report)
    assert report["arena_bytes"] == layout.arena_bytes and report["strategy"] == "best"
    assert report["lower_bound_bytes"] <= report["arena_bytes"] <= 1.01 * report["lower_bound_bytes"]
    if providers == REF:  # the reference writes (nearly) every intermediate into the arena
        assert len(layout.offsets) >= len(s.plan.steps) // 3 and layout.arena_bytes > 2**20
    got = s.run(None, {"input": image()})[0]
    assert got.shape == want.shape == (1, 1000)
    assert relative_error(got, want) <= REL_TOL, f"{name}: relative error {relative_error(got, want):.3g}"
    assert int(got.argmax()) == int(want.argmax())
    assert s._arenas.created == 1


# --- the arena is really used, and outputs never point into it -------------------------------------
def conv_relu_conv():
    """x[1,3,8,8] -> Conv -> c1 -> Relu (a recording kernel) -> Conv -> Sigmoid -> y; and z, a
    Reshape of c1's Relu twin, as a second graph output."""
    inits = {"w1": random_tensor((4, 3, 3, 3), seed=1), "w2": random_tensor((4, 4, 3, 3), seed=2),
             "shape": np.array([1, -1], np.int64)}
    nodes = [h.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c1"], ["r"], name="relu"),
             h.make_node("Conv", ["r", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             h.make_node("Sigmoid", ["c2"], ["y"], name="sigmoid"),
             h.make_node("Abs", ["c1"], ["a"], name="abs"),
             h.make_node("Reshape", ["a", "shape"], ["z"], name="flat")]
    return model(nodes, [("x", T.FLOAT, [1, 3, 8, 8])], [("y", T.FLOAT, [1, 4, 8, 8]), ("z", T.FLOAT, [1, 256])],
                 inits)


def recording_relu(seen):
    def relu(x):
        seen.append(x)
        return np.maximum(x, 0)
    return relu


def test_destination_passing_writes_into_the_arena_at_the_planned_offset():
    seen = []
    s = session(conv_relu_conv(), providers=REF, custom_kernels={"Relu": recording_relu(seen)})
    c1 = s.plan.value_names.index("c1")
    assert c1 in s.plan.arena.offsets
    x1, x2 = random_tensor((1, 3, 8, 8), seed=3), random_tensor((1, 3, 8, 8), seed=4)
    y1, z1 = s.run(None, {"x": x1})
    arena = s._arenas._free[0]  # the one arena, back in the pool after the run
    assert np.shares_memory(seen[0], arena.buffer)
    assert address(seen[0]) - address(arena.buffer) == s.plan.arena.offsets[c1]
    y2, z2 = s.run(None, {"x": x2})
    assert np.shares_memory(seen[0], seen[1]) and s._arenas.created == 1  # the same bytes, reused
    for out in (y1, z1, y2, z2):
        assert not np.shares_memory(out, arena.buffer)
    plain = InferenceSession(conv_relu_conv(), providers=REF, arena=False)
    for x, y, z in ((x1, y1, z1), (x2, y2, z2)):
        want_y, want_z = plain.run(None, {"x": x})
        assert np.array_equal(y, want_y) and np.array_equal(z, want_z)


def test_without_an_arena_nothing_is_shared():
    seen = []
    s = session(conv_relu_conv(), providers=REF, custom_kernels={"Relu": recording_relu(seen)}, arena=False)
    assert s.plan.arena is None and s._arenas is None
    for seed in (3, 4):
        s.run(None, {"x": random_tensor((1, 3, 8, 8), seed=seed)})
    assert not np.shares_memory(seen[0], seen[1])  # the check above can tell the two apart
    assert "offsets" in s.memory_report() and s.memory_report()["strategy"] == "best"


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet", "densenet"])
def test_a_second_run_leaves_the_first_results_alone(name):
    """squeezenet ends in a Flatten: a view of the arena's GlobalAveragePool output, copied out."""
    s = session(build_model(name, **SMALL), providers=REF)
    x1, x2 = image(size=32, seed=1), image(size=32, seed=2)
    (y1,) = s.run(None, {"input": x1})
    kept = y1.copy()
    (y2,) = s.run(None, {"input": x2})
    assert np.array_equal(y1, kept) and not np.array_equal(y1, y2)
    assert not np.shares_memory(y1, s._arenas._free[0].buffer)
    assert_close(y1, ort_logits(build_model(name, **SMALL), x1), rtol=1e-4, atol=1e-5)


# --- threads ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("providers", [None, REF], ids=["default", "reference"])
def test_four_threads_each_get_their_own_result(providers):
    s = session(build_model("mobilenetv2", **SMALL), providers=providers)
    if providers is None:  # the CPU provider's helper thread is shared between concurrent runs
        assert any(st.provider == "CPUExecutionProvider" for st in s.plan.steps)
    feeds = [[image(size=32, seed=100 * t + i) for i in range(50)] for t in range(4)]
    want = [[s.run(None, {"input": x})[0] for x in row] for row in feeds]  # one thread, one arena
    assert s._arenas.created == 1
    start, errors = threading.Barrier(4), []

    def work(t):
        start.wait()
        for i, x in enumerate(feeds[t]):
            got = s.run(None, {"input": x})[0]
            if relative_error(got, want[t][i]) > 1e-5:
                errors.append((t, i, relative_error(got, want[t][i])))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]
    created = s._arenas.created
    assert 1 <= created <= 4 and len(s._arenas._free) == created  # every arena back in the pool
    for x in feeds[0][:3]:
        s.run(None, {"input": x})
    assert s._arenas.created == created  # sequential runs allocate no new arena


# --- symbolic dims ----------------------------------------------------------------------------------
def test_symbolic_batch_planned_at_its_largest_size_runs_smaller_batches_inside():
    m = build_model("mobilenetv2", batch="N", **SMALL)
    s = session(m, providers=REF, arena_dims={"N": 4})
    nothing = session(m, providers=REF)  # no dims: every symbolic slot allocated per run
    plain = InferenceSession(m, providers=REF, arena=False)
    layout = s.plan.arena
    assert layout.dims == {"N": 4} and len(layout.offsets) > 20
    assert nothing.plan.arena.offsets == {} and nothing.memory_report()["dynamic"]
    first = s.plan.steps[0]  # the first conv: ("N", C, H, W) at N = 4
    c, hh, ww = first.spec.outputs[0][1][1:]
    assert layout.sizes[first.outs[0]] == 4 * c * hh * ww * 4
    for batch in (1, 2, 4, 5):  # 5 does not fit: those slots fall back to their own arrays
        x = image(batch, 32, seed=batch)
        got = s.run(None, {"input": x})[0]
        assert_close(got, plain.run(None, {"input": x})[0], rtol=1e-6, atol=1e-6)
        assert_close(nothing.run(None, {"input": x})[0], got, rtol=1e-6, atol=1e-6)
        views = [v for p in s._arenas._free[0].places if p is not None for v in p.out if type(v) is np.ndarray]
        if batch <= 4:
            assert len(views) == len(layout.offsets) and all(v.shape[0] == batch for v in views)
        else:
            assert not views
    assert_close(got, ort_logits(m, x), rtol=1e-4, atol=1e-5)


# --- the plan carries the layout ------------------------------------------------------------------------
def test_plan_round_trip_keeps_the_arena_and_runs_in_it():
    s = session(build_model("densenet", **SMALL), providers=REF)
    data = json.loads(json.dumps(s.plan.to_dict()))
    loaded = Plan.from_dict(data)
    assert isinstance(loaded.arena, ArenaLayout) and loaded.arena == s.plan.arena
    assert loaded.arena.inplace  # densenet's BN -> Relu chains write in place
    old = {k: v for k, v in data.items() if k != "arena"}  # a plan saved before arenas existed
    assert Plan.from_dict(old).arena is None
    bound = bind(loaded, {"ReferenceExecutionProvider": ReferenceExecutionProvider()})
    pool = arena_pool(bound)  # the loaded layout, validated
    assert pool.layout is loaded.arena
    x = image(size=32, seed=7)
    slots = [None] * loaded.num_slots
    for slot, arr in loaded.constants.items():
        slots[slot] = arr
    slots[loaded.slot_of["input"]] = x
    execute(bound, slots, pool)
    assert np.array_equal(slots[loaded.slot_of[s.get_outputs()[0].name]], s.run(None, {"input": x})[0])


def test_the_validator_rejects_broken_layouts():
    s = session(build_model("densenet", **SMALL), providers=REF)
    plan, good = s.plan, s.plan.arena
    # two slots in no in-place pair and no Concat in place, alive together at the step writing b
    nested = {*good.within, *(c for c, _ in good.within.values()), *good.inplace, *good.inplace.values()}
    free, live = sorted(s for s in good.offsets if s not in nested), liveness(plan)
    a, b = next((a, b) for a in free for b in free if a < b and live[a][0] <= live[b][0] <= live[a][1])
    broken = [
        ArenaLayout(**{**vars(good), "offsets": {**good.offsets, b: good.offsets[a]}}),
        ArenaLayout(**{**vars(good), "offsets": {**good.offsets, a: good.offsets[a] + 8}}),
        ArenaLayout(**{**vars(good), "sizes": {**good.sizes, a: 64}}),
        ArenaLayout(**{**vars(good), "arena_bytes": good.arena_bytes - 64}),
    ]
    output = next(iter(plan_outputs(plan)))
    broken.append(ArenaLayout(**{**vars(good), "offsets": {**good.offsets, output: 0},
                                 "sizes": {**good.sizes, output: 1 << 20}}))
    for layout, why in zip(broken, ["overlap", "multiple of 64", "needs more", "ends past", "cannot be placed"]):
        with pytest.raises(MemoryPlanError, match=why):
            validate_layout(plan, layout)
    plan.arena = broken[0]
    with pytest.raises(MemoryPlanError):
        arena_pool(bind(plan, {"ReferenceExecutionProvider": ReferenceExecutionProvider()}))


def test_layout_leaves_out_outputs_constants_and_kernels_without_destination_passing():
    s = session(build_model("resnet", **SMALL))
    placed = set(s.plan.arena.offsets)
    assert not placed & (set(plan_outputs(s.plan)) | set(s.plan.constants) | {s.plan.slot_of["input"]})
    into = s._bound.into
    cpu = {slot for st, k in zip(s.plan.steps, into) if st.provider == "CPUExecutionProvider" and k is not None
           for slot in st.outs} - set(plan_outputs(s.plan))
    assert cpu and cpu <= placed  # the CPU provider's convolutions write into the arena
    kept = {slot for st, k in zip(s.plan.steps, into) if k is None for slot in st.outs}
    assert kept and not placed & kept  # kernels without destination passing keep their own arrays
    everything = plan_arena(s.plan, into=None)  # the "copy in" policy plans those outputs too
    assert kept - set(plan_outputs(s.plan)) <= set(everything.offsets)
    validate_layout(s.plan, everything)


# --- the reference ops' destination passing ------------------------------------------------------------
def _x(shape=(1, 4, 6, 6), seed=0):
    return random_tensor(shape, seed=seed)


OUT_CASES = {  # op type: (inputs, attrs)
    "Relu": ([_x()], {}), "Abs": ([_x()], {}), "Neg": ([_x()], {}), "Exp": ([_x()], {}),
    "Sqrt": ([np.abs(_x())], {}), "Reciprocal": ([_x() + 2], {}), "Tanh": ([_x()], {}),
    "Sigmoid": ([_x()], {}), "LeakyRelu": ([_x()], {"alpha": 0.1}),
    "Clip": ([_x(), np.float32(-0.5), np.float32(0.25)], {}),
    "Add": ([_x(), _x((4, 1, 1), 1)], {}), "Sub": ([_x(), _x(seed=2)], {}), "Mul": ([_x(), _x(seed=3)], {}),
    "Div": ([_x(), _x(seed=4) + 2], {}),
    "BatchNormalization": ([_x(), *(np.abs(_x((4,), s)) + 0.5 for s in range(4))], {"epsilon": 1e-5}),
    "Conv": ([_x(), _x((6, 4, 3, 3), 5), _x((6,), 6)], {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "MatMul": ([_x((3, 5)), _x((5, 2), 1)], {}), "Gemm": ([_x((3, 5)), _x((2, 5), 1), _x((2,), 2)],
                                                        {"transB": 1, "alpha": 0.5}),
    "MaxPool": ([_x()], {"kernel_shape": [3, 3], "strides": [2, 2]}),
    "AveragePool": ([_x()], {"kernel_shape": [2, 2], "pads": [1, 1, 0, 0]}),
    "GlobalAveragePool": ([_x()], {}), "GlobalMaxPool": ([_x()], {}),
    "Concat": ([_x(), _x(seed=1)], {"axis": 1}), "Transpose": ([_x()], {"perm": [0, 2, 3, 1]}),
}
INPLACE = {"Relu", "Abs", "Neg", "Exp", "Sqrt", "Reciprocal", "Tanh", "Sigmoid", "LeakyRelu", "Clip", "Add",
           "Sub", "Mul", "Div", "BatchNormalization"}


def spec_of(op_type, inputs, attrs, domain=""):
    op = registry.lookup(op_type, 17, domain)
    full = op.resolve_attrs(attrs)
    if getattr(op, "wants_num_outputs", False):
        full["_num_outputs"] = 1
    types = [(a.dtype, a.shape) for a in inputs]
    return NodeSpec(op_type.lower(), op_type, domain, 17, full, types, [types[0]])


@pytest.mark.parametrize("op_type", sorted(OUT_CASES))
def test_reference_kernels_write_into_the_view_they_are_handed(op_type):
    inputs, attrs = OUT_CASES[op_type]
    ref = ReferenceExecutionProvider()
    spec = spec_of(op_type, inputs, attrs)
    want = ref.kernel(spec)(*inputs)
    into = ref.kernel_into(spec)
    assert into is not None
    out = np.full(want.shape, np.nan, want.dtype)
    into(*inputs, out=(out,))
    assert np.array_equal(out, want)
    if op_type in INPLACE:  # the view may be the input's own bytes (planned in-place reuse)
        x = inputs[0].copy()
        into(x, *inputs[1:], out=(x,))
        assert np.array_equal(x, want)


def test_fused_conv_writes_into_its_view_with_and_without_a_residual():
    x, w, b, z = _x(), _x((4, 4, 3, 3), 5), _x((4,), 6), _x(seed=7)
    ref = ReferenceExecutionProvider()
    for inputs in ([x, w, b], [x, w, b, z]):
        spec = spec_of("FusedConv", inputs, {"pads": [1, 1, 1, 1], "activation": "Relu"}, domain="course")
        want = ref.kernel(spec)(*inputs)
        out = np.empty_like(want)
        ref.kernel_into(spec)(*inputs, out=(out,))
        assert np.array_equal(out, want)


def test_view_ops_and_multi_output_ops_have_no_destination_passing():
    ref = ReferenceExecutionProvider()
    x = _x()
    reshape = NodeSpec("r", "Reshape", "", 17, {"allowzero": 0}, [(x.dtype, x.shape), (np.dtype(np.int64), (2,))],
                       [(x.dtype, (1, 144))])
    assert ref.kernel_into(reshape) is None
    split = spec_of("Split", [x], {"axis": 1})
    split.outputs = [split.outputs[0]] * 2
    assert ref.kernel_into(split) is None
