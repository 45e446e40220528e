"""FusedConv's kernels against the two nodes it replaces (Conv, then the activation), on seeded
random geometries: awkward sizes, strides 1-3, dilations, uneven pads, with and without bias,
grouped, depthwise (the compiled 3x3 kernel) and not, for the reference op and for the CPU
provider's kernel (within c * K * eps: its sums run in another order)."""
from __future__ import annotations

import numpy as np
import pytest

from course.errors import EngineError, OpAttributeError
from course.ops.registry import lookup
from course.providers.cpu import CPUExecutionProvider
from cpu_cases import assert_close, spec_for

CONV = lookup("Conv", 17)
FUSED = lookup("FusedConv", 1, "course")
CPU = CPUExecutionProvider()
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
    checked = ours = 0
    while checked < 60:
        x, w, b, attrs = random_case(r)
        act = str(r.choice(list(ACTS)))
        params, standalone = ACTS[act]
        try:
            want = standalone(CONV.compute(x, w, b, **attrs))
        except EngineError:  # the window does not fit this input: not a case
            continue
        full = {**attrs, "activation": act, "activation_params": params}
        got = FUSED.compute(x, w, b, **full)
        assert_close(got, want, int(np.prod(w.shape[1:])) + 1, c=4)
        spec = spec_for("FusedConv", [x, w, b, None], full, want.shape, 1, "course")
        if CPU.claims(spec):
            ours += 1
            assert_close(CPU.kernel(spec)(x, w, b, None), want, int(np.prod(w.shape[1:])) + 1)
        checked += 1
    assert ours >= 30  # the compiled kernels were exercised, not only the reference


@pytest.mark.parametrize("case", ["depthwise-s1", "depthwise-s2", "depthwise+z", "dense+z", "dense",
                                  "pointwise", "pointwise+z", "pointwise-s2+z", "im2col+z"])
def test_provider_fused_conv_at_larger_sizes(case):
    """Batch 2, 24 channels, 95x91: many planes per call, the stride-2 de-interleaving with an
    odd width, the residual; 1x1 and im2col ones run the epilogue in the GEMM's bands."""
    r = np.random.default_rng(5)
    c = 24 if case != "im2col+z" else 3
    depthwise = case.startswith("depthwise")
    k = 1 if case.startswith("pointwise") else 3
    x = r.standard_normal((2, c, 95, 91)).astype(np.float32)
    w = r.standard_normal((c if c > 3 else 40, 1 if depthwise else c, k, k)).astype(np.float32)
    b = r.standard_normal(w.shape[0]).astype(np.float32)
    attrs = dict(group=c if depthwise else 1, pads=[1, 0, 1, 2], strides=[2, 2] if "s2" in case else [1, 1])
    y = CONV.compute(x, w, b, **attrs)
    z = r.standard_normal(y.shape).astype(np.float32) if case.endswith("+z") else None
    params, act = ACTS["Clip"]
    want = act(y + z if z is not None else y)
    full = {**attrs, "activation": "Clip", "activation_params": params}
    spec = spec_for("FusedConv", [x, w, b, z], full, want.shape, 1, "course")
    if not CPU.claims(spec):
        pytest.skip("no BLAS to call")
    assert_close(CPU.kernel(spec)(x, w, b, z), want, int(np.prod(w.shape[1:])) + 2)
    conv = spec_for("Conv", [x, w, b], attrs, y.shape, 11)
    assert_close(CPU.kernel(conv)(x, w, b), y, int(np.prod(w.shape[1:])) + 1)


@pytest.mark.parametrize("act, params", [("Gelu", []), ("Clip", [0.0]), ("Relu", [1.0])])
def test_fused_conv_rejects_unknown_activations(act, params):
    x, w = np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(OpAttributeError, match="activation"):
        FUSED.compute(x, w, activation=act, activation_params=params)
    spec = spec_for("FusedConv", [x, w, None, None], {"activation": act, "activation_params": params},
                    (1, 1, 3, 3), 1, "course")
    if CPU.claims(spec):
        with pytest.raises(OpAttributeError, match="activation"):
            CPU.kernel(spec)(x, w, None, None)


@pytest.mark.parametrize("group, k", [(1, 1), (1, 3), (3, 3)])
def test_conv_and_fused_conv_accept_an_empty_batch(group, k):
    x, w = np.zeros((0, 3, 5, 5), np.float32), np.ones((3, 3 // group, k, k), np.float32)
    b, out = np.ones(3, np.float32), (0, 3, 8 - k, 8 - k)
    z = np.zeros(out, np.float32)
    fused = {"activation": "Relu", "activation_params": [], "group": group, "pads": [1] * 4}
    kernels = [(CONV.compute, (x, w, b), {"group": group, "pads": [1] * 4}),
               (FUSED.compute, (x, w, b), fused), (FUSED.compute, (x, w, b, z), fused)]
    for op_type, inputs, attrs in (("Conv", [x, w, b], {"group": group, "pads": [1] * 4}),
                                   ("FusedConv", [x, w, b, z], fused)):
        spec = spec_for(op_type, inputs, attrs, out, 11 if op_type == "Conv" else 1,
                        "" if op_type == "Conv" else "course")
        if CPU.claims(spec):
            kernels.append((CPU.kernel(spec), tuple(inputs), {}))
    for fn, inputs, attrs in kernels:
        got = fn(*inputs, **attrs)
        assert got.shape == out and got.dtype == np.float32
