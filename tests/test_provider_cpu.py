"""CPUExecutionProvider: what it claims, and each of its kernels against the reference op on
seeded random inputs (awkward sizes included), route by route. Sums taken in another order than
the reference's are compared within c * K * eps (K the reduction length); results our own code
orders (max pooling, the two layouts of the depthwise kernel) are compared bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from course.providers.cpu import CPUExecutionProvider
from course.providers.cpu import blas
from cpu_cases import (F32, assert_close, channels_last, conv_spec, frozen, is_channels_last, reference, rng,
                       spec_for)

needs_blas = pytest.mark.skipif(not blas.available(), reason="numpy's BLAS is not OpenBLAS")
CPU = CPUExecutionProvider()


def _spec(op_type, shapes, attrs, domain="", dtype=F32, outputs=1):
    from course.providers.base import NodeSpec

    return NodeSpec("n", op_type, domain, 1 if domain else 13, attrs,
                    [None if s is None else (np.dtype(dtype), s) for s in shapes],
                    [(np.dtype(dtype), (1, 8, 4, 4))] * outputs)


CLAIMS = [  # (what, spec, claimed)
    ("float32 conv", _spec("Conv", [(1, 8, 9, 9), (16, 8, 3, 3), (16,)], {"group": 1}), True),
    ("dynamic batch and size", _spec("Conv", [("N", 8, None, None), (16, 8, 1, 1)], {"group": 1}), True),
    ("depthwise 3x3", _spec("Conv", [(1, 8, 9, 9), (8, 1, 3, 3)], {"group": 8}), True),
    ("fused conv", _spec("FusedConv", [(1, 8, 4, 4), (8, 8, 1, 1), None, (1, 8, 4, 4)],
                         {"group": 1, "activation": "Relu"}, "course"), True),
    ("fused conv, broadcast residual", _spec("FusedConv", [(1, 8, 4, 4), (8, 8, 1, 1), None, (1, 8, 1, 1)],
                                             {"group": 1, "activation": "Relu"}, "course"), False),
    ("float64 conv", _spec("Conv", [(1, 8, 9, 9), (16, 8, 3, 3)], {"group": 1}, dtype=np.float64), False),
    ("grouped conv", _spec("Conv", [(1, 8, 9, 9), (16, 4, 3, 3)], {"group": 2}), False),
    ("depthwise 5x5", _spec("Conv", [(1, 8, 9, 9), (8, 1, 5, 5)], {"group": 8}), False),
    ("1-d conv", _spec("Conv", [(1, 8, 9), (16, 8, 3)], {"group": 1}), False),
    ("weight shape unknown", _spec("Conv", [(1, 8, 9, 9), None], {"group": 1}), False),
    ("3x3 max pool", _spec("MaxPool", [(1, 8, 9, 9)], {"kernel_shape": [3, 3], "_num_outputs": 1}), True),
    ("2x2 max pool", _spec("MaxPool", [(1, 8, 9, 9)], {"kernel_shape": [2, 2], "_num_outputs": 1}), True),
    ("max pool with indices", _spec("MaxPool", [(1, 8, 9, 9)], {"kernel_shape": [3, 3], "_num_outputs": 2},
                                    outputs=2), False),
    ("classifier head", _spec("Gemm", [(1, 1280), (1000, 1280), (1000,)], {"transB": 1}), True),
    ("head, dynamic batch", _spec("Gemm", [("N", 1280), (1280, 1000)], {}), True),
    ("small gemm", _spec("Gemm", [(1, 64), (64, 10)], {}), False),
    ("relu", _spec("Relu", [(1, 8, 4, 4)], {}), False),
    ("custom domain op", _spec("Conv", [(1, 8, 9, 9), (16, 8, 3, 3)], {"group": 1}, domain="mine"), False),
]


@pytest.mark.parametrize("what,spec,claimed", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_claims_what_it_accelerates_and_nothing_else(what, spec, claimed):
    needs = spec.op_type in ("Gemm",) or (spec.op_type in ("Conv", "FusedConv") and spec.attrs.get("group") == 1)
    if needs and claimed and not blas.available():
        claimed = False
    assert CPU.claims(spec) is claimed


def _conv_case(seed, xs, ws, attrs, bias=True, residual=False, activation="Clip", params=(-0.5, 1.5), last_in=False):
    r = rng(seed)
    x = r.standard_normal(xs).astype(np.float32)
    w = frozen(r.standard_normal(ws).astype(np.float32))
    b = frozen(r.standard_normal(ws[0]).astype(np.float32)) if bias else None
    z = None
    if residual:
        shape = reference("Conv", 11, "", [x, w, None], attrs).shape
        z = r.standard_normal(shape).astype(np.float32)
    if last_in:
        x = channels_last(x)
    return conv_spec(x, w, b, z, attrs, activation, params)


ROUTE_CASES = {  # route: [(x shape, w shape, attributes)], awkward sizes first
    "winograd": [((1, 16, 16, 15), (8, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
                 ((2, 5, 15, 17), (33, 5, 3, 3), {"pads": [0, 2, 1, 0]}),
                 ((1, 3, 20, 20), (4, 3, 3, 3), {})],
    "im2col": [((1, 3, 23, 21), (8, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
               ((2, 16, 30, 29), (5, 16, 3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 2], "dilations": [1, 2]}),
               ((1, 5, 12, 12), (4, 5, 4, 4), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
               ((1, 2, 6, 6), (3, 2, 3, 3), {"strides": [2, 2], "pads": [4, 4, 4, 4]}),
               ((1, 40, 7, 7), (64, 40, 3, 3), {"pads": [1, 1, 1, 1]}),  # few pixels: shared matrix
               ((1, 20, 9, 9), (48, 20, 3, 3), {"strides": [2, 2], "pads": [1, 0, 0, 1], "dilations": [1, 2]}),
               ((1, 8, 5, 6), (16, 8, 1, 1), {"strides": [2, 2]})],
    "taps": [((1, 16, 16, 15), (8, 16, 3, 2), {"pads": [1, 1, 1, 1]}),
             ((2, 16, 30, 29), (5, 16, 3, 3), {"pads": [1, 0, 1, 2], "dilations": [1, 2]}),
             ((1, 24, 20, 20), (6, 24, 5, 3), {"auto_pad": "SAME_UPPER"})],
    "pointwise": [((1, 24, 9, 7), (40, 24, 1, 1), {}), ((2, 17, 5, 3), (9, 17, 1, 1), {}),
                  ((1, 16, 15, 15), (8, 16, 1, 1), {"pads": [1, 0, 0, 1]})],
    "depthwise": [((2, 24, 13, 11), (24, 1, 3, 3), {"group": 24, "strides": [2, 1], "pads": [0, 1, 2, 0]}),
                  ((1, 5, 9, 40), (5, 1, 3, 3), {"group": 5, "dilations": [2, 1], "pads": [1, 1, 1, 1]}),
                  ((1, 80, 7, 7), (80, 1, 3, 3), {"group": 80, "auto_pad": "SAME_UPPER", "strides": [2, 2]})],
}


@pytest.fixture(autouse=True)
def _routes_for_small_batches(monkeypatch):
    """The cases below are small images at batch 2, which the provider hands to the reference
    (routes.BATCHED_MIN_MACS); here every route takes them, so each route runs with N > 1."""
    from course.providers.cpu import routes

    monkeypatch.setattr(routes, "BATCHED_MIN_MACS", 0)


def test_a_batch_of_small_images_goes_to_the_reference(monkeypatch):
    from course.providers.cpu import routes
    from course.providers.cpu.geometry import window_of

    monkeypatch.setattr(routes, "BATCHED_MIN_MACS", 1 << 22)
    win = window_of((8, 8), (3, 3), {"pads": [1, 1, 1, 1]})
    small = dict(c=16, m=32, group=1, w_shape=(32, 16, 3, 3), win=win, blas=True)
    assert routes.conv_route(routes.ConvCase(**small, n=450)) == "reference"  # the digits CNN's conv2
    assert routes.conv_route(routes.ConvCase(**small, n=1)) != "reference"
    big = window_of((56, 56), (3, 3), {"pads": [1, 1, 1, 1]})
    assert routes.conv_route(routes.ConvCase(64, 64, 1, (64, 64, 3, 3), big, True, n=2)) == "winograd"


def _route(spec, inputs):
    from course.providers.cpu.geometry import window_of
    from course.providers.cpu.routes import ConvCase, conv_route

    x, w = inputs[0], inputs[1]
    win = window_of(x.shape[2:], w.shape[2:], spec.attrs)
    return conv_route(ConvCase(x.shape[1], w.shape[0], spec.attrs.get("group", 1), w.shape, win, blas.available(),
                               n=x.shape[0]))


def _k(w, group=1):
    return int(np.prod(w.shape[1:]))


@needs_blas
@pytest.mark.parametrize("route,i", [(r, i) for r, cases in ROUTE_CASES.items() for i in range(len(cases))])
@pytest.mark.parametrize("variant", ["conv", "fused+residual", "fused, no bias"])
def test_conv_routes_match_the_reference(route, i, variant):
    xs, ws, attrs = ROUTE_CASES[route][i]
    if variant == "conv":
        spec, inputs, want = _conv_case(i, xs, ws, attrs, activation=None)
    else:
        spec, inputs, want = _conv_case(i, xs, ws, attrs, bias=variant == "fused+residual",
                                        residual=variant == "fused+residual",
                                        activation="LeakyRelu" if i % 2 else "Clip",
                                        params=(0.1,) if i % 2 else (-0.5, 1.5))
    assert CPU.claims(spec) and _route(spec, inputs) == route
    kernel = CPU.kernel(spec)
    got = kernel(*inputs[:len(spec.inputs)])
    assert_close(got, want, _k(inputs[1]) + 2)
    with CPU.running():  # shared with the helper thread; a replay the second time
        for _ in range(2):
            assert_close(kernel(*inputs[:len(spec.inputs)]), want, _k(inputs[1]) + 2)


@needs_blas
def test_conv_takes_an_empty_batch_and_channels_last_input():
    spec, inputs, want = _conv_case(3, (1, 16, 16, 15), (8, 16, 3, 3), {"pads": [1, 1, 1, 1]}, last_in=True)
    assert_close(CPU.kernel(spec)(*inputs), want, 16 * 9 + 2)
    x0 = np.zeros((0, 16, 16, 15), np.float32)
    y0 = CPU.kernel(spec)(x0, *inputs[1:])
    assert y0.shape == (0, 8, 16, 15) and y0.dtype == np.float32


def test_what_the_routes_do_not_take_goes_to_the_reference():
    """A Z that broadcasts, float64 operands fed to a float32 node: the reference's answer."""
    spec, inputs, _ = _conv_case(4, (1, 8, 6, 6), (8, 8, 1, 1), {}, residual=True)
    x, w, b, z = inputs
    z1 = z[:, :, :1, :1].copy()
    want = reference("FusedConv", 1, "course", [x, w, b, z1], spec.attrs)
    np.testing.assert_array_equal(CPU.kernel(spec)(x, w, b, z1), want)
    x64, w64 = x.astype(np.float64), np.asarray(w, np.float64)
    want64 = reference("FusedConv", 1, "course", [x64, w64, None, None], spec.attrs)
    got64 = CPU.kernel(spec)(x64, w64, None, None)
    assert got64.dtype == np.float64
    np.testing.assert_array_equal(got64, want64)


def test_depthwise_is_the_same_in_either_layout_bit_for_bit():
    """The NCHW and channels-last depthwise kernels add the same products in the same order."""
    for seed, (xs, attrs) in enumerate([((2, 80, 9, 12), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
                                        ((1, 144, 14, 14), {"strides": [2, 1], "pads": [0, 2, 1, 0]}),
                                        ((1, 72, 5, 7), {"strides": [1, 2], "auto_pad": "SAME_LOWER"})]):
        c = xs[1]
        attrs = {**attrs, "group": c}
        spec, inputs, want = _conv_case(seed, xs, (c, 1, 3, 3), attrs)
        x = inputs[0]
        x[:, :, ::3] = 0.0  # exact zeros, as after a ReLU: the padding taps must still add 0 * w
        want = reference("FusedConv", 1, "course", inputs, spec.attrs)
        kernel = CPU.kernel(spec)
        planes = kernel(*inputs)
        pixels = kernel(channels_last(x), *inputs[1:])
        assert planes.flags.c_contiguous and is_channels_last(pixels)
        assert np.array_equal(planes, pixels)
        assert_close(planes, want, 9 + 2)


@needs_blas
@pytest.mark.parametrize("layout_in", ["nchw", "last"])
@pytest.mark.parametrize("residual", [None, "nchw", "last"])
def test_a_pointwise_conv_marked_nhwc_writes_channels_last(layout_in, residual):
    spec, inputs, want = _conv_case(5, (2, 40, 9, 13), (72, 40, 1, 1), {}, residual=residual is not None,
                                    last_in=layout_in == "last")
    spec.marks = {"layout": "NHWC"}
    x, w, b, z = inputs
    if residual == "last":
        z = channels_last(z)
    got = CPU.kernel(spec)(x, w, b, z)
    assert is_channels_last(got)
    assert_close(got, want, 40 + 2)
    spec.marks = {}
    nchw = CPU.kernel(spec)(x, w, b, z)
    assert nchw.flags.c_contiguous
    assert_close(nchw, want, 40 + 2)


MAXPOOLS = [  # (x shape, attributes) of 3x3 pools
    ((1, 8, 56, 56), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((2, 5, 13, 11), {"strides": [2, 1], "pads": [0, 1, 2, 0]}),
    ((1, 3, 9, 10), {"strides": [2, 2], "ceil_mode": 1}),
    ((1, 4, 12, 12), {"dilations": [2, 2], "pads": [1, 2, 1, 2]}),
    ((1, 6, 15, 15), {"strides": [3, 3], "auto_pad": "SAME_UPPER"}),
    ((1, 96, 55, 55), {"strides": [2, 2]}),
]


@pytest.mark.parametrize("shape,attrs", MAXPOOLS, ids=[str(i) for i in range(len(MAXPOOLS))])
def test_max_pool_3x3_gives_the_reference_bits(shape, attrs):
    x = rng(18).standard_normal(shape).astype(np.float32)
    x[:, 2:, ::7, ::5] = np.nan  # NaN wins wherever it is, as with np.maximum
    x[0, 1, :5, :6] = -np.inf  # a window of -inf (and padding) is -inf
    full = {"kernel_shape": [3, 3], "auto_pad": "NOTSET", "ceil_mode": 0, "dilations": None, "pads": None,
            "storage_order": 0, "strides": None, **attrs, "_num_outputs": 1}
    want = reference("MaxPool", 12, "", [x], full)
    spec = spec_for("MaxPool", [x], full, want.shape, 12)
    assert CPU.claims(spec)
    kernel = CPU.kernel(spec)
    got = kernel(x)
    assert got.flags.c_contiguous and np.array_equal(got, want, equal_nan=True)
    strided = np.repeat(x, 2, axis=3)[..., ::2]  # the same values, every other column of memory
    with CPU.running():
        assert np.array_equal(kernel(strided), want, equal_nan=True)
        assert np.array_equal(kernel(channels_last(x)), want, equal_nan=True)


@needs_blas
@pytest.mark.parametrize("m,trans_a,trans_b,c_shape", [(1, 0, 1, (1000,)), (3, 0, 1, (1, 1000)), (5, 1, 0, (5, 1000)),
                                                      (2, 0, 0, (2, 1)), (4, 1, 1, None), (1, 0, 0, None)])
def test_gemm_matches_the_reference(m, trans_a, trans_b, c_shape):
    r = rng(6)
    k, n = 1280, 1000
    a = r.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = frozen(r.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32))
    c = None if c_shape is None else frozen(r.standard_normal(c_shape).astype(np.float32))
    for alpha, beta in ((1.0, 1.0), (0.5, 2.0)):
        attrs = {"alpha": alpha, "beta": beta, "transA": trans_a, "transB": trans_b}
        want = reference("Gemm", 13, "", [a, b, c], attrs)
        spec = spec_for("Gemm", [a, b, c], attrs, want.shape)
        assert CPU.claims(spec)
        kernel = CPU.kernel(spec)
        got = kernel(a, b, c)
        assert got.flags.c_contiguous
        assert_close(got, want, k + 2)
        with CPU.running():
            assert_close(kernel(a, b, c), want, k + 2)
    small = a[:1, :64] if not trans_a else a[:64, :1]
    np.testing.assert_array_equal(kernel(small, b[:64] if not trans_b else b[:, :64], None),
                                  reference("Gemm", 13, "", [small, b[:64] if not trans_b else b[:, :64], None],
                                            attrs))
