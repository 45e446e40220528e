"""The CPU provider's jobs one by one (gemm_sum, im2col_gemm, winograd3x3, the epilogue) against
their definitions in float64, and shared between two threads: the chunks are fixed by our code,
so a job run in a session (helper thread on, OpenBLAS on one thread) gives the bits of the same
job run by one thread with OpenBLAS on one thread. Against BLAS's own partitions (numpy's
matmul, more BLAS threads) only tolerances derived from K hold."""
from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest

from course.providers.cpu import blas
from cpu_cases import EPS, rng

pytestmark = pytest.mark.skipif(not blas.available(), reason="numpy's BLAS is not OpenBLAS")

G = pytest.importorskip("course.providers.cpu.gemm")
from course.providers.cpu import im2col as I  # noqa: E402
from course.providers.cpu import job as J  # noqa: E402
from course.providers.cpu import pool as P  # noqa: E402
from course.providers.cpu import weights as WT  # noqa: E402
from course.providers.cpu import winograd as W  # noqa: E402
from course.providers.cpu.epilogue import epilogue  # noqa: E402
from course.providers.cpu.geometry import Window  # noqa: E402

two_threads = pytest.mark.skipif(not P.POOL.enabled(), reason="no helper thread (COURSE_NUM_THREADS=1 or one CPU)")


@contextlib.contextmanager
def one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def close(got, want, k, c=8.0):
    tol = c * max(k, 1) * EPS
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, float(np.abs(want).max())))


def in_a_run(job, timeout=30.0):
    """``job()`` inside running(), repeated until the helper has taken a chunk (with a cold
    cache another test worker may keep the CPU busy a while); returns the last result."""
    start = P.POOL.helped()
    deadline = time.monotonic() + timeout
    with P.running() as on:
        assert on
        while True:
            out = job()
            if P.POOL.helped() > start or time.monotonic() > deadline:
                break
    assert P.POOL.helped() > start, "the helper thread never took a chunk"
    return out


def alone(job):
    with one_blas_thread():
        return job()


def test_a_record_is_filled_by_name_only():
    lay = J.layout("Args", "m n k")
    assert tuple(lay) == (0, 1, 2, 3) and lay.k == 3
    rec = J.pack(lay, J.GEMM, m=5, n=6, k=7)
    assert rec.dtype == np.int64 and list(rec) == [J.GEMM, 5, 6, 7]
    with pytest.raises(TypeError, match="missing.*'k'"):
        J.pack(lay, J.GEMM, m=5, n=6)
    with pytest.raises(TypeError, match="unknown.*'q'"):
        J.pack(lay, J.GEMM, m=5, n=6, k=7, q=1)


def test_split_cuts_aligned_bands_or_none():
    assert J.split(10) == (10, 1)
    assert J.split(31) == (31, 1)
    assert J.split(96) == (48, 2)
    assert J.split(100) == (64, 2)
    step, chunks = J.split(12544)
    assert step % J.ALIGN == 0 and chunks == 2 and step * chunks >= 12544


@pytest.mark.parametrize("m,k,n,ntaps", [(576, 96, 196, 1), (24, 144, 3136, 1), (64, 32, 300, 9), (7, 5, 9, 2)])
def test_gemm_sum_of_strided_windows(m, k, n, ntaps):
    r = rng()
    a = r.standard_normal((ntaps, m, k)).astype(np.float32)
    big = r.standard_normal((k, n + 40)).astype(np.float32)
    taps = [big[:, t:t + n] for t in range(ntaps)]  # strided windows, as a convolution's taps are
    c0 = r.standard_normal((m, n)).astype(np.float32)
    want = c0.astype(np.float64) + sum(a[t].astype(np.float64) @ taps[t] for t in range(ntaps))

    def job():
        return G.gemm_sum(a, taps, c0.copy(), beta=1.0)
    one = alone(job)
    close(one, want, ntaps * k + 1)
    if P.POOL.enabled() and J.split(max(m, n))[1] > 1:
        assert np.array_equal(in_a_run(job), one)


@pytest.mark.parametrize("m,k,n", [(576, 96, 196), (96, 16, 12544), (24, 144, 3136)])
def test_gemm_sum_epilogue_in_the_bands(m, k, n):
    """Bias, a strided residual and Clip inside the bands (several column blocks per band at
    these sizes) give the GEMM then the epilogue pass (BLAS calls cut otherwise: within K-derived
    tolerances), and the same bits in a run as alone."""
    r = rng(4)
    a = r.standard_normal((1, m, k)).astype(np.float32)
    b = r.standard_normal((k, n)).astype(np.float32)
    bias = r.standard_normal(m).astype(np.float32)
    z = r.standard_normal((m, n + 8)).astype(np.float32)[:, 3:n + 3]
    if n >= 2 * m:
        assert G.BLOCK_MIN <= G.BLOCK_BYTES // (4 * (m + k)) < J.split(n)[0]  # several blocks per band
    plain = alone(lambda: G.gemm_sum(a, [b], np.empty((m, n), np.float32)))
    want = epilogue(plain.reshape(1, m, n).copy(), bias, "Clip", [-0.5, 1.0], np.ascontiguousarray(z))[0]
    close(want, np.clip(a[0].astype(np.float64) @ b + bias[:, None] + z, -0.5, 1.0), k + 2)

    def job():
        return G.gemm_sum(a, [b], np.empty((m, n), np.float32), bias=bias, z=z, act=("Clip", (-0.5, 1.0)))
    one = alone(job)
    close(one, want, k + 2)
    if P.POOL.enabled():
        assert np.array_equal(in_a_run(job), one)


@pytest.mark.parametrize("m,k,n", [(300, 24, 72), (20, 40, 300)])
def test_gemm_sum_transposed_a_and_per_column_bias(m, k, n, monkeypatch):
    r = rng(7)
    x = r.standard_normal((k, m)).astype(np.float32)  # A = x.T, a transposed window
    w = r.standard_normal((k, n)).astype(np.float32)
    b = r.standard_normal(n).astype(np.float32)
    z = r.standard_normal((m, n)).astype(np.float32)
    monkeypatch.setattr(G, "BLOCK_MIN", 16)  # blocks of 16 rows or columns: the epilogue must follow every block
    got = alone(lambda: G.gemm_sum(x.T[None], [w], np.empty((m, n), np.float32), bias=b, z=z,
                                   act=("LeakyRelu", (0.25,)), bias_axis=1))
    ref = x.T.astype(np.float64) @ w + b + z
    close(got, np.where(ref < 0, 0.25 * ref, ref), k + 2)
    plain = alone(lambda: G.gemm_sum(x.T[None], [w], np.empty((m, n), np.float32)))
    want = plain + b
    want += z
    close(got, np.where(want < 0, want * np.float32(0.25), want), k + 2)
    with pytest.raises(ValueError, match="does not fit"):
        G.gemm_sum(x.T[None], [w], np.empty((m, n), np.float32), bias=np.ones(m, np.float32), bias_axis=1)


def test_gemm_sum_rejects_mixed_or_unusable_operands():
    a = np.ones((2, 8, 16), np.float32)
    rowmajor, transposed = np.ones((16, 32), np.float32), np.ones((32, 16), np.float32).T
    with pytest.raises(ValueError, match="all transposed"):
        G.gemm_sum(a, [rowmajor, transposed], np.empty((8, 32), np.float32))
    strided = np.ones((16, 64), np.float32)[:, ::2]
    with pytest.raises(ValueError, match="row-major"):
        G.gemm_sum(a[:1], [strided], np.empty((8, 32), np.float32))


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


IM2COL = [  # (C, H, W), M, kernel, strides, dilations, pads_begin, out
    ((3, 23, 21), 8, (7, 7), (2, 2), (1, 1), (3, 3), (12, 11)),
    ((5, 9, 40), 4, (2, 6), (1, 3), (1, 1), (0, 5), (9, 13)),
    ((2, 6, 6), 3, (3, 3), (2, 2), (2, 1), (4, 4), (5, 6)),  # rows and columns of padding only
    ((16, 14, 14), 8, (3, 3), (1, 1), (1, 1), (1, 1), (14, 14)),
    ((40, 7, 7), 64, (3, 3), (1, 1), (1, 1), (1, 1), (7, 7)),  # few pixels
    ((3, 5, 6), 40, (3, 3), (2, 2), (1, 1), (1, 1), (3, 3)),  # fewer channels than parts
    ((9, 8, 8), 70, (2, 3), (3, 2), (2, 1), (0, 2), (3, 5)),  # 70 rows: bands of 48 and 22
]


@pytest.mark.parametrize("geometry", IM2COL, ids=[str(i) for i in range(len(IM2COL))])
@pytest.mark.parametrize("axis,block", [(1, None), (1, 16), (1, 5), (1, 1000), (0, None)])
def test_im2col_gemm_matches_its_definition(geometry, axis, block):
    """Blocks that start and end inside an output row, a block wider than the image, the shared
    matrix made in parts; with the epilogue (bias, a strided residual, LeakyRelu) on each block."""
    (c, h, wd), m, kernel, strides, dilations, pads, out = geometry
    r = rng(7)
    x = r.standard_normal((c, h, wd)).astype(np.float32)
    w = r.standard_normal((m, c * kernel[0] * kernel[1])).astype(np.float32)
    bias = r.standard_normal(m).astype(np.float32)
    p = out[0] * out[1]
    z = r.standard_normal((m, p + 5)).astype(np.float32)[:, 2:p + 2]
    win = Window(kernel, strides, dilations, out, pads, (0, 0))

    def job():
        y = np.full((m, p), np.nan, np.float32)
        return I.im2col_gemm(x, w, win, y, bias=bias, z=z, act=("LeakyRelu", (0.1,)), block=block, axis=axis)
    one = alone(job)
    ref = _im2col_reference(x, w, kernel, strides, dilations, pads, out) + bias[:, None] + z
    close(one, np.where(ref < 0, 0.1 * ref, ref), w.shape[1] + 2)
    if P.POOL.enabled() and (axis == 0 and J.split(m)[1] > 1 or axis == 1 and block is not None and block < p):
        for _ in range(2):  # the helper may take parts, a band, or both
            assert np.array_equal(in_a_run(job), one)


WINOGRAD = [  # (C, H, W), M, pads_begin, out
    ((16, 14, 14), 24, (1, 1), (14, 14)),
    ((5, 9, 11), 7, (1, 1), (9, 11)),  # odd sizes: the last tiles half outside the output
    ((3, 7, 6), 40, (0, 1), (7, 5)),  # asymmetric pads; fewer channels than parts
    ((4, 3, 3), 3, (3, 2), (8, 7)),  # pads wider than the kernel: whole tiles of padding
    ((1, 2, 2), 1, (0, 0), (1, 1)),
]


@pytest.mark.parametrize("geometry", WINOGRAD, ids=[str(i) for i in range(len(WINOGRAD))])
def test_winograd_matches_the_convolution_s_definition(geometry):
    (c, h, wd), m, pads, out = geometry
    r = rng(10)
    x = r.standard_normal((c, h, wd)).astype(np.float32)
    w = r.standard_normal((m, c, 3, 3)).astype(np.float32)
    bias = r.standard_normal(m).astype(np.float32)
    p = out[0] * out[1]
    z = r.standard_normal((m, p + 3)).astype(np.float32)[:, 1:p + 1]
    win = Window((3, 3), (1, 1), (1, 1), out, pads, (0, 0))
    u = WT.winograd(w)
    ref = _im2col_reference(x, w.reshape(m, -1), (3, 3), (1, 1), (1, 1), pads, out)
    plain = alone(lambda: W.winograd3x3(x, u, win, np.full((m, p), np.nan, np.float32)))
    close(plain, ref, 9 * c, c=32)

    def job():
        return W.winograd3x3(x, u, win, np.full((m, p), np.nan, np.float32), bias=bias, z=z,
                             act=("LeakyRelu", (0.2,)))
    one = alone(job)
    want = ref + bias[:, None] + z
    close(one, np.where(want < 0, 0.2 * want, want), 9 * c + 2, c=32)
    with P.running():
        assert np.array_equal(job(), one)


def test_winograd_weights_are_g_g_gt():
    w = rng(11).standard_normal((3, 2, 3, 3)).astype(np.float32)
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    u = WT.winograd(w)
    assert u.shape == (16, 3, 2) and u.dtype == np.float32 and u.flags.c_contiguous
    for mm in range(3):
        for cc in range(2):
            np.testing.assert_allclose(u[:, mm, cc].reshape(4, 4), g @ w[mm, cc] @ g.T, rtol=1e-6)


def test_jobs_refuse_what_does_not_fit():
    x, w = np.ones((3, 8, 8), np.float32), np.ones((4, 27), np.float32)
    win = Window((3, 3), (1, 1), (1, 1), (8, 8), (1, 1), (1, 1))
    u = np.ones((16, 4, 3), np.float32)
    for bad in (np.empty((4, 63), np.float32), np.empty((5, 64), np.float32), np.empty((64, 4), np.float32).T):
        with pytest.raises(ValueError):
            I.im2col_gemm(x, w, win, bad)
        with pytest.raises(ValueError):
            W.winograd3x3(x, u, win, bad)
    with pytest.raises(ValueError):
        I.im2col_gemm(x, np.ones((4, 26), np.float32), win, np.empty((4, 64), np.float32))
    with pytest.raises(ValueError):
        W.winograd3x3(np.ones((3, 8, 16), np.float32)[:, :, ::2], u, win, np.empty((4, 64), np.float32))


def _same_bits_for_new_images(kernel, xs, rounds=10):
    """kernel(x) in a run, ``rounds`` times over the images xs in turn, gives the bits it gives
    alone, and the helper takes part: a phase or band that ran before the parts it needs were
    made (or on the last call's leftovers) would not."""
    want = [alone(lambda: kernel(x)) for x in xs]
    start = P.POOL.helped()
    with P.running() as on:
        assert on
        for _ in range(rounds):
            for x, y in zip(xs, want):
                assert np.array_equal(kernel(x), y)
    assert P.POOL.helped() > start


@two_threads
def test_im2col_bands_wait_for_every_part_of_the_shared_matrix(monkeypatch):
    monkeypatch.setattr(I, "PARTS", 1)  # the thread that takes it makes the whole matrix
    r = rng(9)
    w = r.standard_normal((128, 64 * 9)).astype(np.float32)
    xs = [r.standard_normal((64, 14, 14)).astype(np.float32) for _ in range(12)]
    win = Window((3, 3), (1, 1), (1, 1), (14, 14), (1, 1), (1, 1))
    _same_bits_for_new_images(lambda x: I.im2col_gemm(x, w, win, np.empty((128, 196), np.float32), axis=0), xs)


@two_threads
@pytest.mark.parametrize("parts", [1, 8])
def test_winograd_phases_wait_for_every_part(parts, monkeypatch):
    monkeypatch.setattr(W, "PARTS", parts)
    r = rng(12)
    u = WT.winograd(r.standard_normal((64, 32, 3, 3)).astype(np.float32))
    xs = [r.standard_normal((32, 28, 28)).astype(np.float32) for _ in range(8)]
    win = Window((3, 3), (1, 1), (1, 1), (28, 28), (1, 1), (1, 1))
    _same_bits_for_new_images(lambda x: W.winograd3x3(x, u, win, np.empty((64, 784), np.float32)), xs)


@two_threads
def test_depthwise_max_pool_and_epilogue_same_bits_in_a_run():
    from course.providers.cpu.depthwise import depthwise_conv2d
    from course.providers.cpu.geometry import window
    from course.providers.cpu.maxpool import max_pool3x3

    r = rng(1)
    x = r.standard_normal((1, 96, 28, 28)).astype(np.float32)
    x[0, 60, 3, 3] = np.nan  # in the helper's half of the planes
    w = r.standard_normal((96, 1, 3, 3)).astype(np.float32)
    b = r.standard_normal(96).astype(np.float32)
    z = r.standard_normal((1, 96, 14, 14)).astype(np.float32)
    win = window((28, 28), (3, 3), (2, 2), (1, 1, 1, 1))

    def job():
        y = depthwise_conv2d(x, w, b, win, "Clip", (0.0, 6.0))
        return y, epilogue(y.copy(), b, "Relu", (), z), max_pool3x3(x, win)
    one = job()
    got = in_a_run(job)
    for a, b_ in zip(got, one):
        assert np.array_equal(a, b_, equal_nan=True)
