"""The speed paths of the CPU kernels: direct CBLAS calls, Conv as shifted GEMMs, MaxPool over
stride phases, and the session's read-only weight snapshots they rely on. Each path must give
onnxruntime's answer, and the tests check that the path is really the one taken."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import course
from course.ir.onnx_import import from_onnx
from course.ops import _blas, conv, registry
from course.testing import random_tensor
from ops_oracle import check

pytestmark = pytest.mark.skipif(not _blas.available(), reason="numpy's BLAS exposes no CBLAS gemm")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_accumulates_through_strided_windows(dtype):
    rng = np.random.default_rng(0)
    big_a = rng.standard_normal((7, 20)).astype(dtype)
    big_b = rng.standard_normal((13, 40)).astype(dtype)
    a, b = big_a[1:6, 3:14], big_b[2:13, 5:22]  # (5, 11) @ (11, 17), rows far apart
    c0 = rng.standard_normal((5, 17)).astype(dtype)
    c = c0.copy()
    _blas.gemm(a, b, c, beta=1.0)
    np.testing.assert_allclose(c, a @ b + c0, rtol=1e-5)
    out = np.full((5, 30), np.nan, dtype)[:, 4:21]  # beta=0 ignores what was there (even NaN)
    _blas.gemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5)


def test_gemm_refuses_what_does_not_fit():
    a, b = np.ones((3, 4), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(ValueError):
        _blas.gemm(a, b, np.empty((3, 6), np.float32))  # wrong output shape
    with pytest.raises(ValueError):
        _blas.gemm(a, b.astype(np.float64), np.empty((3, 5), np.float32))  # mixed dtypes
    with pytest.raises(ValueError):
        _blas.gemm(a, np.ones((5, 4), np.float32).T, np.empty((3, 5), np.float32))  # column-major b
    frozen = np.empty((3, 5), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        _blas.gemm(a, b, frozen)


def _spy(monkeypatch, name, what):
    """Record ``what(args)`` for each call of course.ops._parallel's ``name`` (which still runs)."""
    from course.ops import _parallel

    calls = []
    real = getattr(_parallel, name)
    monkeypatch.setattr(_parallel, name, lambda *a, **k: calls.append(what(a)) or real(*a, **k))
    return calls


TAP_CASES = [  # big enough for the shifted-GEMM path (C >= 16, >= 196 outputs per plane, stride 1), not 3x3
    ((1, 16, 16, 15), (8, 16, 3, 2), {"pads": [1, 1, 1, 1]}),
    ((2, 16, 30, 29), (5, 16, 3, 3), {"pads": [1, 0, 1, 2], "dilations": [1, 2]}),
    ((1, 24, 20, 20), (6, 24, 5, 3), {"auto_pad": "SAME_UPPER"}),
]


@pytest.mark.parametrize("xs,ws,attrs", TAP_CASES, ids=[str(i) for i in range(len(TAP_CASES))])
def test_conv_as_shifted_gemms_matches_onnxruntime(xs, ws, attrs, monkeypatch):
    calls = _spy(monkeypatch, "gemm_sum", lambda a: len(a[1]))  # the taps
    x, w, b = random_tensor(xs, seed=1), random_tensor(ws, seed=2), random_tensor((ws[0],), seed=3)
    check("Conv", [x, w, b], attrs, opset=11, rtol=1e-4, atol=1e-5)
    # one job per image, summing one GEMM per kernel tap
    assert calls == [ws[2] * ws[3]] * xs[0]


WINOGRAD_CASES = [  # float32, group 1, 3x3, stride 1, no dilation, >= 196 output pixels per plane
    ((1, 16, 16, 15), (8, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 20, 15, 17), (33, 20, 3, 3), {"pads": [0, 2, 1, 0]}),  # odd sizes, asymmetric pads, batch 2
    ((1, 32, 14, 14), (64, 32, 3, 3), {"auto_pad": "SAME_UPPER"}),
    ((1, 3, 20, 20), (4, 3, 3, 3), {}),  # no padding, few channels
]


@pytest.mark.parametrize("xs,ws,attrs", WINOGRAD_CASES, ids=[str(i) for i in range(len(WINOGRAD_CASES))])
def test_conv_by_winograd_matches_onnxruntime(xs, ws, attrs, monkeypatch):
    calls = _spy(monkeypatch, "winograd3x3", lambda a: a[0].shape)
    x, w, b = random_tensor(xs, seed=21), random_tensor(ws, seed=22), random_tensor((ws[0],), seed=23)
    check("Conv", [x, w, b], attrs, opset=11, rtol=1e-4, atol=1e-5)
    assert calls == [xs[1:]] * xs[0]  # one job per image


def test_winograd_stays_within_its_scratch_budget(monkeypatch):
    calls = _spy(monkeypatch, "winograd3x3", lambda a: 1)
    x, w = random_tensor((1, 32, 40, 40), seed=24), random_tensor((32, 32, 3, 3), seed=25)
    want = conv.conv_core(x.astype(np.float64), w.astype(np.float64), 1, None, [1] * 4)
    tiles_bytes = 16 * 20 * 20 * (32 + 32) * 4  # 1.6 MB
    for budget, taken in ((tiles_bytes, [1]), (tiles_bytes - 1, [])):
        monkeypatch.setattr(conv, "WINOGRAD_MAX_SCRATCH", budget)
        calls.clear()
        np.testing.assert_allclose(conv.conv_core(x, w, 1, None, [1] * 4), want, rtol=1e-4, atol=1e-4)
        assert calls == taken


IM2COL_CASES = [  # float32, group 1; strided or < 16 channels, or < 2 output pixels per output channel
    ((1, 3, 23, 21), (8, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),  # a stem, odd sizes
    ((2, 16, 30, 29), (5, 16, 3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 2], "dilations": [1, 2]}),
    ((1, 4, 17, 19), (6, 4, 5, 1), {"strides": [3, 1], "pads": [2, 0, 1, 0]}),
    ((1, 5, 12, 12), (4, 5, 4, 4), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 6, 6), (3, 2, 3, 3), {"strides": [2, 2], "pads": [4, 4, 4, 4]}),  # whole rows of padding
    ((1, 3, 16, 16), (4, 3, 3, 3), {"dilations": [3, 3], "pads": [3, 3, 3, 3]}),
    ((1, 3, 9, 40), (4, 3, 2, 6), {"strides": [1, 3], "pads": [0, 5, 1, 0]}),  # pads wider than a stride
    # fewer pixels than twice the output channels: one shared im2col matrix, bands of channels
    ((1, 40, 7, 7), (64, 40, 3, 3), {"pads": [1, 1, 1, 1]}),  # ResNet's last stage, small
    ((2, 24, 14, 14), (160, 24, 3, 2), {"pads": [1, 1, 1, 0]}),  # where shifted GEMMs would run
    ((1, 20, 9, 9), (48, 20, 3, 3), {"strides": [2, 2], "pads": [1, 0, 0, 1], "dilations": [1, 2]}),
]


@pytest.mark.parametrize("xs,ws,attrs", IM2COL_CASES, ids=[str(i) for i in range(len(IM2COL_CASES))])
def test_conv_as_blocked_im2col_gemm_matches_onnxruntime(xs, ws, attrs, monkeypatch):
    from course.ops import _parallel

    calls = _spy(monkeypatch, "im2col_gemm", lambda a: a[0].shape)
    x, w, b = random_tensor(xs, seed=11), random_tensor(ws, seed=12), random_tensor((ws[0],), seed=13)
    with _parallel.recording() as jobs:
        check("Conv", [x, w, b], attrs, opset=11, rtol=1e-4, atol=1e-5)
    assert calls == [xs[1:]] * xs[0]  # one job per image
    pixels = np.prod(conv.output_shape(x, w, **attrs)[2:])
    assert [j.values[_parallel.IM2COL_AXIS] for j in jobs] == [0 if pixels < 2 * ws[0] else 1] * xs[0]


def test_conv_float64_shifted_gemms():
    x, w = random_tensor((1, 16, 15, 14), "float64", seed=4), random_tensor((4, 16, 3, 3), "float64", seed=5)
    got = conv.conv_core(x, w, 1, None, [1, 1, 1, 1])
    ref = np.zeros((1, 4, 15, 14))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(3):
        for j in range(3):
            ref += np.einsum("mc,nchw->nmhw", w[:, :, i, j], xp[:, :, i:i + 15, j:j + 14])
    assert got.dtype == np.float64 and got.flags.c_contiguous
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,kind", [((3, 2), "tap_major"), ((3, 3), "winograd")])
def test_rearranged_weights_follow_the_array_not_its_address(kernel, kind):
    x = random_tensor((1, 16, 14, 14), seed=6)
    w1, w2 = random_tensor((4, 16, *kernel), seed=7), random_tensor((4, 16, *kernel), seed=8)
    for w in (w1, w2):
        w.flags.writeable = False  # only read-only weights are kept rearranged
    y1 = conv.conv_core(x, w1, 1, None, [1] * 4)
    assert (id(w1), kind) in conv._DERIVED
    y2 = conv.conv_core(x, w2, 1, None, [1] * 4)
    assert not np.allclose(y1, y2)
    key = id(w1)
    del w1
    assert (key, kind) not in conv._DERIVED  # dropped with the weight
    writable = random_tensor((4, 16, *kernel), seed=9)
    y3 = conv.conv_core(x, writable, 1, None, [1] * 4)
    writable *= -1  # a writable weight is rearranged afresh on every call
    np.testing.assert_allclose(conv.conv_core(x, writable, 1, None, [1] * 4), -y3, rtol=1e-5, atol=1e-5)


def _conv_model(w: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[1], 14, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_session_snapshots_its_weights():
    w = random_tensor((4, 16, 3, 3), seed=10)
    x = random_tensor((1, 16, 14, 14), seed=11)
    graph = from_onnx(_conv_model(w))
    graph.initializers["w"].const_value = w  # a writable array the caller keeps
    sess = course.InferenceSession(graph)
    before = sess.run(None, {"x": x})[0]
    w[...] = 0  # the model's array, changed after construction
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], before)
    assert all(not a.flags.writeable for a in sess._plan.constants.values())


def test_feeding_an_overridable_weight_uses_the_fed_array():
    w = random_tensor((4, 16, 3, 3), seed=12)
    model = _conv_model(w)
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape)))
    sess = course.InferenceSession(model)
    x = random_tensor((1, 16, 14, 14), seed=13)
    a = sess.run(None, {"x": x})[0]
    b = sess.run(None, {"x": x, "w": -w})[0]
    np.testing.assert_allclose(b, -a, rtol=1e-5, atol=1e-5)


def test_maxpool_phase_path_matches_onnxruntime_on_resnet_pool():
    x = random_tensor((1, 8, 56, 56), seed=14)
    check("MaxPool", [x], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, opset=12)
    x[0, 0, 0, 0] = np.nan  # NaN propagates as np.maximum propagates it
    y = registry.lookup("MaxPool", 12).compute(x, kernel_shape=[3, 3], strides=[2, 2],
                                                          pads=[1, 1, 1, 1])
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1, 1])


MAXPOOL3 = [  # (x shape, attributes) of 3x3 pools the compiled kernel takes
    ((1, 8, 56, 56), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),  # ResNet's
    ((2, 5, 13, 11), {"strides": [2, 1], "pads": [0, 1, 2, 0]}),  # asymmetric pads, mixed strides
    ((1, 3, 9, 10), {"strides": [2, 2], "ceil_mode": 1}),  # last windows hang past the end
    ((1, 4, 12, 12), {"dilations": [2, 2], "pads": [1, 2, 1, 2]}),
    ((1, 6, 15, 15), {"strides": [3, 3], "auto_pad": "SAME_UPPER"}),
    ((1, 96, 55, 55), {"strides": [2, 2]}),  # SqueezeNet's, no padding
]


@pytest.mark.parametrize("shape,attrs", MAXPOOL3, ids=[str(i) for i in range(len(MAXPOOL3))])
def test_maxpool_3x3_compiled_kernel_same_bits_as_the_numpy_route(shape, attrs, monkeypatch):
    from course.ops import _fused_kernels as fk
    from course.ops import maxpool

    x = random_tensor(shape, seed=18)
    x[:, 2:, ::7, ::5] = np.nan  # NaN wins wherever it is, as with np.maximum
    x[0, 1, :5, :6] = -np.inf  # a window of -inf (and padding) is -inf, not some fill value
    calls = []
    real = fk.max_pool3x3
    monkeypatch.setattr(fk, "max_pool3x3", lambda *a: calls.append(1) or real(*a))
    full = {"kernel_shape": [3, 3], **attrs}
    op = registry.lookup("MaxPool", 12)
    y = op.compute(x, **full)
    k, s, d, out, pb, _, _ = maxpool.pool_setup(x, [3, 3], attrs.get("strides"), attrs.get("pads"),
                                                attrs.get("dilations"), attrs.get("auto_pad", "NOTSET"),
                                                attrs.get("ceil_mode", 0))
    want = maxpool._max_flat(x, k, s, d, pb, out)
    assert calls and y.shape == want.shape and y.flags.c_contiguous
    assert np.array_equal(y, want, equal_nan=True) and np.isnan(y).any() and np.isneginf(y).any()
    strided = np.concatenate([x, x], axis=3)[..., ::2]  # a non-contiguous input gives the same
    assert np.array_equal(op.compute(strided, **full), op.compute(np.ascontiguousarray(strided), **full),
                          equal_nan=True)
    clean = random_tensor(shape, seed=19)
    check("MaxPool", [clean], full, opset=12)
    if "dilations" not in attrs:
        check("MaxPool", [clean], full, opset=12, n_out=2, out_dtypes=[np.float32, np.int64])  # numpy route


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("strides,pads", [([1, 1], [1, 1, 1, 1]), ([2, 2], [1, 1, 1, 1]), ([2, 1], [0, 1, 2, 0])])
def test_depthwise_conv_runs_the_compiled_kernel_with_the_same_bits(dtype, strides, pads, monkeypatch):
    from course.ops import _fused_kernels as fk

    calls = []
    real = fk.depthwise_conv2d
    monkeypatch.setattr(fk, "depthwise_conv2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, w = random_tensor((2, 24, 13, 11), dtype, seed=15), random_tensor((24, 1, 3, 3), dtype, seed=16)
    b = random_tensor((24,), dtype, seed=17)
    y = registry.lookup("Conv", 11).compute(x, w, b, group=24, strides=strides, pads=pads)
    want = conv.conv_core(x, w, 24, strides, pads)  # numpy's route: one multiply-add per tap
    want += b.reshape(-1, 1, 1)
    assert calls and y.dtype == np.dtype(dtype) and y.flags.c_contiguous
    np.testing.assert_array_equal(y, want)
    check("Conv", [x.astype(np.float32), w.astype(np.float32), b.astype(np.float32)],
          {"group": 24, "strides": strides, "pads": pads}, opset=11, rtol=1e-4, atol=1e-5)
