"""PreparedConv: a convolution kernel replays the job of its last call with new addresses. A
replay must give the general path's bits (the same job, our chunks) for every input it accepts,
and must take the general path whenever the inputs differ from what the job was made for:
another weight or bias array, another shape, dtype or layout of X or Z. Each test checks the
values and that the route it is about was really taken."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from course.providers.cpu import CPUExecutionProvider, blas
from cpu_cases import channels_last, conv_spec, frozen, is_channels_last, rng

pytestmark = pytest.mark.skipif(not blas.available(), reason="numpy's BLAS is not OpenBLAS")
J = pytest.importorskip("course.providers.cpu.job")
CPU = CPUExecutionProvider()

CASES = {  # id: (x shape, w shape, attributes, marks, channels-last X, residual)
    "pointwise": ((1, 24, 9, 7), (40, 24, 1, 1), {}, {}, False, False),
    "pointwise-last-in-out": ((1, 24, 9, 7), (40, 24, 1, 1), {}, {"layout": "NHWC"}, True, False),
    "pointwise-nchw-to-last": ((1, 24, 9, 7), (40, 24, 1, 1), {}, {"layout": "NHWC"}, False, False),
    "pointwise-last-residual": ((1, 24, 9, 7), (40, 24, 1, 1), {}, {"layout": "NHWC"}, True, True),
    "pointwise-residual": ((1, 24, 9, 7), (40, 24, 1, 1), {}, {}, False, True),
    "depthwise": ((1, 32, 11, 10), (32, 1, 3, 3), {"group": 32, "strides": [2, 2], "pads": [1, 1, 1, 1]}, {},
                  False, False),
    "depthwise-last": ((1, 64, 11, 10), (64, 1, 3, 3), {"group": 64, "pads": [1, 1, 1, 1]}, {}, True, False),
    "im2col-stem": ((1, 3, 20, 18), (8, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}, {}, False, False),
    "im2col-strided-residual": ((1, 16, 14, 13), (8, 16, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}, {},
                                False, True),
    "im2col-shared-residual": ((1, 24, 7, 6), (48, 24, 3, 3), {"pads": [1, 1, 1, 1]}, {}, False, True),
    "winograd-residual": ((1, 16, 15, 14), (24, 16, 3, 3), {"pads": [1, 1, 1, 1]}, {}, False, True),
}


def _operands(case, seed):
    xs, ws, attrs, marks, last, residual = CASES[case]
    r = rng(seed)
    x = r.standard_normal(xs).astype(np.float32)
    w = frozen(r.standard_normal(ws).astype(np.float32) * 0.3)
    b = frozen(r.standard_normal(ws[0]).astype(np.float32))
    spec, inputs, _ = conv_spec(x, w, b, None, attrs, "Clip", (0.0, 6.0), marks)
    z = r.standard_normal(spec.outputs[0][1]).astype(np.float32) if residual else None
    if last:
        x, z = channels_last(x), None if z is None else channels_last(z)
    return spec, x, w, b, z


def _spying(kernel):
    calls, real = [], kernel.general
    kernel.general = lambda *a, **kw: calls.append(1) or real(*a, **kw)
    return calls


@pytest.mark.parametrize("case", list(CASES))
def test_a_replay_gives_the_general_paths_bits(case):
    spec, x, w, b, z = _operands(case, 0)
    k = CPU.kernel(spec)
    first = k(x, w, b, z)
    assert k.fast is not None, "the first call's job was not kept"
    job = k.fast.job
    kind = {"im2col": J.IM2COL_GEMM, "winograd": J.WINOGRAD, "pointwise": J.GEMM, "depthwise": J.DEPTHWISE}
    want_kind = kind[case.split("-")[0]]
    if case == "depthwise-last":
        want_kind = J.DEPTHWISE_NHWC
    assert job.values[0] == want_kind
    if case.startswith("im2col"):  # the two ways the job splits: pixels, or output channels
        assert job.values[job.layout.axis] == (0 if "shared" in case else 1)
    assert len(job.scratch) == (3 if "winograd" in case else 2 if "shared" in case else 0)
    kept = {J.address(a) for a in job.keep}  # not the first call's scratch: each run makes its own
    assert not kept & set(job.values[f] for f in job.scratch_fields())
    general = k.general(x, w, b, z)
    assert first.strides == general.strides and np.array_equal(first, general)
    _, x2, _, _, z2 = _operands(case, 1)  # new X and Z, same weights
    calls = _spying(k)
    with CPU.running():  # both in a run: OpenBLAS on one thread, our chunks
        y = k(x2, w, b, z2)
        want = CPU.kernel(spec).general(x2, w, b, z2)
    assert not calls, "the second call took the general path"
    assert y.shape == want.shape and y.strides == want.strides
    assert np.array_equal(y, want) and not np.array_equal(y, first)
    assert is_channels_last(y) == (spec.marks.get("layout") == "NHWC" or case == "depthwise-last")


CHANGES = {  # what differs from the call that made the job
    "weight": lambda x, w, b, z: (x, frozen(-w), b, z),
    "bias": lambda x, w, b, z: (x, w, frozen(b + 1), z),
    "no bias": lambda x, w, b, z: (x, w, None, z),
    "X layout": lambda x, w, b, z: (channels_last(x) if x.flags.c_contiguous else np.ascontiguousarray(x), w, b, z),
    "X strided": lambda x, w, b, z: (np.repeat(x, 2, axis=3)[..., ::2], w, b, z),
    "X batch of 2": lambda x, w, b, z: (np.concatenate([x, x + 1]), w, b,
                                        None if z is None else np.concatenate([z, z])),
    "Z layout": lambda x, w, b, z: (x, w, b, None if z is None else (channels_last(z) if z.flags.c_contiguous
                                                                       else np.ascontiguousarray(z))),
}


@pytest.mark.parametrize("case,change", [(case, change) for case in ("pointwise-last-residual", "pointwise-residual",
                                                                      "depthwise-last", "im2col-strided-residual",
                                                                      "im2col-shared-residual", "winograd-residual")
                                         for change in CHANGES if CASES[case][5] or not change.startswith("Z")])
def test_anything_else_takes_the_general_path(case, change):
    spec, x, w, b, z = _operands(case, 2)
    k = CPU.kernel(spec)
    k(x, w, b, z)
    assert k.fast is not None
    _, x2, _, _, z2 = _operands(case, 3)
    x2, w2, b2, z2 = CHANGES[change](x2, w, b, z2)
    calls = _spying(k)
    with CPU.running():
        y = k(x2, w2, b2, z2)
        want = CPU.kernel(spec).general(x2, w2, b2, z2)
    assert y.shape == want.shape and np.array_equal(y, want)
    assert calls, "a call unlike the first one replayed its job"


def test_routes_of_several_jobs_stop_trying():
    # the shifted GEMMs crop a wider grid after their GEMM: not one job straight into Y
    x = rng(6).standard_normal((1, 16, 14, 14)).astype(np.float32)
    w = frozen(rng(7).standard_normal((16, 16, 3, 2)).astype(np.float32))
    spec, _, _ = conv_spec(x, w, None, None, {"pads": [1, 1, 1, 1]}, "Relu")
    k = CPU.kernel(spec)
    for _ in range(2):
        np.testing.assert_array_equal(k(x, w, None), k.general(x, w, None, None))
    assert k.fast is None and not k.replayable


def test_a_writeable_weight_is_never_replayed():
    # the job reads W.T, a copy: a weight written in place would leave it stale
    spec, x, w, b, z = _operands("pointwise-last-residual", 13)
    w, b = np.array(w), np.array(b)  # writeable
    k = CPU.kernel(spec)
    first = k(x, w, b, z)
    w *= -1
    b += 1
    second = k(x, w, b, z)
    np.testing.assert_array_equal(second, k.general(x, w, b, z))
    assert not np.array_equal(first, second) and k.fast is None and k.replayable


@pytest.mark.parametrize("case", ["pointwise-residual", "im2col-strided-residual", "im2col-shared-residual",
                                  "winograd-residual"])
def test_a_residual_the_route_copied_is_not_replayed(case):
    # these routes read Z in their output's (NCHW) layout: a channels-last Z is copied first, so
    # the job holds the copy's address, and patching in the next Z's would read it wrongly
    spec, x, w, b, z = _operands(case, 14)
    k = CPU.kernel(spec)
    np.testing.assert_array_equal(k(x, w, b, channels_last(z)), k.general(x, w, b, z))
    _, x2, _, _, z2 = _operands(case, 15)
    with CPU.running():
        second = k(x2, w, b, channels_last(z2))
        np.testing.assert_array_equal(second, k.general(x2, w, b, z2))
    assert k.fast is None and not k.replayable


def test_two_threads_replaying_the_same_kernel_get_their_own_results():
    # one holds the pool, the other runs alone; both replay the same prepared kernel
    spec, x, w, b, z = _operands("winograd-residual", 16)
    k = CPU.kernel(spec)
    xs = [_operands("winograd-residual", 20 + i)[1] for i in range(2)]
    want = [k.general(xi, w, b, z) for xi in xs]
    k(xs[0], w, b, z)
    bad = []

    def worker(i):
        with CPU.running():
            for _ in range(30):
                # the thread without the pool shares BLAS's thread setting: within tolerances
                if not np.allclose(k(xs[i], w, b, z), want[i], rtol=1e-4, atol=1e-4):
                    bad.append(i)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad, f"wrong results in threads {sorted(set(bad))}"
