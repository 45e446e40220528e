"""Channels last between MobileNet's convolutions: the channels-last depthwise kernel, 1x1
convolutions that read and write channels last, gemm_sum's transposed A and per-column bias, and
the plan's choice of which convolutions lay their output out that way (conv.channels_last_hints).

A channels-last tensor is an ordinary (N, C, H, W) numpy view of an (N, H, W, C) array, so every
result is checked for its values (against float64 sums and against the NCHW routes) and for its
layout (else a route could quietly fall back to NCHW and the tests would still pass)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import course
from course.ops import _blas, conv

pytestmark = pytest.mark.skipif(not _blas.available(), reason="numpy's BLAS is not OpenBLAS")

P = pytest.importorskip("course.ops._parallel")
fk = pytest.importorskip("course.ops._fused_kernels")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _last(x: np.ndarray) -> np.ndarray:
    """x with the same values, laid out channels last."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _depthwise64(x, w, b, strides, pads, auto_pad="NOTSET"):
    """float64 reference for a 3x3 depthwise conv (explicit pads or SAME_*)."""
    n, c, h, wd = x.shape
    sh, sw = strides
    if auto_pad != "NOTSET":
        oh, ow = -(-h // sh), -(-wd // sw)
        th, tw = max((oh - 1) * sh + 3 - h, 0), max((ow - 1) * sw + 3 - wd, 0)
        top, left = (th // 2, tw // 2) if auto_pad == "SAME_UPPER" else (th - th // 2, tw - tw // 2)
        pads = [top, left, th - top, tw - left]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh, ow = (xp.shape[2] - 3) // sh + 1, (xp.shape[3] - 3) // sw + 1
    y = np.zeros((n, c, oh, ow))
    for i in range(3):
        for j in range(3):
            y += xp[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw] * w[None, :, 0, i, j, None, None]
    return y + (0 if b is None else b[None, :, None, None])


ACTS = [("Clip", (0.0, 6.0)), ("Relu", ()), ("LeakyRelu", (0.1,)), ("Identity", ())]
GEOMETRIES = [  # (N, C, H, W, strides, pads, auto_pad)
    (1, 64, 7, 7, (1, 1), [1, 1, 1, 1], "NOTSET"),
    (2, 80, 9, 12, (2, 2), [1, 1, 1, 1], "NOTSET"),  # 80: not a whole number of SIMD blocks
    (1, 144, 14, 14, (2, 1), [0, 2, 1, 0], "NOTSET"),
    (1, 96, 6, 5, (1, 1), [0, 0, 0, 0], "NOTSET"),
    (1, 64, 8, 11, (2, 2), None, "SAME_UPPER"),
    (1, 72, 5, 7, (1, 2), None, "SAME_LOWER"),
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_channels_last_depthwise_matches_the_plane_kernel_bit_for_bit(geometry):
    n, c, h, wd, strides, pads, auto_pad = geometry
    r = _rng(c + h)
    x = r.standard_normal((n, c, h, wd)).astype(np.float32)
    x[:, :, ::3] = 0.0  # exact zeros, as after a ReLU: the padding taps must still add 0 * w
    w = r.standard_normal((c, 1, 3, 3)).astype(np.float32)
    b = r.standard_normal(c).astype(np.float32)
    for (act, params), bias in zip(ACTS, (b, None, b, None)):
        plane = fk.depthwise_conv2d(x, w, bias, strides, pads, None, auto_pad, act, params)
        got = fk.depthwise_conv2d(_last(x), w, bias, strides, pads, None, auto_pad, act, params)
        assert fk.channels_minor(got) and not got.flags.c_contiguous, "the output must stay channels last"
        assert np.array_equal(got, plane), (act, bias is None)
        ref = _depthwise64(x, w, bias, strides, pads, auto_pad)
        if act == "Clip":
            ref = np.clip(ref, 0, 6)
        elif act == "Relu":
            ref = np.maximum(ref, 0)
        elif act == "LeakyRelu":
            ref = np.where(ref < 0, 0.1 * ref, ref)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not P._POOL.enabled(), reason="the pool needs two CPUs (and not Windows)")
def test_channels_last_depthwise_same_bits_pooled_or_alone():
    r = _rng(3)
    x = _last(r.standard_normal((2, 96, 14, 14)).astype(np.float32))
    w = r.standard_normal((96, 1, 3, 3)).astype(np.float32)
    b = r.standard_normal(96).astype(np.float32)
    alone = fk.depthwise_conv2d(x, w, b, (1, 1), [1, 1, 1, 1], None, "NOTSET", "Clip", (0.0, 6.0))
    start = P._POOL.state[P.HELPED]
    deadline = time.monotonic() + 10.0  # the helper may take a while to start the first time
    with P.running():
        while P._POOL.state[P.HELPED] == start and time.monotonic() < deadline:
            pooled = fk.depthwise_conv2d(x, w, b, (1, 1), [1, 1, 1, 1], None, "NOTSET", "Clip", (0.0, 6.0))
            assert np.array_equal(pooled, alone)
    assert P._POOL.state[P.HELPED] > start, "the helper thread never took a chunk"


@pytest.mark.parametrize("layout_in", ["nchw", "last"])
@pytest.mark.parametrize("residual", [None, "nchw", "last"])
def test_pointwise_conv_writes_channels_last(layout_in, residual):
    r = _rng(5)
    x = r.standard_normal((2, 40, 9, 13)).astype(np.float32)
    w = (r.standard_normal((72, 40, 1, 1)) * 0.2).astype(np.float32)
    w.flags.writeable = False
    b = r.standard_normal(72).astype(np.float32)
    z = None if residual is None else r.standard_normal((2, 72, 9, 13)).astype(np.float32)
    post = (b, None if z is None else (z if residual == "nchw" else _last(z)), "Clip", (-1.0, 1.5))
    xin = x if layout_in == "nchw" else _last(x)
    got = conv.conv_core(xin, w, post=post, channels_last=True)
    assert fk.channels_minor(got) and got.shape == (2, 72, 9, 13)
    ref = np.einsum("mc,nchw->nmhw", w[:, :, 0, 0].astype(np.float64), x) + b[None, :, None, None]
    ref = np.clip(ref + (0 if z is None else z), -1.0, 1.5)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    nchw = conv.conv_core(xin, w, post=(b, z, "Clip", (-1.0, 1.5)))  # the NCHW route, from either layout
    assert nchw.flags.c_contiguous
    np.testing.assert_allclose(got, nchw, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m,k,n", [(300, 24, 72),  # split by rows, several row blocks
                                   (20, 40, 300)])  # split by columns (a 7x7 plane, 960 channels)
def test_gemm_sum_transposed_a_and_per_column_bias(m, k, n):
    r = _rng(7)
    x = r.standard_normal((k, m)).astype(np.float32)  # A = x.T, a transposed window
    w = r.standard_normal((k, n)).astype(np.float32)
    b = r.standard_normal(n).astype(np.float32)
    z = r.standard_normal((m, n)).astype(np.float32)
    act = fk.scalars(np.float32, "LeakyRelu", (0.25,))
    old = P.BLOCK_MIN
    try:
        P.BLOCK_MIN = 16  # blocks of 16 rows or columns: the epilogue must follow every block
        got = P.gemm_sum(x.T[None], [w], np.empty((m, n), np.float32), bias=b, z=z, act=act, bias_axis=1)
    finally:
        P.BLOCK_MIN = old
    ref = x.T.astype(np.float64) @ w + b + z
    ref = np.where(ref < 0, 0.25 * ref, ref)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    plain = P.gemm_sum(x.T[None], [w], np.empty((m, n), np.float32))
    want = plain + b  # the same sums, then bias and residual in that order
    want += z
    assert np.array_equal(got, np.where(want < 0, want * np.float32(0.25), want))
    with pytest.raises(ValueError, match="does not fit"):
        P.gemm_sum(x.T[None], [w], np.empty((m, n), np.float32), bias=np.ones(m, np.float32), act=act, bias_axis=1)


# ---- which convolutions the plan lays out channels last ------------------------------------------


def _chain(channels=128, graph_output_dw=False, middle=None, first="Conv", ir_version=10):
    """x (1, 32, 14, 14) -> 1x1 (channels) -> Clip -> 3x3 depthwise -> Clip -> [middle] -> 1x1 (32) -> y;
    with ``first`` "Abs", an Abs of the expansion (no convolution) feeds the depthwise conv."""
    r = _rng(11)
    inits = [numpy_helper.from_array((r.standard_normal((channels, 32, 1, 1)) * 0.2).astype(np.float32), "w1"),
             numpy_helper.from_array((r.standard_normal((channels, 1, 3, 3)) * 0.3).astype(np.float32), "w2"),
             numpy_helper.from_array((r.standard_normal((32, channels, 1, 1)) * 0.1).astype(np.float32), "w3"),
             numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(6.0), "hi")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"]),
             helper.make_node("Clip", ["a", "lo", "hi"], ["a6"]) if first == "Conv" else
             helper.make_node(first, ["a"], ["a6"]),
             helper.make_node("Conv", ["a6", "w2"], ["d"], group=channels, pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["d", "lo", "hi"], ["d6"])]
    last = "d6"
    if middle is not None:
        nodes.append(helper.make_node(middle, ["d6"], ["m"]))
        last = "m"
    nodes.append(helper.make_node("Conv", [last, "w3"], ["y"]))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 14, 14])]
    if graph_output_dw:
        outputs.append(helper.make_tensor_value_info("d6", TensorProto.FLOAT, [1, channels, 14, 14]))
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 14, 14])],
                          outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=ir_version)


def _marked(session) -> list[str]:
    return [f"{st.node.op_type}:{st.node.attrs.get('group', 1)}" for st in session._plan.steps
            if st.attrs.get("_channels_last")]


def test_plan_lays_out_the_expansion_and_depthwise_channels_last():
    model = _chain()
    x = _rng(1).standard_normal((1, 32, 14, 14)).astype(np.float32)
    s = course.InferenceSession(model)
    assert _marked(s) == ["FusedConv:1", "FusedConv:128"]  # not the last conv: its output is the graph's
    ort = pytest.importorskip("onnxruntime")
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = s.run(None, {"x": x})[0]
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("change", ["few channels", "dw is a graph output", "something else reads it",
                                    "dw reads no convolution", "custom Conv", "no fusion"])
def test_plan_keeps_nchw_where_channels_last_does_not_pay_or_is_not_safe(change):
    kwargs = {}
    if change == "few channels":
        model = _chain(channels=32)  # below CHANNELS_LAST_MIN: neither the conv nor the depthwise
        want = []
    elif change == "dw is a graph output":
        model = _chain(graph_output_dw=True)  # then its input must stay NCHW too
        want = []
    elif change == "something else reads it":
        model = _chain(middle="Relu")  # a Relu reads the depthwise output, which follows its input
        want = []
    elif change == "dw reads no convolution":
        model = _chain(first="Abs")  # not fused into the expansion: the depthwise input is NCHW
        want = []
    elif change == "custom Conv":
        model, kwargs, want = _chain(), {"custom_kernels": {"Conv": conv.Conv().compute}}, []
    else:
        model, kwargs, want = _chain(), {"graph_optimization_level": "disable"}, []  # Clip reads each conv
    s = course.InferenceSession(model, **kwargs)
    assert _marked(s) == want
    x = _rng(2).standard_normal((1, 32, 14, 14)).astype(np.float32)
    ref = course.InferenceSession(_chain(**({"channels": 32} if change == "few channels" else
                                            {"first": "Abs"} if change == "dw reads no convolution" else {})),
                                  graph_optimization_level="disable")
    outs = s.run(None, {"x": x})
    np.testing.assert_allclose(outs[0], ref.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    assert all(o.flags.c_contiguous for o in outs)


def test_mobilenetv2_runs_channels_last_between_its_convolutions():
    from course.models.builders import build_model

    s = course.InferenceSession(build_model("mobilenetv2", image_size=64))
    marked = _marked(s)
    depthwise = [m for m in marked if m != "FusedConv:1" and m != "Conv:1"]
    assert len(depthwise) == 16  # every depthwise conv but the first (32 channels)
    assert len(marked) > 40
    steps = s._plan.steps
    pool = next(i for i, st in enumerate(steps) if st.node.op_type == "GlobalAveragePool")
    assert steps[pool - 1].attrs.get("_channels_last")  # a global pooling reads either layout
