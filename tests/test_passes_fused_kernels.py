"""FusedConv's kernel against the two kernels it replaces (Conv, then the activation), on seeded
random geometries: awkward sizes, strides 1-3, dilations, uneven pads, with and without bias,
grouped, depthwise (the compiled 3x3 path) and not. Same arithmetic, so equality is exact."""
from __future__ import annotations

import numpy as np
import pytest

from course.errors import OpAttributeError, ShapeError
from course.ops.registry import lookup

CONV = lookup("Conv", 17)
FUSED = lookup("FusedConv", 1, "course")
ACTS = {"Relu": ([], lookup("Relu", 17).compute),
        "Clip": ([-0.5, 1.25], lambda y: lookup("Clip", 17).compute(y, np.float32(-0.5), np.float32(1.25))),
        "LeakyRelu": ([0.1], lambda y: lookup("LeakyRelu", 17).compute(y, alpha=0.1))}


def random_case(r: np.random.Generator):
    depthwise = r.random() < 0.6
    c = int(r.integers(1, 6))
    group = c if depthwise else int(r.choice([1, c]))
    m = c if depthwise else group * int(r.integers(1, 4))
    k = 3 if depthwise or r.random() < 0.5 else int(r.integers(1, 4))
    attrs = dict(group=group, strides=[int(v) for v in r.integers(1, 4, 2)],
                 dilations=[int(v) for v in r.integers(1, 3, 2)], pads=[int(v) for v in r.integers(0, 3, 4)])
    n, height, width = int(r.integers(1, 3)), int(r.integers(1, 14)), int(r.integers(1, 14))
    x = r.standard_normal((n, c, height, width)).astype(np.float32)
    w = r.standard_normal((m, c // group, k, k)).astype(np.float32)
    b = r.standard_normal(m).astype(np.float32) if r.random() < 0.7 else None
    return x, w, b, attrs


def test_fused_conv_equals_conv_then_activation_on_random_geometries():
    r = np.random.default_rng(2024)
    checked = depthwise = 0
    while checked < 60:
        x, w, b, attrs = random_case(r)
        act = str(r.choice(list(ACTS)))
        params, standalone = ACTS[act]
        try:
            want = standalone(CONV.compute(x, w, b, **attrs))
        except ShapeError:  # the window does not fit this input: not a case
            continue
        got = FUSED.compute(x, w, b, activation=act, activation_params=params, **attrs)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=f"{act} {attrs} x{x.shape} w{w.shape} b={b is not None}")
        checked += 1
        depthwise += attrs["group"] == x.shape[1] == w.shape[0] and w.shape[2:] == (3, 3)
    assert depthwise >= 20  # the compiled path was exercised, not only the numpy one


def test_fused_conv_output_is_fresh_and_inputs_untouched():
    r = np.random.default_rng(1)
    for group in (1, 4):
        x = r.standard_normal((1, 4, 6, 6)).astype(np.float32)
        w = r.standard_normal((4, 4 // group, 3, 3)).astype(np.float32)
        b = r.standard_normal(4).astype(np.float32)
        copies = [a.copy() for a in (x, w, b)]
        y = FUSED.compute(x, w, b, activation="Relu", activation_params=[], group=group, pads=[1] * 4)
        assert not any(np.shares_memory(y, a) for a in (x, w, b))
        for a, c in zip((x, w, b), copies):
            np.testing.assert_array_equal(a, c)
        assert (y >= 0).all() and (y > 0).any()


@pytest.mark.parametrize("act, params", [("Gelu", []), ("Clip", [0.0]), ("Relu", [1.0])])
def test_fused_conv_rejects_unknown_activations(act, params):
    x, w = np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(OpAttributeError, match="activation"):
        FUSED.compute(x, w, activation=act, activation_params=params)


# --- sizes like MobileNet's, where the compiled kernels do real work -----------------------------
ADD = lookup("Add", 14).compute


@pytest.mark.parametrize("case", ["depthwise-s1", "depthwise-s2", "depthwise+z", "dense+z", "dense",
                                  "pointwise", "pointwise+z", "pointwise-s2+z", "im2col+z"])
def test_fused_conv_is_bit_exact_at_larger_sizes(case):
    """Batch 2, 24 channels, 95x91: many planes per call (a plane/bias index mix-up shows), the
    stride-2 de-interleaving with an odd width, and the residual input Z. 1x1 and im2col ones run
    the epilogue inside the GEMM's bands (several column blocks per thread at this size); the
    expected value is the plain convolution, then numpy's bias add, Add and Clip."""
    r = np.random.default_rng(5)
    c = 24 if case != "im2col+z" else 3
    depthwise = case.startswith("depthwise")
    k = 1 if case.startswith("pointwise") else 3
    x = r.standard_normal((2, c, 95, 91)).astype(np.float32)
    w = r.standard_normal((c if c > 3 else 40, 1 if depthwise else c, k, k)).astype(np.float32)
    b = r.standard_normal(w.shape[0]).astype(np.float32)
    attrs = dict(group=c if depthwise else 1, pads=[1, 0, 1, 2], strides=[2, 2] if "s2" in case else [1, 1])
    y = CONV.compute(x, w, None, **attrs) + b[:, None, None]
    z = r.standard_normal(y.shape).astype(np.float32) if case.endswith("+z") else None
    params, act = ACTS["Clip"]
    want = act(ADD(y, z) if z is not None else y)
    got = FUSED.compute(x, w, b, z, activation="Clip", activation_params=params, **attrs)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(CONV.compute(x, w, b, **attrs), y)  # Conv's bias, also in the bands


@pytest.mark.parametrize("group, k", [(1, 1), (1, 3), (3, 3)])
def test_conv_and_fused_conv_accept_an_empty_batch(group, k):
    x, w = np.zeros((0, 3, 5, 5), np.float32), np.ones((3, 3 // group, k, k), np.float32)
    b, out = np.ones(3, np.float32), (0, 3, 8 - k, 8 - k)
    z = np.zeros(out, np.float32)
    for got in (CONV.compute(x, w, b, group=group, pads=[1] * 4),
                FUSED.compute(x, w, b, activation="Relu", activation_params=[], group=group, pads=[1] * 4),
                FUSED.compute(x, w, b, z, activation="Relu", activation_params=[], group=group, pads=[1] * 4)):
        assert got.shape == out and got.dtype == np.float32
