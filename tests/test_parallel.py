"""The two-thread pool of course/ops/_parallel.py: jobs split between the session's thread and a
helper give the same bits as the same chunks run by one thread, the helper really takes chunks,
and the pool is released whatever happens in a run."""
from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import course
from course.models.builders import build_model
from course.ops import _blas

pytestmark = pytest.mark.skipif(not _blas.available(), reason="numpy's BLAS is not OpenBLAS")

P = pytest.importorskip("course.ops._parallel")
two_cpus = pytest.mark.skipif(not P._POOL.enabled(), reason="the pool needs two CPUs (and not Windows)")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _wait_for_helper(job, timeout=30.0):
    """Repeat ``job`` inside running() until the helper has taken a chunk; returns job's result.
    (With a cold numba cache the other test worker compiles meanwhile: 5 s was seen to run out.)"""
    start = P._POOL.state[P.HELPED]
    deadline = time.monotonic() + timeout
    with P.running() as on:
        assert on
        while True:
            out = job()
            if P._POOL.state[P.HELPED] > start or time.monotonic() > deadline:
                break
    assert P._POOL.state[P.HELPED] > start, "the helper thread never took a chunk"
    return out


@pytest.mark.parametrize("m,k,n,ntaps", [(576, 96, 196, 1), (24, 144, 3136, 1), (64, 32, 300, 9), (7, 5, 9, 2)])
def test_gemm_sum_same_bits_pooled_or_alone(m, k, n, ntaps):
    rng = _rng()
    a = rng.standard_normal((ntaps, m, k)).astype(np.float32)
    big = rng.standard_normal((k, n + 40)).astype(np.float32)
    taps = [big[:, t:t + n] for t in range(ntaps)]  # strided windows, as conv's taps are
    alone = rng.standard_normal((m, n)).astype(np.float32)
    c0 = alone.copy()
    P.gemm_sum(a, taps, alone, beta=1.0)
    want = c0.astype(np.float64) + sum(a[t].astype(np.float64) @ taps[t] for t in range(ntaps))
    np.testing.assert_allclose(alone, want, rtol=1e-4, atol=1e-3)

    def job():
        c = c0.copy()
        return P.gemm_sum(a, taps, c, beta=1.0)
    if P._POOL.enabled() and P._split(max(m, n))[1] > 1:
        pooled = _wait_for_helper(job)
    else:
        pooled = job()
    assert np.array_equal(pooled, alone)


@pytest.mark.parametrize("m,k,n", [(576, 96, 196), (96, 16, 12544), (24, 144, 3136)])
def test_gemm_sum_epilogue_in_the_bands(m, k, n):
    """Bias, residual and Clip applied inside the bands (row bands; column bands made in several
    blocks) give the bits of the plain GEMM followed by fk.epilogue, pooled or alone."""
    from course.ops import _fused_kernels as fk

    rng = _rng(4)
    a = rng.standard_normal((1, m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    zbig = rng.standard_normal((m, n + 8)).astype(np.float32)
    z = zbig[:, 3:n + 3]  # a window with its own row stride
    act = fk.scalars(np.float32, "Clip", [-0.5, 1.0])
    if n >= 2 * m:
        step = P._split(n)[0]
        assert P.BLOCK_MIN <= P.BLOCK_BYTES // (4 * (m + k)) < step  # several blocks per band
    plain = P.gemm_sum(a, [b], np.empty((m, n), np.float32))
    want = fk.epilogue(plain.reshape(1, m, n).copy(), bias, "Clip", [-0.5, 1.0], np.ascontiguousarray(z))[0]
    ref = np.clip(a[0].astype(np.float64) @ b + bias[:, None] + z, -0.5, 1.0)
    np.testing.assert_allclose(want, ref, rtol=1e-4, atol=1e-4)

    def job():
        return P.gemm_sum(a, [b], np.empty((m, n), np.float32), bias=bias, z=z, act=act)
    alone = job()
    assert np.array_equal(alone, want)
    if P._POOL.enabled():
        assert np.array_equal(_wait_for_helper(job), want)
    no_z = P.gemm_sum(a, [b], np.empty((m, n), np.float32), bias=bias, act=fk.scalars(np.float32, "Relu", []))
    assert np.array_equal(no_z, np.maximum(plain + bias[:, None], 0))


def _im2col_reference(x, w, kernel, strides, dilations, pads, out):
    """float64 im2col of one image (C, H, W) by its definition, times W (M, C*KH*KW)."""
    c, h, wd = x.shape
    xp = np.zeros((c, h + pads[0] + out[0] * strides[0] + kernel[0] * dilations[0],
                   wd + pads[1] + out[1] * strides[1] + kernel[1] * dilations[1]))
    xp[:, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    col = np.stack([xp[ch, i * dilations[0]:i * dilations[0] + out[0] * strides[0]:strides[0],
                       j * dilations[1]:j * dilations[1] + out[1] * strides[1]:strides[1]]
                    for ch in range(c) for i in range(kernel[0]) for j in range(kernel[1])])
    return w.astype(np.float64) @ col.reshape(len(col), -1)


IM2COL_GEOMETRIES = [  # (C, H, W), M, kernel, strides, dilations, pads_begin, out
    ((3, 23, 21), 8, (7, 7), (2, 2), (1, 1), (3, 3), (12, 11)),
    ((5, 9, 40), 4, (2, 6), (1, 3), (1, 1), (0, 5), (9, 13)),
    ((2, 6, 6), 3, (3, 3), (2, 2), (2, 1), (4, 4), (5, 6)),  # rows and columns of padding only
    ((16, 14, 14), 8, (3, 3), (1, 1), (1, 1), (1, 1), (14, 14)),
]


@pytest.mark.parametrize("geometry", IM2COL_GEOMETRIES, ids=[str(i) for i in range(len(IM2COL_GEOMETRIES))])
@pytest.mark.parametrize("block", [None, 16, 5, 1000])
def test_im2col_gemm_matches_its_definition_in_any_blocks(geometry, block):
    """Blocks that start and end inside an output row, one column wide rows of zeros, a block
    wider than the image: W @ im2col(x) with the epilogue (bias, a strided residual, LeakyRelu)
    on each block, the same bits pooled or alone."""
    from course.ops import _fused_kernels as fk

    (c, h, wd), m, kernel, strides, dilations, pads, out = geometry
    rng = _rng(7)
    x = rng.standard_normal((c, h, wd)).astype(np.float32)
    w = rng.standard_normal((m, c * kernel[0] * kernel[1])).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    p = out[0] * out[1]
    z = rng.standard_normal((m, p + 5)).astype(np.float32)[:, 2:p + 2]
    act = fk.scalars(np.float32, "LeakyRelu", [0.1])

    def job():
        y = np.full((m, p), np.nan, np.float32)
        return P.im2col_gemm(x, w, kernel, strides, dilations, pads, out, y, bias=bias, z=z, act=act, block=block)
    alone = job()
    ref = _im2col_reference(x, w, kernel, strides, dilations, pads, out) + bias[:, None] + z
    np.testing.assert_allclose(alone, np.where(ref < 0, 0.1 * ref, ref), rtol=1e-4, atol=1e-4)
    plain = P.im2col_gemm(x, w, kernel, strides, dilations, pads, out, np.empty((m, p), np.float32), block=block)
    np.testing.assert_allclose(plain, _im2col_reference(x, w, kernel, strides, dilations, pads, out),
                               rtol=1e-4, atol=1e-4)
    if P._POOL.enabled() and block is not None and block < p:  # a block per chunk: more than one
        assert np.array_equal(_wait_for_helper(job), alone)


SHARED_IM2COL_GEOMETRIES = IM2COL_GEOMETRIES + [  # fewer output pixels than twice the channels
    ((40, 7, 7), 64, (3, 3), (1, 1), (1, 1), (1, 1), (7, 7)),  # 4 parts of 10 channels
    ((3, 5, 6), 40, (3, 3), (2, 2), (1, 1), (1, 1), (3, 3)),  # fewer channels than parts: one is empty
    ((9, 8, 8), 70, (2, 3), (3, 2), (2, 1), (0, 2), (3, 5)),  # 70 rows: bands of 48 and 22
]


@pytest.mark.parametrize("geometry", SHARED_IM2COL_GEOMETRIES,
                         ids=[str(i) for i in range(len(SHARED_IM2COL_GEOMETRIES))])
def test_im2col_gemm_shared_matrix_matches_its_definition(geometry):
    """axis 0: the im2col matrix made once, in channel parts either thread takes, each band of
    output channels multiplied by all of it, the epilogue on the band; the same bits pooled or
    alone, and the default for fewer pixels than twice the output channels."""
    from course.ops import _fused_kernels as fk

    (c, h, wd), m, kernel, strides, dilations, pads, out = geometry
    rng = _rng(8)
    x = rng.standard_normal((c, h, wd)).astype(np.float32)
    w = rng.standard_normal((m, c * kernel[0] * kernel[1])).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    p = out[0] * out[1]
    z = rng.standard_normal((m, p + 5)).astype(np.float32)[:, 2:p + 2]
    act = fk.scalars(np.float32, "Clip", [-1.0, 2.0])

    def job():
        y = np.full((m, p), np.nan, np.float32)
        return P.im2col_gemm(x, w, kernel, strides, dilations, pads, out, y, bias=bias, z=z, act=act, axis=0)
    alone = job()
    ref = _im2col_reference(x, w, kernel, strides, dilations, pads, out)
    np.testing.assert_allclose(alone, np.clip(ref + bias[:, None] + z, -1.0, 2.0), rtol=1e-4, atol=1e-4)
    with P.recording() as jobs:
        plain = P.im2col_gemm(x, w, kernel, strides, dilations, pads, out, np.full((m, p), np.nan, np.float32),
                              axis=0)
    np.testing.assert_allclose(plain, ref, rtol=1e-4, atol=1e-4)
    assert jobs[0].chunks == P._split(m)[1]
    with P.recording() as jobs:
        P.im2col_gemm(x, w, kernel, strides, dilations, pads, out, np.empty((m, p), np.float32))
    assert jobs[0].values[P.IM2COL_AXIS] == (0 if p < 2 * m else 1)
    if P._POOL.enabled() and P._split(m)[1] > 1:
        for _ in range(3):  # the helper may take parts, a band, or both
            assert np.array_equal(_wait_for_helper(job), alone)


@two_cpus
def test_im2col_gemm_bands_wait_for_every_part_of_the_shared_matrix(monkeypatch):
    """A thread that finds every part taken waits until they are made. One part here: the thread
    that takes it makes the whole matrix (~0.1 ms) while the other waits for it; each call has a
    new image, so a band multiplied by a matrix still being made (or left from the call before,
    in the same freed memory) would not match the image's own result."""
    monkeypatch.setattr(P, "IM2COL_PARTS", 1)
    rng = _rng(9)
    geometry = ((3, 3), (1, 1), (1, 1), (1, 1), (14, 14))
    w = rng.standard_normal((128, 64 * 9)).astype(np.float32)
    xs = [rng.standard_normal((64, 14, 14)).astype(np.float32) for _ in range(12)]
    _same_bits_for_new_images(lambda x: P.im2col_gemm(x, w, *geometry, np.empty((128, 196), np.float32)), xs)


def _same_bits_for_new_images(kernel, xs, rounds=10):
    """kernel(x) in a run, ``rounds`` times over the images xs in turn, gives the bits it gives
    alone, and the helper takes part."""
    want = [kernel(x) for x in xs]
    start = P._POOL.state[P.HELPED]
    with P.running() as on:
        assert on
        for _ in range(rounds):
            for x, y in zip(xs, want):
                assert np.array_equal(kernel(x), y)
    assert P._POOL.state[P.HELPED] > start


WINOGRAD_GEOMETRIES = [  # (C, H, W), M, pads_begin, out
    ((16, 14, 14), 24, (1, 1), (14, 14)),
    ((5, 9, 11), 7, (1, 1), (9, 11)),  # odd sizes: the last tiles half outside the output
    ((3, 7, 6), 40, (0, 1), (7, 5)),  # asymmetric pads; fewer channels than parts
    ((4, 3, 3), 3, (3, 2), (8, 7)),  # pads wider than the kernel: whole tiles of padding
    ((1, 2, 2), 1, (0, 0), (1, 1)),
]


def _winograd_case(geometry, seed):
    from course.ops import _fused_kernels as fk

    (c, h, wd), m, pads, out = geometry
    rng = _rng(seed)
    x = rng.standard_normal((c, h, wd)).astype(np.float32)
    w = rng.standard_normal((m, c, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    p = out[0] * out[1]
    z = rng.standard_normal((m, p + 3)).astype(np.float32)[:, 1:p + 1]
    return x, w, bias, z, fk.scalars(np.float32, "LeakyRelu", [0.2])


@pytest.mark.parametrize("geometry", WINOGRAD_GEOMETRIES, ids=[str(i) for i in range(len(WINOGRAD_GEOMETRIES))])
def test_winograd_matches_the_convolution_s_definition(geometry):
    """F(2x2, 3x3) against the float64 im2col sum: plain and with the epilogue (bias, a strided
    residual, LeakyRelu), the same bits in a run (whether or not the helper joins in such a small
    job; test_winograd_phases_wait_for_every_part makes sure it does on a bigger one)."""
    (c, h, wd), m, pads, out = geometry
    x, w, bias, z, act = _winograd_case(geometry, 10)
    u = P.winograd_weights(w)
    ref = _im2col_reference(x, w.reshape(m, -1), (3, 3), (1, 1), (1, 1), pads, out)
    p = out[0] * out[1]
    plain = P.winograd3x3(x, u, pads, out, np.full((m, p), np.nan, np.float32))
    np.testing.assert_allclose(plain, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())

    def job():
        return P.winograd3x3(x, u, pads, out, np.full((m, p), np.nan, np.float32), bias=bias, z=z, act=act)
    alone = job()
    want = ref + bias[:, None] + z
    np.testing.assert_allclose(alone, np.where(want < 0, 0.2 * want, want), rtol=1e-5, atol=1e-5 * np.abs(want).max())
    with P.running():
        assert np.array_equal(job(), alone)


def test_winograd_weights_are_g_g_gt():
    w = _rng(11).standard_normal((3, 2, 3, 3)).astype(np.float32)
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    u = P.winograd_weights(w)
    assert u.shape == (16, 3, 2) and u.dtype == np.float32 and u.flags.c_contiguous
    for mm in range(3):
        for cc in range(2):
            np.testing.assert_allclose(u[:, mm, cc].reshape(4, 4), g @ w[mm, cc] @ g.T, rtol=1e-6)


@two_cpus
@pytest.mark.parametrize("parts", [1, 8])
def test_winograd_phases_wait_for_every_part(parts, monkeypatch):
    """Each phase starts only when the last one's parts are all made: with one part a phase, the
    thread that takes it makes all of it while the other waits; each call has a new image, so a
    phase that ran early would not give that image's own result."""
    monkeypatch.setattr(P, "WINOGRAD_PARTS", parts)
    rng = _rng(12)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    u = P.winograd_weights(w)
    xs = [rng.standard_normal((32, 28, 28)).astype(np.float32) for _ in range(8)]
    _same_bits_for_new_images(lambda x: P.winograd3x3(x, u, (1, 1), (28, 28), np.empty((64, 784), np.float32)), xs)


def test_winograd_refuses_what_does_not_fit():
    x, u = np.ones((3, 8, 8), np.float32), np.ones((16, 4, 3), np.float32)
    P.winograd3x3(x, u, (1, 1), (8, 8), np.empty((4, 64), np.float32))
    for bad_x, bad_u, bad_y, out in [
        (x, u, np.empty((4, 63), np.float32), (8, 8)),
        (x, u, np.empty((5, 64), np.float32), (8, 8)),
        (x, u, np.empty((64, 4), np.float32).T, (8, 8)),
        (x, np.ones((16, 4, 2), np.float32), np.empty((4, 64), np.float32), (8, 8)),
        (x, np.ones((9, 4, 3), np.float32), np.empty((4, 64), np.float32), (8, 8)),
        (np.ones((3, 8, 16), np.float32)[:, :, ::2], u, np.empty((4, 64), np.float32), (8, 8)),
        (x, u, np.empty((4, 0), np.float32), (0, 8)),
    ]:
        with pytest.raises(ValueError):
            P.winograd3x3(bad_x, bad_u, (1, 1), out, bad_y)


def test_im2col_gemm_refuses_what_does_not_fit():
    x, w = np.ones((3, 8, 8), np.float32), np.ones((4, 27), np.float32)
    geometry = ((3, 3), (1, 1), (1, 1), (1, 1), (8, 8))
    P.im2col_gemm(x, w, *geometry, np.empty((4, 64), np.float32))
    for bad in (np.empty((4, 63), np.float32), np.empty((5, 64), np.float32), np.empty((64, 4), np.float32).T):
        with pytest.raises(ValueError):
            P.im2col_gemm(x, w, *geometry, bad)
    with pytest.raises(ValueError):
        P.im2col_gemm(x, np.ones((4, 26), np.float32), *geometry, np.empty((4, 64), np.float32))
    with pytest.raises(ValueError):
        P.im2col_gemm(np.ones((3, 8, 16), np.float32)[:, :, ::2], w, *geometry, np.empty((4, 64), np.float32))


def test_split_cuts_aligned_bands_or_none():
    assert P._split(10) == (10, 1)
    assert P._split(31) == (31, 1)
    assert P._split(96) == (48, 2)
    assert P._split(100) == (64, 2)
    step, chunks = P._split(12544)
    assert step % P.ALIGN == 0 and chunks == 2 and step * chunks >= 12544


@two_cpus
def test_depthwise_and_epilogue_same_bits_pooled():
    from course.ops import _fused_kernels as fk

    rng = _rng(1)
    x = rng.standard_normal((1, 96, 28, 28)).astype(np.float32)
    w = rng.standard_normal((96, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(96).astype(np.float32)
    z = rng.standard_normal((1, 96, 14, 14)).astype(np.float32)
    args = (x, w, b, [2, 2], [1, 1, 1, 1], None, "NOTSET", "Clip", [0.0, 6.0])
    alone = fk.depthwise_conv2d(*args)

    def job():
        y = fk.depthwise_conv2d(*args)
        return y, fk.epilogue(y.copy(), b, "Relu", [], z)
    pooled, pooled_epi = _wait_for_helper(job)
    assert np.array_equal(pooled, alone)
    assert np.array_equal(pooled_epi, fk.epilogue(alone.copy(), b, "Relu", [], z))
    ref = np.maximum(alone + b[:, None, None] + z, 0)
    np.testing.assert_array_equal(pooled_epi, ref)


@two_cpus
def test_max_pool_same_bits_pooled():
    from course.ops import _fused_kernels as fk

    x = _rng(2).standard_normal((1, 64, 30, 30)).astype(np.float32)
    x[0, 40, 3, 3] = np.nan  # in the helper's half of the planes
    args = (x, (15, 15), (2, 2), (1, 1), (1, 1))
    alone = fk.max_pool3x3(*args)
    pooled = _wait_for_helper(lambda: fk.max_pool3x3(*args))
    assert np.array_equal(pooled, alone, equal_nan=True) and np.isnan(pooled[0, 40, 2, 2])
    want = np.full((1, 64, 32, 32), -np.inf, np.float32)
    want[:, :, 1:31, 1:31] = x
    want = np.stack([want[:, :, i:i + 29:2, j:j + 29:2] for i in range(3) for j in range(3)]).max(axis=0)
    np.testing.assert_array_equal(pooled, want)


def test_the_helper_loop_is_compiled_before_the_helper_starts():
    # Compiled in the helper thread, it left the first runs to one thread, and a script that ended
    # meanwhile aborted inside LLVM at exit. A fresh process, so the pool has no thread yet.
    code = ("import numpy as np; from course.ops import _parallel as P\n"
            "with P.running() as on:\n"
            "    assert not on or P._helper_stay.signatures, 'the helper compiles its own loop'\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@two_cpus
def test_the_helper_waits_in_compiled_code_between_runs_then_sleeps():
    # Woken from its Event, the helper needs the GIL, which it got 0.2-18 ms into a run; so after
    # a run it stays in compiled code (yields, then naps) and only then goes back to the Event.
    with P.running():
        pass
    time.sleep(0.05)
    assert P._POOL.state[P.STAYING] == 1, "the helper went back to its Event at once"
    deadline = time.monotonic() + 10
    while P._POOL.state[P.STAYING] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert P._POOL.state[P.STAYING] == 0, "the helper never stops waiting in compiled code"
    x = _rng(5).standard_normal((64, 512)).astype(np.float32)
    y = _wait_for_helper(lambda: P.gemm_sum(x[None], [x.T.copy()], np.empty((64, 64), np.float32)))
    np.testing.assert_allclose(y, x @ x.T, rtol=1e-4, atol=1e-3)  # and a run wakes it again


@two_cpus
def test_session_pooled_equals_single_thread(monkeypatch):
    model = build_model("mobilenetv2", image_size=64, num_classes=10, width=0.5)
    x = _rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32)
    sess = course.InferenceSession(model)
    before, pooled = P._POOL.state[P.HELPED], []
    deadline = time.monotonic() + 10
    while len(pooled) < 3 or (P._POOL.state[P.HELPED] == before and time.monotonic() < deadline):
        pooled.append(sess.run(None, {"input": x})[0])
    assert P._POOL.state[P.HELPED] > before, "no run of the session was shared with the helper"
    monkeypatch.setenv("COURSE_NUM_THREADS", "1")
    assert not P._POOL.enabled()
    alone = sess.run(None, {"input": x})[0]
    for y in pooled:
        assert np.array_equal(y, alone)


@two_cpus
def test_blas_threads_restored_and_pool_released_after_a_failing_run():
    before = _blas.set_threads(2)
    _blas.set_threads(before)
    model = build_model("resnet", image_size=32, num_classes=10, width=0.25)
    x = _rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)

    def boom(*args, **kwargs):
        raise RuntimeError("learner's kernel failed")
    bad = course.InferenceSession(model, custom_kernels={"Relu": boom})
    with pytest.raises(course.EngineError, match="learner's kernel failed"):
        bad.run(None, {"input": x})
    assert not P._POOL.lock.locked() and P._POOL.owner is None
    assert _blas.set_threads(before) == before  # what was there before the run
    good = course.InferenceSession(model)
    assert good.run(None, {"input": x})[0].shape == (1, 10)


@two_cpus
def test_nested_and_concurrent_runs_do_not_share_the_pool():
    rng = _rng(4)
    a = rng.standard_normal((1, 64, 48)).astype(np.float32)
    b = rng.standard_normal((48, 256)).astype(np.float32)
    want = P.gemm_sum(a, [b], np.empty((64, 256), np.float32))
    seen = {}

    def other_thread():
        with P.running() as on:  # the main thread holds the pool: this one runs alone
            seen["on"] = on
            seen["y"] = P.gemm_sum(a, [b], np.empty((64, 256), np.float32))
    with P.running() as outer:
        with P.running() as inner:
            assert outer and not inner
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert seen["on"] is False and np.array_equal(seen["y"], want)


def _child_job():
    a = np.ones((1, 64, 32), np.float32)
    b = np.ones((32, 128), np.float32)
    with P.running():
        y = P.gemm_sum(a, [b], np.empty((64, 128), np.float32))
    return float(y.sum())


@two_cpus
def test_a_forked_child_gets_a_fresh_pool():
    with P.running():  # the parent's helper exists and may be mid-loop at fork time
        P.gemm_sum(np.ones((1, 64, 32), np.float32), [np.ones((32, 128), np.float32)],
                   np.empty((64, 128), np.float32))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_child_job) == 64 * 128 * 32


@pytest.mark.parametrize("m,trans_a,trans_b,c_shape", [(1, 0, 1, (1000,)), (3, 0, 1, (1, 1000)), (5, 1, 0, (5, 1000)),
                                                      (2, 0, 0, (2, 1)), (4, 1, 1, None)])
def test_gemm_op_through_the_pool(m, trans_a, trans_b, c_shape):
    """A big float32 Gemm (a classifier head) runs as one gemm_sum job: a transB weight is handed
    to BLAS transposed, C is added in the bands when it is a row broadcast or a full matrix (else
    afterwards); all against float64 numpy, with alpha/beta, pooled == alone."""
    from course.ops import gemm
    from course.ops.registry import lookup

    op = lookup("Gemm", 13)
    rng = _rng(6)
    k, n = 1280, 1000
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c = None if c_shape is None else rng.standard_normal(c_shape).astype(np.float32)
    assert gemm._poolable(a.T if trans_a else a, b.T if trans_b else b)
    a64, b64 = (a.T if trans_a else a).astype(np.float64), (b.T if trans_b else b).astype(np.float64)
    for alpha, beta in ((1.0, 1.0), (0.5, 2.0)):
        want = alpha * (a64 @ b64) + (0 if c is None else beta * c)
        alone = op.compute(a, b, c, alpha=alpha, beta=beta, transA=trans_a, transB=trans_b)
        assert alone.shape == (m, n) and alone.dtype == np.float32 and alone.flags.c_contiguous
        np.testing.assert_allclose(alone, want, rtol=1e-4, atol=1e-3)
        if P._POOL.enabled():
            pooled = _wait_for_helper(lambda: op.compute(a, b, c, alpha=alpha, beta=beta, transA=trans_a,
                                                         transB=trans_b))
            assert np.array_equal(pooled, alone)


def test_gemm_sum_rejects_mixed_or_unusable_operands():
    a = np.ones((2, 8, 16), np.float32)
    rowmajor, transposed = np.ones((16, 32), np.float32), np.ones((32, 16), np.float32).T
    with pytest.raises(ValueError, match="all transposed"):
        P.gemm_sum(a, [rowmajor, transposed], np.empty((8, 32), np.float32))
    strided = np.ones((16, 64), np.float32)[:, ::2]  # neither row-major nor a transpose of one
    with pytest.raises(ValueError, match="row-major"):
        P.gemm_sum(a[:1], [strided], np.empty((8, 32), np.float32))


def test_cached_jobs_are_dropped_when_the_kernels_they_inline_change(tmp_path):
    """numba's cache checks only the defining file; _parallel's jobs inline _fused_kernels' loops."""
    kernels = tmp_path / "kernels.py"
    kernels.write_text("x = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    stale = [cache / "_parallel._run_chunk-1.py311.nbi", cache / "_parallel._run_chunk-1.py311.1.nbc"]
    other = cache / "_fused_kernels._epilogue-2.py311.nbi"
    for f in (*stale, other):
        f.write_text("")
    assert P.drop_stale_cache(cache, "_parallel", kernels)  # no stamp yet: written by an unknown version
    assert not any(f.exists() for f in stale) and other.exists()
    for f in stale:
        f.write_text("")
    assert not P.drop_stale_cache(cache, "_parallel", kernels)  # unchanged: the cache is kept
    assert all(f.exists() for f in stale)
    kernels.write_text("x = 22\n")  # edited
    assert P.drop_stale_cache(cache, "_parallel", kernels)
    assert not any(f.exists() for f in stale) and other.exists()
