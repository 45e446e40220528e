"""The CPU provider on the course.nhwc Conv and FusedConv that ToNHWC writes: it claims the
ones a channels-last route runs (1x1 stride 1, 3x3 depthwise), runs them on NHWC arrays without
a transpose or a copy, and matches the nhwc reference op within c * K * eps (K the reduction
length: no bit-equality across BLAS partitions); a whole MobileNetV2 rewritten by ToNHWC runs
its convolutions on the provider and matches onnxruntime."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from course.providers.cpu import CPUExecutionProvider, blas
from cpu_cases import F32, assert_close, frozen, reference, rng, spec_for

needs_blas = pytest.mark.skipif(not blas.available(), reason="numpy's BLAS is not OpenBLAS")
CPU = CPUExecutionProvider()
NHWC = "course.nhwc"


def _nhwc_spec(op_type, x, w, attrs, z=None, out=(1, 4, 4, 8), dtype=F32):
    """A course.nhwc node's spec from shapes (X and Z NHWC, W OIHW)."""
    from course.providers.base import NodeSpec

    shapes = [x, w, None] + ([z] if op_type == "FusedConv" else [])
    return NodeSpec("n", op_type, NHWC, 1, attrs, [None if s is None else (np.dtype(dtype), s) for s in shapes],
                    [(np.dtype(dtype), out)])


FUSED = {"group": 1, "activation": "Relu"}
CLAIMS = [  # (what, spec, claimed)
    ("pointwise", _nhwc_spec("Conv", (1, 4, 4, 8), (16, 8, 1, 1), {"group": 1}), True),
    ("pointwise, padded", _nhwc_spec("Conv", (1, 4, 4, 8), (16, 8, 1, 1), {"pads": [1, 0, 1, 0]}), True),
    ("pointwise, dynamic dims", _nhwc_spec("Conv", ("N", None, None, 8), (16, 8, 1, 1), {}), True),
    ("fused pointwise + residual", _nhwc_spec("FusedConv", (1, 4, 4, 8), (8, 8, 1, 1), FUSED, (1, 4, 4, 8)), True),
    ("depthwise 3x3, strided", _nhwc_spec("Conv", (1, 9, 9, 8), (8, 1, 3, 3), {"group": 8, "strides": [2, 2]}),
     True),
    ("fused depthwise", _nhwc_spec("FusedConv", (1, 9, 9, 8), (8, 1, 3, 3), {**FUSED, "group": 8}), True),
    ("broadcast residual", _nhwc_spec("FusedConv", (1, 4, 4, 8), (8, 8, 1, 1), FUSED, (1, 1, 1, 8)), False),
    ("residual shape unknown", _nhwc_spec("FusedConv", (1, 4, 4, 8), (8, 8, 1, 1), FUSED, None), True),
    ("strided pointwise", _nhwc_spec("Conv", (1, 8, 8, 8), (16, 8, 1, 1), {"strides": [2, 2]}), False),
    ("full 3x3", _nhwc_spec("Conv", (1, 9, 9, 8), (16, 8, 3, 3), {}), False),
    ("dilated depthwise", _nhwc_spec("Conv", (1, 9, 9, 8), (8, 1, 3, 3), {"group": 8, "dilations": [2, 2]}),
     False),
    ("depthwise, channels unknown", _nhwc_spec("Conv", (1, 9, 9, None), (8, 1, 3, 3), {"group": 8}), False),
    ("grouped 1x1", _nhwc_spec("Conv", (1, 4, 4, 8), (8, 4, 1, 1), {"group": 2}), False),
    ("float64", _nhwc_spec("Conv", (1, 4, 4, 8), (16, 8, 1, 1), {}, dtype=np.float64), False),
    ("weights unknown", _nhwc_spec("Conv", (1, 4, 4, 8), None, {}), False),
]


@pytest.mark.parametrize("what,spec,claimed", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_claims_the_nhwc_convs_a_channels_last_route_runs(what, spec, claimed):
    if what.startswith(("pointwise", "fused pointwise")) and not blas.available():
        claimed = False  # the 1x1 route calls BLAS
    assert CPU.claims(spec) is claimed
    assert CPU.tactics(spec) == [] and CPU.kernel_into(spec) is None  # one route, its own NHWC output


def test_a_residual_of_unknown_shape_is_not_claimed():
    spec = _nhwc_spec("FusedConv", (1, 4, 4, 8), (8, 8, 1, 1), FUSED, (1, 4, 4, 8))
    spec.inputs[3] = (F32, None)
    assert not CPU.claims(spec)


CASES = [  # (x NHWC, w, attrs, activation, params, residual)
    ((1, 13, 9, 40), (72, 40, 1, 1), {}, None, (), False),
    ((2, 7, 11, 24), (37, 24, 1, 1), {}, "Clip", (0.0, 6.0), True),
    ((1, 5, 6, 33), (16, 33, 1, 1), {"pads": [1, 0, 0, 2]}, "LeakyRelu", (0.1,), False),
    ((1, 15, 13, 72), (72, 1, 3, 3), {"group": 72, "pads": [1, 1, 1, 1]}, None, (), False),
    ((2, 14, 9, 96), (96, 1, 3, 3), {"group": 96, "strides": [2, 2], "pads": [1, 1, 1, 1]}, "Clip",
     (0.0, 6.0), False),
    ((1, 9, 8, 80), (80, 1, 3, 3), {"group": 80, "pads": [1, 1, 1, 1]}, "Relu", (), True),
    ((1, 7, 10, 17), (17, 1, 3, 3), {"group": 17, "strides": [1, 2], "auto_pad": "SAME_UPPER"}, "Identity",
     (), True),
]


def _case(i):
    """(spec, NHWC inputs, the nhwc reference's output) of CASES[i]."""
    xs, ws, attrs, activation, params, residual = CASES[i]
    g = rng(100 + i)
    x = g.standard_normal(xs, dtype=np.float32)
    w = frozen(g.standard_normal(ws, dtype=np.float32) / np.float32(np.sqrt(np.prod(ws[1:]))))
    b = frozen(g.standard_normal(ws[0], dtype=np.float32)) if i % 2 == 0 else None
    attrs = dict(attrs)
    op, inputs = "Conv", [x, w, b]
    if activation is not None:
        op = "FusedConv"
        attrs.update(activation=activation, activation_params=list(params))
        want_shape = reference(op, 1, NHWC, [x, w, b, None], attrs).shape
        inputs.append(g.standard_normal(want_shape, dtype=np.float32) if residual else None)
    want = reference(op, 1, NHWC, inputs, attrs)
    return spec_for(op, inputs, attrs, want.shape, 1, NHWC), inputs, want


def _is_route_output(y: np.ndarray) -> bool:
    """C-contiguous NHWC, and a view of the array the route wrote (its NCHW-shaped view over NHWC
    memory, transposed back): no copy made afterwards, which would own its data."""
    return (y.flags.c_contiguous and not y.flags.owndata and y.base is not None and y.base.size == y.size
            and np.shares_memory(y, y.base))


@needs_blas
@pytest.mark.parametrize("i", range(len(CASES)))
def test_nhwc_convs_match_the_reference_without_copies(i):
    spec, inputs, want = _case(i)
    assert CPU.claims(spec)
    kernel = CPU.kernel(spec)
    got = kernel(*inputs)
    assert _is_route_output(got)
    k = int(np.prod(inputs[1].shape[1:])) + 2
    assert_close(got, want, k)
    with CPU.running():  # shared with the helper thread; a replay the second time
        for _ in range(2):
            again = kernel(*inputs)
            assert _is_route_output(again)
            assert_close(again, want, k)


@needs_blas
@pytest.mark.parametrize("i", [1, 5])
def test_an_nhwc_input_that_is_a_transposed_view_is_still_right(i):
    """X (and Z) as a Transpose node may hand them over: NHWC views of NCHW arrays."""
    spec, inputs, want = _case(i)
    views = [None if v is None or v.ndim != 4 else np.ascontiguousarray(v.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
             for v in inputs]
    args = [v if v is not None else a for v, a in zip(views, inputs)]
    got = CPU.kernel(spec)(*args)
    assert got.flags.c_contiguous
    assert_close(got, want, int(np.prod(inputs[1].shape[1:])) + 2)


@needs_blas
def test_mobilenetv2_through_tonhwc_runs_its_convs_on_the_cpu_provider():
    import onnxruntime as ort

    import course
    from course.models import build_model
    from course.passes.pipeline import level_passes
    from course.passes.to_nhwc import ToNHWC

    m = build_model("mobilenetv2", image_size=40, width=0.5, num_classes=10)
    name = m.graph.input[0].name
    x = rng(7).standard_normal((1, 3, 40, 40), dtype=np.float32)
    session = course.InferenceSession(m, passes=level_passes("extended") + [ToNHWC()])
    where = session.assignment()
    convs = [n for n in session.graph.nodes if n.domain == NHWC and n.op_type in ("Conv", "FusedConv")]
    runs = Counter(where[n.name] for n in convs)
    assert runs["CPUExecutionProvider"] >= len(convs) - 1  # all but the stem's strided 3x3
    assert Counter(n.op_type for n in session.graph.nodes)["Transpose"] == 2
    got = session.run(None, {name: x})[0]
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {name: x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))
