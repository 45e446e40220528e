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
