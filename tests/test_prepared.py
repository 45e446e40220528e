"""Kernels prepared per node (Op.prepare): conv.PreparedConv replays the job of its first call
with new addresses instead of taking the general path again. A replay must give the general
path's bits for every input it accepts, and must refuse (take the general path) whenever the
inputs differ from what the job was made for: another weight or bias array, another shape,
dtype or layout of X or Z. Each test checks both the values and that the route it is about
was really taken (a replay, or not)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import course
from course.models.builders import build_model
from course.ops import _blas, conv, registry

pytestmark = pytest.mark.skipif(not _blas.available(), reason="numpy's BLAS is not OpenBLAS")

P = pytest.importorskip("course.ops._parallel")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _last(x: np.ndarray) -> np.ndarray:
    """x with the same values, laid out channels last."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False  # as a session's weights are
    return a


FUSED = registry.lookup("FusedConv", 1, domain="course")
CONV = registry.lookup("Conv", 11)

CASES = {  # id: (x shape, w shape, attributes, channels-last X, residual)
    "pointwise": ((1, 24, 9, 7), (40, 24, 1, 1), {}, False, False),
    "pointwise-last-in-out": ((1, 24, 9, 7), (40, 24, 1, 1), {"_channels_last": True}, True, False),
    "pointwise-nchw-to-last": ((1, 24, 9, 7), (40, 24, 1, 1), {"_channels_last": True}, False, False),
    "pointwise-last-residual": ((1, 24, 9, 7), (40, 24, 1, 1), {"_channels_last": True}, True, True),
    "pointwise-residual": ((1, 24, 9, 7), (40, 24, 1, 1), {}, False, True),
    "depthwise": ((1, 32, 11, 10), (32, 1, 3, 3), {"group": 32, "strides": [2, 2], "pads": [1, 1, 1, 1]}, False, False),
    "depthwise-last": ((1, 64, 11, 10), (64, 1, 3, 3), {"group": 64, "pads": [1, 1, 1, 1]}, True, False),
    "im2col-stem": ((1, 3, 20, 18), (8, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}, False, False),
    "im2col-strided-residual": ((1, 16, 14, 13), (8, 16, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}, False,
                                True),
    "im2col-shared-residual": ((1, 24, 7, 6), (48, 24, 3, 3), {"pads": [1, 1, 1, 1]}, False, True),  # 42 < 2 * 48
    "winograd-residual": ((1, 16, 15, 14), (24, 16, 3, 3), {"pads": [1, 1, 1, 1]}, False, True),
}


def _operands(case, seed):
    xs, ws, attrs, last, residual = CASES[case]
    rng = _rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    w = _frozen(rng.standard_normal(ws).astype(np.float32) * 0.3)
    b = _frozen(rng.standard_normal(ws[0]).astype(np.float32))
    y_shape = conv.output_shape(x, w, attrs.get("strides"), attrs.get("pads"))
    z = rng.standard_normal(y_shape).astype(np.float32) if residual else None
    if last:
        x = _last(x)
        z = None if z is None else _last(z)
    return x, w, b, z, {**attrs, "activation": "Clip", "activation_params": [0.0, 6.0]}


def _general(x, w, b, z, attrs):
    return FUSED.compute(x, w, b, z, **attrs)


@pytest.mark.parametrize("case", list(CASES))
def test_a_replay_gives_the_general_paths_bits(case):
    x, w, b, z, attrs = _operands(case, 0)
    k = FUSED.prepare(_node(x, w), attrs)
    first = k(x, w, b, z)
    assert k.fast is not None, "the first call's job was not kept"
    values = k.fast.job.values
    if case.startswith("im2col"):  # the two ways the job splits: pixels, or output channels
        assert values[0] == P.IM2COL_GEMM and values[P.IM2COL_AXIS] == (0 if "shared" in case else 1)
    assert (values[0] == P.WINOGRAD) == case.startswith("winograd")
    kept = {P._address(a) for a in k.fast.job.keep}  # not the first call's scratch: each run makes its own
    assert not kept & {values[slot] for slot in P.scratch_slots(values)}
    assert len(P.scratch_slots(values)) == (3 if "winograd" in case else 2 if "shared" in case else 0)
    np.testing.assert_array_equal(first, _general(x, w, b, z, attrs))
    x2, _, _, z2, _ = _operands(case, 1)  # new X and Z, same weights
    general, real = [], k.general
    k.general = lambda *a: general.append(1) or real(*a)
    with P.running():
        y = k(x2, w, b, z2)
    assert not general, "the second call took the general path"
    want = _general(x2, w, b, z2, attrs)
    assert y.shape == want.shape and y.strides == want.strides  # the same layout as well
    np.testing.assert_array_equal(y, want)
    assert not np.array_equal(y, first)


def _node(x, w):
    """What prepare looks at in a node: its output's type."""
    from types import SimpleNamespace

    from course.ir.types import TensorType

    return SimpleNamespace(outputs=[SimpleNamespace(type=TensorType(np.float32, (x.shape[0], w.shape[0], 1, 1)))])


CHANGES = {  # what differs from the call that made the job
    "weight": lambda x, w, b, z: (x, _frozen(-w), b, z),
    "bias": lambda x, w, b, z: (x, w, _frozen(b + 1), z),
    "no bias": lambda x, w, b, z: (x, w, None, z),
    "X layout": lambda x, w, b, z: (_last(x) if x.flags.c_contiguous else np.ascontiguousarray(x), w, b, z),
    "X strided": lambda x, w, b, z: (np.concatenate([x, x], axis=3)[..., ::2], w, b, z),
    "X batch of 2": lambda x, w, b, z: (np.concatenate([x, x + 1]), w, b,
                                        None if z is None else np.concatenate([z, z])),
    "X int32, same strides": lambda x, w, b, z: (x.view(np.int32), w, b, z),
    "Z layout": lambda x, w, b, z: (x, w, b, None if z is None else (_last(z) if z.flags.c_contiguous
                                                                       else np.ascontiguousarray(z))),
    "Z broadcast": lambda x, w, b, z: (x, w, b, None if z is None else np.ascontiguousarray(z[:, :, :1, :1])),
}


@pytest.mark.parametrize("case,change", [(case, change) for case in ("pointwise-last-residual", "pointwise-residual",
                                                                      "depthwise-last", "im2col-strided-residual",
                                                                      "im2col-shared-residual", "winograd-residual")
                                         for change in CHANGES if CASES[case][4] or not change.startswith("Z")])
def test_anything_else_takes_the_general_path(case, change):
    x, w, b, z, attrs = _operands(case, 2)
    k = FUSED.prepare(_node(x, w), attrs)
    k(x, w, b, z)
    assert k.fast is not None
    general, real = [], k.general
    k.general = lambda *a: general.append(1) or real(*a)
    x2, _, _, z2, _ = _operands(case, 3)
    x2, w2, b2, z2 = CHANGES[change](x2, w, b, z2)
    try:
        want = _general(x2, w2, b2, z2, attrs)
    except course.EngineError as e:  # an int32 X with a float32 Z: the general path's error
        with pytest.raises(type(e)):
            k(x2, w2, b2, z2)
        assert general
        return
    with P.running():
        y = k(x2, w2, b2, z2)
    assert y.dtype == want.dtype and y.shape == want.shape
    np.testing.assert_array_equal(y, want)
    assert general, "a call unlike the first one replayed its job"


def test_conv_without_residual_prepares_too():
    x, w, b, _, _ = _operands("pointwise", 4)
    k = CONV.prepare(_node(x, w), {"group": 1, "auto_pad": "NOTSET", "dilations": None, "kernel_shape": None,
                                   "pads": None, "strides": None})
    a = k(x, w, b)
    x2 = _operands("pointwise", 5)[0]
    c = k(x2, w, b)
    assert k.fast is not None
    np.testing.assert_array_equal(a, CONV.compute(x, w, b))
    np.testing.assert_array_equal(c, CONV.compute(x2, w, b))


def test_routes_of_several_jobs_stop_trying():
    # the shifted GEMMs crop a wider grid after their GEMM: not one job straight into Y
    x = _rng(6).standard_normal((1, 16, 14, 14)).astype(np.float32)
    w = _frozen(_rng(7).standard_normal((16, 16, 3, 2)).astype(np.float32))
    attrs = {"pads": [1, 1, 1, 1], "activation": "Relu", "activation_params": []}
    k = FUSED.prepare(_node(x, w), attrs)
    for _ in range(2):
        np.testing.assert_array_equal(k(x, w, None), FUSED.compute(x, w, None, **attrs))
    assert k.fast is None and not k.replayable


def test_the_plan_prepares_convolutions_and_nothing_else():
    m = build_model("mobilenetv2", image_size=64)
    s = course.InferenceSession(m)
    x = _rng(8).standard_normal((1, 3, 64, 64)).astype(np.float32)
    name = m.graph.input[0].name
    s.run(None, {name: x})
    prepared = [st for st in s._plan.steps if isinstance(st.fn, conv.PreparedConv)]
    others = [st for st in s._plan.steps if not isinstance(st.fn, conv.PreparedConv)]
    assert len(prepared) == 52 and all(st.kwargs == {} for st in prepared)
    assert all(st.node.op_type not in ("Conv", "FusedConv") and st.kwargs is st.attrs for st in others)
    assert all(st.fn.fast is not None for st in prepared)  # every one is one job: the stem's a blocked im2col GEMM
    want = course.InferenceSession(m).run(None, {name: x})[0]  # a first run: the general path throughout
    np.testing.assert_array_equal(s.run(None, {name: x})[0], want)


def test_two_threads_replaying_the_same_session_get_their_own_results():
    # one run holds the pool, the other runs alone; both replay the same prepared kernels
    m = build_model("mobilenetv2", image_size=64)
    s = course.InferenceSession(m)
    name = m.graph.input[0].name
    xs = [_rng(10 + i).standard_normal((1, 3, 64, 64)).astype(np.float32) for i in range(2)]
    want = [s.run(None, {name: x})[0] for x in xs]
    bad = []

    def worker(i):
        for _ in range(30):
            if not np.array_equal(s.run(None, {name: xs[i]})[0], want[i]):
                bad.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad, f"runs gave wrong results in threads {sorted(set(bad))}"


def test_a_fed_weight_is_used_not_the_prepared_one():
    rng = _rng(12)
    w = rng.standard_normal((8, 4, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 5, 5])],
                          [numpy_helper.from_array(w, "w")])
    g.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [8, 4, 1, 1]))
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    s = course.InferenceSession(model)
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    a = s.run(None, {"x": x})[0]
    assert np.array_equal(s.run(None, {"x": x})[0], a)
    np.testing.assert_array_equal(s.run(None, {"x": x, "w": -w})[0], -a)
    np.testing.assert_array_equal(s.run(None, {"x": x})[0], a)


def test_a_writeable_weight_is_never_replayed():
    # the job reads W.T, a copy: a weight written in place would leave it stale
    x, w, b, z, attrs = _operands("pointwise-last-residual", 13)
    w, b = np.array(w), np.array(b)  # writeable
    k = FUSED.prepare(_node(x, w), attrs)
    first = k(x, w, b, z)
    w *= -1
    b += 1
    second = k(x, w, b, z)
    np.testing.assert_array_equal(second, _general(x, w, b, z, attrs))
    assert not np.array_equal(first, second) and k.fast is None and k.replayable


@pytest.mark.parametrize("case", ["pointwise-residual", "im2col-strided-residual", "im2col-shared-residual",
                                  "winograd-residual"])
def test_a_residual_the_route_copied_is_not_replayed(case):
    # these routes read Z in their output's (NCHW) layout: a channels-last Z is copied first, so
    # the job holds the copy's address, and patching in the next Z's would read it wrongly
    x, w, b, z, attrs = _operands(case, 14)
    k = FUSED.prepare(_node(x, w), attrs)
    first = k(x, w, b, _last(z))
    np.testing.assert_array_equal(first, _general(x, w, b, z, attrs))
    x2, _, _, z2, _ = _operands(case, 15)
    with P.running():
        second = k(x2, w, b, _last(z2))
    np.testing.assert_array_equal(second, _general(x2, w, b, z2, attrs))
    assert k.fast is None and not k.replayable
