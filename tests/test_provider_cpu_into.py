"""CPUExecutionProvider, issue 18's additions: FusedGemm and MatMul through the provider's Gemm
path, BatchNormalization as one compiled pass, and destination passing (``kernel_into``) for the
convolutions, Gemms, pools and BN. Each kernel is compared with the reference op on seeded random
inputs at several shapes (awkward ones included) within c * K * eps (K the reduction length:
BLAS may sum in any order); ``kernel_into`` must write the very array it is handed and equal
``kernel``'s result within the same tolerance (the two may take different BLAS partitions)."""
from __future__ import annotations

import numpy as np
import pytest

from course.providers.cpu import CPUExecutionProvider, blas
from cpu_cases import assert_close, channels_last, conv_spec, frozen, reference, rng, spec_for

needs_blas = pytest.mark.skipif(not blas.available(), reason="numpy's BLAS is not OpenBLAS")
CPU = CPUExecutionProvider()
ACTS = [("Relu", ()), ("Clip", (-0.5, 0.75)), ("LeakyRelu", (0.1,)), ("Sigmoid", ()), ("Tanh", ())]


def _into(spec, inputs, shape):
    """Run ``kernel_into`` on a fresh C-contiguous output; returns that array."""
    into = CPU.kernel_into(spec)
    assert into is not None
    out = np.full(shape, np.nan, dtype=np.float32)
    view = out
    into(*inputs, out=(view,))
    return out


def _fused_gemm_case(seed, m, k, n, act, params, trans_b=1, c_shape="row", alpha=1.0, beta=1.0):
    r = rng(seed)
    a = r.standard_normal((m, k)).astype(np.float32)
    b = frozen(r.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32))
    c = {"row": (n,), "full": (m, n), None: None}[c_shape]
    c = None if c is None else frozen(r.standard_normal(c).astype(np.float32))
    attrs = {"transB": trans_b, "alpha": alpha, "beta": beta, "activation": act, "activation_params": list(params)}
    want = reference("FusedGemm", 1, "course", [a, b, c], attrs)
    return spec_for("FusedGemm", [a, b, c], attrs, want.shape, 1, "course"), [a, b, c], want


@needs_blas
@pytest.mark.parametrize("act,params", ACTS, ids=[a for a, _ in ACTS])
@pytest.mark.parametrize("m,k,n,trans_b,c_shape,alpha,beta", [
    (1, 4096, 1000, 1, "row", 1.0, 1.0), (64, 513, 257, 1, "row", 1.0, 1.0), (7, 300, 1001, 0, "full", 1.0, 1.0),
    (33, 129, 95, 1, None, 1.0, 1.0), (5, 1000, 333, 0, "row", 0.5, 2.0)])
def test_fused_gemm_matches_the_reference(act, params, m, k, n, trans_b, c_shape, alpha, beta):
    spec, inputs, want = _fused_gemm_case(m + n, m, k, n, act, params, trans_b, c_shape, alpha, beta)
    assert CPU.claims(spec)
    got = CPU.kernel(spec)(*inputs)
    assert_close(got, want, k + 2)
    with CPU.running():  # both threads
        assert_close(CPU.kernel(spec)(*inputs), want, k + 2)
        out = _into(spec, inputs, want.shape)
    assert_close(out, got, k + 2)


def test_fused_gemm_claims():
    spec, _, _ = _fused_gemm_case(0, 64, 256, 300, "Relu", ())
    assert CPU.claims(spec) == blas.available()
    small, _, _ = _fused_gemm_case(0, 1, 16, 10, "Relu", ())
    assert not CPU.claims(small)  # below GEMM_MIN_MACS: the reference is quicker
    assert CPU.tactics(spec)[0] == "bands"


@needs_blas
@pytest.mark.parametrize("m,k,n", [(1, 1280, 1000), (33, 700, 517), (64, 257, 129)])
def test_matmul_matches_the_reference(m, k, n):
    r = rng(m)
    a = r.standard_normal((m, k)).astype(np.float32)
    b = frozen(r.standard_normal((k, n)).astype(np.float32))
    want = reference("MatMul", 13, "", [a, b], {})
    spec = spec_for("MatMul", [a, b], {}, want.shape)
    assert CPU.claims(spec)
    assert_close(CPU.kernel(spec)(a, b), want, k)
    assert_close(_into(spec, [a, b], want.shape), want, k)
    three = spec_for("MatMul", [a[None], b], {}, (1,) + want.shape)
    assert not CPU.claims(three)  # batched MatMul stays on the reference


@pytest.mark.parametrize("shape", [(1, 7, 5, 3), (2, 33, 17, 19), (1, 128, 28, 28), (3, 5)])
def test_batch_norm_is_the_reference_bit_for_bit(shape):
    r = rng(sum(shape))
    x = r.standard_normal(shape).astype(np.float32)
    c = shape[1]
    ws = [frozen(r.standard_normal(c).astype(np.float32)) for _ in range(3)]
    ws.append(frozen((np.abs(r.standard_normal(c)) + 0.1).astype(np.float32)))
    want = reference("BatchNormalization", 15, "", [x, *ws], {"epsilon": 1e-3})
    spec = spec_for("BatchNormalization", [x, *ws], {"epsilon": 1e-3}, want.shape, 15, consts=(1, 2, 3, 4))
    assert CPU.claims(spec)
    kernel = CPU.kernel(spec)
    with CPU.running():
        assert np.array_equal(kernel(x, *ws), want)  # same folding, one product then one add
        assert np.array_equal(kernel(x, *ws), want)  # the folded weights kept
        assert np.array_equal(_into(spec, [x, *ws], want.shape), want)
        inplace = x.copy()  # the arena may hand BN its dying input's bytes
        CPU.kernel_into(spec)(inplace, *ws, out=(inplace,))
    assert np.array_equal(inplace, want)
    assert np.array_equal(kernel(channels_last(x) if x.ndim == 4 else x, *ws), want)  # any layout


CONV_INTO = {  # name: (x shape, w shape, attrs, fused); the route each takes is in the name
    "pointwise": ((1, 32, 14, 14), (48, 32, 1, 1), {}, True),
    "winograd": ((1, 16, 20, 20), (24, 16, 3, 3), {"pads": [1, 1, 1, 1]}, True),
    "im2col": ((1, 8, 15, 15), (16, 8, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}, False),
    "taps": ((1, 32, 17, 17), (16, 32, 3, 3), {"pads": [1, 1, 1, 1]}, True),
    "taps-cropped": ((1, 32, 17, 17), (16, 32, 3, 3), {}, False),
    "depthwise": ((1, 24, 13, 13), (24, 1, 3, 3), {"group": 24, "pads": [1, 1, 1, 1]}, True),
    "batch of two": ((2, 64, 20, 20), (72, 64, 3, 3), {"pads": [1, 1, 1, 1]}, False),
}


@needs_blas
@pytest.mark.parametrize("name", list(CONV_INTO))
def test_conv_into_writes_the_view_it_is_handed(name):
    xs, ws, attrs, fused = CONV_INTO[name]
    r = rng(len(name))
    x = r.standard_normal(xs).astype(np.float32)
    w = frozen(r.standard_normal(ws).astype(np.float32))
    b = frozen(r.standard_normal(ws[0]).astype(np.float32))
    spec, inputs, want = conv_spec(x, w, b, None, attrs, "Relu" if fused else None)
    k = ws[1] * ws[2] * ws[3] + 2
    arena = np.full(want.size + 37, np.nan, dtype=np.float32)  # a view into a bigger buffer
    view = arena[5:5 + want.size].reshape(want.shape)
    into = CPU.kernel_into(spec)
    with CPU.running():
        for _ in range(2):  # the second call replays the first one's job
            view.fill(np.nan)
            into(*inputs, out=(view,))
            assert_close(view, want, k)
            assert np.shares_memory(view, arena)
    assert np.isnan(arena[:5]).all() and np.isnan(arena[5 + want.size:]).all()  # nothing outside
    assert_close(view, CPU.kernel(spec)(*inputs), k)


def test_no_into_where_the_kernel_would_need_a_copy():
    r = rng(3)
    x = r.standard_normal((1, 64, 8, 8)).astype(np.float32)
    w = frozen(r.standard_normal((64, 64, 1, 1)).astype(np.float32))
    spec, _, _ = conv_spec(x, w, marks={"layout": "NHWC"})
    assert CPU.kernel_into(spec) is None  # it writes an NHWC array
    spec, _, _ = conv_spec(x, w, marks={"tactic": "reference"})
    assert CPU.kernel_into(spec) is None  # the reference allocates its own
    grouped, _, _ = conv_spec(x, frozen(r.standard_normal((64, 32, 1, 1)).astype(np.float32)), attrs={"group": 2})
    assert CPU.kernel_into(grouped) is None  # not claimed


@pytest.mark.parametrize("op,kernel_shape,attrs", [
    ("MaxPool", [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}), ("MaxPool", [2, 2], {"strides": [2, 2]}),
    ("AveragePool", [2, 2], {"strides": [2, 2]}), ("AveragePool", [3, 3], {"pads": [1, 1, 1, 1]})])
def test_pools_into_equal_the_reference(op, kernel_shape, attrs):
    x = rng(4).standard_normal((1, 5, 13, 11)).astype(np.float32)
    attrs = {"kernel_shape": kernel_shape, **attrs}
    if op == "MaxPool":
        attrs["_num_outputs"] = 1
    want = reference(op, 12 if op == "MaxPool" else 11, "", [x], attrs)
    spec = spec_for(op, [x], attrs, want.shape, 12 if op == "MaxPool" else 11)
    assert CPU.claims(spec)
    with CPU.running():
        got = _into(spec, [x], want.shape)
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(np.float32).eps, atol=1e-6)
    assert np.array_equal(got, CPU.kernel(spec)(x))
