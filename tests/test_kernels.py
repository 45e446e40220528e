"""The course's CUDA kernels against numpy, at sizes that are not multiples of a block or tile.

Runs on Numba's CUDA simulator without a GPU (small sizes: the simulator runs one Python thread
per CUDA thread) and on the GPU when one is present.
"""
import numpy as np
import pytest

import course
from course.testing import AWKWARD_SIZES, assert_close, random_tensor
from kernels import conv_im2col, elementwise, launch, reduce, softmax, transpose
from kernels import matmul_naive, matmul_padded, matmul_regblock, matmul_tiled

MATMUL_SHAPES = [(1, 1, 1), (7, 33, 31), (33, 7, 65), (17, 20, 9)]  # (M, N, K)
F32 = dict(rtol=1e-5, atol=1e-5)


def test_ceil_div():
    assert [launch.ceil_div(n, 32) for n in (1, 31, 32, 33, 64, 65)] == [1, 1, 1, 2, 2, 3]
    with pytest.raises(ValueError):
        launch.ceil_div(3, 0)


@pytest.mark.parametrize("n", AWKWARD_SIZES + (1000,))
def test_tensor_add(n):
    a, b = random_tensor(n, seed=n), random_tensor(n, seed=n + 1)
    assert_close(elementwise.tensor_add(a, b), a + b)


def test_map_and_zip_kernels():
    a, b = random_tensor(65, seed=1), random_tensor(65, seed=2)
    assert_close(elementwise.map_array(elementwise.relu_kernel, a), np.maximum(a, 0))
    assert_close(elementwise.map_array(elementwise.exp_kernel, a), np.exp(a), **F32)
    assert_close(elementwise.zip_arrays(elementwise.mul_kernel, a, b), a * b)
    with pytest.raises(ValueError):
        elementwise.tensor_add(a, b[:3])


@pytest.mark.parametrize("n", [1, 7, 33, 257, 1000])
def test_reduce_sum(n):
    a = random_tensor(n, seed=n)
    assert_close(np.float32(reduce.reduce_sum(a)), reduce.reference_sum(a), rtol=1e-5, atol=1e-5)


def test_reduce_sum_more_elements_than_the_grid():
    # 3 blocks x 256 threads cover 768 elements per grid-stride step: 2000 needs three steps.
    a = random_tensor(2000, seed=1)
    assert_close(np.float32(reduce.reduce_sum(a, max_blocks=3)), reduce.reference_sum(a), rtol=1e-5, atol=1e-5)
    assert reduce.reduce_sum(np.ones(2001, np.float32), max_blocks=2) == np.float32(2001)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 200)])
def test_softmax_rows(shape):
    x = random_tensor(shape, seed=3, low=-30, high=30)
    assert_close(softmax.softmax_rows(x), softmax.reference_softmax(x), **F32)


def test_softmax_is_max_subtracted():
    x = np.array([[1000.0, 1000.0, 990.0], [-1000.0, -1000.0, -1000.0]], np.float32)
    y = softmax.softmax_rows(x)
    assert np.all(np.isfinite(y)), "exp overflowed: the row max was not subtracted"
    assert_close(y, softmax.reference_softmax(x), **F32)


@pytest.mark.parametrize("M,N,K", MATMUL_SHAPES)
def test_matmul_naive(M, N, K):
    A, B = random_tensor((M, K), seed=1), random_tensor((K, N), seed=2)
    assert_close(matmul_naive.matmul_naive(A, B), matmul_naive.reference_matmul(A, B), **F32)


@pytest.mark.parametrize("M,N,K,tile", [s + (8,) for s in MATMUL_SHAPES] + [(5, 6, 9, 4)])
def test_matmul_tiled_any_shape(M, N, K, tile):
    A, B = random_tensor((M, K), seed=3), random_tensor((K, N), seed=4)
    got = matmul_tiled.matmul_tiled(A, B, kernel=matmul_tiled.make_matmul_tiled(tile), tile=tile)
    assert_close(got, matmul_naive.reference_matmul(A, B), **F32)


def test_matmul_tiled_default_tile():
    A, B = random_tensor((20, 17), seed=5), random_tensor((17, 18), seed=6)
    assert_close(matmul_tiled.matmul_tiled(A, B), matmul_naive.reference_matmul(A, B), **F32)


@pytest.mark.parametrize("M,N,K", MATMUL_SHAPES)
@pytest.mark.parametrize("pad", [0, 1])
def test_matmul_transposed_tile(M, N, K, pad):
    A, B = random_tensor((M, K), seed=7), random_tensor((K, N), seed=8)
    k = matmul_padded.make_matmul_transposed_tile(8, pad)
    assert_close(matmul_padded.matmul_padded(A, B, kernel=k, tile=8), matmul_naive.reference_matmul(A, B), **F32)


@pytest.mark.parametrize("M,N,K", MATMUL_SHAPES + [(40, 37, 21)])
def test_matmul_regblock_any_shape(M, N, K):
    A, B = random_tensor((M, K), seed=9), random_tensor((K, N), seed=10)
    k = matmul_regblock.make_matmul_regblock(16, 16, 4, 4, 4)
    assert_close(matmul_regblock.matmul_regblock(A, B, kernel=k), matmul_naive.reference_matmul(A, B), **F32)


def test_matmul_regblock_rectangular_tiling():
    A, B = random_tensor((19, 11), seed=11), random_tensor((11, 23), seed=12)
    k = matmul_regblock.make_matmul_regblock(16, 32, 8, 4, 8)  # 4 x 4 threads, 4x8 micro-tiles
    assert_close(matmul_regblock.matmul_regblock(A, B, kernel=k), matmul_naive.reference_matmul(A, B), **F32)
    with pytest.raises(ValueError):
        matmul_regblock.make_matmul_regblock(16, 16, 4, 3, 4)


def test_matmul_rejects_bad_shapes():
    with pytest.raises(ValueError, match="cannot multiply"):
        matmul_naive.matmul_naive(np.ones((2, 3), np.float32), np.ones((4, 2), np.float32))


@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (33, 65), (40, 8)])
@pytest.mark.parametrize("which", ["naive", "shared", "padded"])
def test_transpose(shape, which):
    kernel = {"naive": transpose.make_transpose_naive(8, 4),
              "shared": transpose.make_transpose_shared(8, 4, pad=0),
              "padded": transpose.make_transpose_shared(8, 4, pad=1)}[which]
    a = random_tensor(shape, seed=13)
    assert_close(transpose.transpose(a, kernel=kernel), np.ascontiguousarray(a.T))


def test_transpose_default_kernel():
    a = random_tensor((33, 65), seed=14)
    assert_close(transpose.transpose(a), np.ascontiguousarray(a.T))


@pytest.mark.parametrize("stride,pad,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2)])
def test_conv2d_im2col(stride, pad, dilation):
    x = random_tensor((2, 3, 7, 6), seed=15)
    w = random_tensor((4, 3, 3, 2), seed=16)
    b = random_tensor(4, seed=17)
    got = conv_im2col.conv2d_im2col(x, w, b, stride=stride, pad=pad, dilation=dilation)
    assert_close(got, conv_im2col.reference_conv2d(x, w, b, stride, pad, dilation), **F32)


def test_im2col_layout():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    cols = conv_im2col.im2col(x, 2, 2, stride=2)
    assert cols.shape == (4, 4)
    assert np.array_equal(cols[:, 0], [0, 1, 4, 5])  # the first 2x2 window, row-major
    assert np.array_equal(cols[0], [0, 2, 8, 10])  # top-left element of each window


def test_reference_conv_matches_onnxruntime():
    """The conv oracle itself agrees with onnxruntime (the real engine)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = random_tensor((1, 2, 6, 5), seed=18)
    w = random_tensor((3, 2, 3, 3), seed=19)
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], dilations=[1, 1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {"x": x})
    assert_close(conv_im2col.reference_conv2d(x, w, None, 2, 1, 1), want, **F32)


@pytest.mark.gpu
@pytest.mark.skipif(course.CUDA_MODE != "gpu", reason="needs a real CUDA GPU (running on the simulator)")
def test_gpu_full_size_tiles():
    A, B = random_tensor((300, 257), seed=20), random_tensor((257, 129), seed=21)
    want = matmul_naive.reference_matmul(A, B)
    for f in (matmul_tiled.matmul_tiled, matmul_padded.matmul_padded, matmul_regblock.matmul_regblock):
        assert_close(f(A, B), want, rtol=1e-4, atol=1e-4)
    a = random_tensor((1000, 777), seed=22)
    for k in (transpose.transpose_naive_kernel, transpose.transpose_shared_kernel, transpose.transpose_padded_kernel):
        assert_close(transpose.transpose(a, kernel=k), np.ascontiguousarray(a.T))


def test_bench_on_the_simulator_explains_and_exits_zero(capsys):
    from kernels import bench

    if course.CUDA_MODE == "gpu":
        pytest.skip("on a GPU the bench really runs (minutes); see `python -m kernels.bench`")
    assert bench.main([]) == 0
    assert "simulator" in capsys.readouterr().out


def test_bench_goal_checks():
    from kernels import bench

    mm = {"naive": 100.0, "tiled": 600.0, "padded": 650.0, "regblock": 20_000.0, "cublas": 45_000.0}
    tr = {"copy": 3000.0, "naive": 900.0, "shared": 1800.0, "padded": 2500.0}
    assert bench.report(mm, tr, 4096, 8192) == []
    mm_bad = dict(mm, tiled=300.0, regblock=10_000.0)
    assert bench.report(mm_bad, dict(tr, padded=2000.0), 4096, 8192) == [
        "tiled_vs_naive", "regblock_vs_cublas", "padded_vs_copy"]
    assert "regblock_vs_cublas" not in bench.report(dict(mm_bad, cublas=None), tr, 64, 64)
