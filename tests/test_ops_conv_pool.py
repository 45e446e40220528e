"""Conv and pooling kernels against onnxruntime / onnx's reference, on awkward geometries."""
import numpy as np
import pytest

from course.testing import random_tensor
from ops_oracle import check, engine, sum_atol

CONV_CASES = [  # x shape, w shape, attrs
    ((1, 3, 7, 7), (4, 3, 3, 3), {}),
    ((2, 3, 9, 11), (5, 3, 3, 2), {"pads": [1, 0, 2, 1], "strides": [2, 3]}),
    ((1, 4, 10, 9), (6, 2, 3, 3), {"group": 2, "dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    ((2, 6, 8, 8), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),  # depthwise
    ((1, 8, 11, 13), (8, 1, 5, 3), {"group": 8, "strides": [2, 3], "pads": [2, 0, 1, 2]}),
    ((1, 4, 9, 9), (8, 1, 3, 3), {"group": 4}),  # channel multiplier 2: not the depthwise path
    ((1, 5, 7, 6), (7, 5, 1, 1), {}),  # 1x1
    ((2, 5, 9, 8), (3, 5, 1, 1), {"strides": [2, 3], "pads": [1, 0, 0, 1]}),
    ((1, 3, 10, 7), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 10, 7), (4, 3, 2, 4), {"auto_pad": "SAME_LOWER", "strides": [3, 2]}),
    ((1, 3, 10, 7), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 1]}),
    ((1, 2, 13), (3, 2, 4), {"strides": [3], "pads": [2, 1], "dilations": [2]}),  # 1-D
    ((1, 2, 5, 6, 4), (4, 2, 3, 2, 3), {"pads": [1, 0, 1, 1, 1, 0], "strides": [1, 2, 1]}),  # 3-D
    ((1, 4, 5, 5, 5), (4, 1, 3, 3, 3), {"group": 4, "pads": [1] * 6}),  # 3-D depthwise
    ((1, 6, 7, 7), (9, 2, 3, 1), {"group": 3, "pads": [1, 0, 0, 0], "kernel_shape": [3, 1]}),
    ((1, 3, 224 // 8, 224 // 8), (8, 3, 7, 7), {"pads": [3, 3, 3, 3], "strides": [2, 2]}),  # stem-like
]


@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_matches_onnxruntime(xs, ws, attrs, bias):
    x, w = random_tensor(xs, seed=1), random_tensor(ws, seed=2)
    inputs = [x, w] + ([random_tensor((ws[0],), seed=3)] if bias else [])
    check("Conv", inputs, attrs, opset=11, rtol=0, atol=conv_atol(x, w, bias))


def conv_atol(x, w, bias, dtype=np.float32):
    """Tolerance from the reduction length K = C/group * taps (+1 for the bias): |x|, |w|, |b| <= 1."""
    k = int(np.prod(w.shape[1:]))
    return sum_atol(k + bias, dtype, k * np.abs(x).max() * np.abs(w).max() + bias)


def test_conv_same_with_dilation_matches_reference():
    # onnxruntime rejects dilations with auto_pad SAME_*; onnx's reference evaluator does not.
    x, w = random_tensor((1, 2, 9, 8), seed=4), random_tensor((3, 2, 3, 3), seed=5)
    for mode in ("SAME_UPPER", "SAME_LOWER"):
        check("Conv", [x, w], {"auto_pad": mode, "dilations": [2, 3]}, opset=11, which="ref", rtol=0,
              atol=conv_atol(x, w, False))


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_conv_keeps_dtype(dtype):
    x, w = random_tensor((1, 3, 6, 6), dtype, seed=6), random_tensor((2, 3, 3, 3), dtype, seed=7)
    got = check("Conv", [x, w], {"pads": [1, 1, 1, 1]}, opset=11, which="ref", rtol=1e-2 if dtype == "float16" else None,
                atol=1e-2 if dtype == "float16" else None)
    assert got[0].dtype == np.dtype(dtype)


def test_conv_float32_stays_float32_and_contiguous():
    x, w = random_tensor((1, 8, 12, 12), seed=8), random_tensor((8, 1, 3, 3), seed=9)
    for attrs in ({"group": 8, "pads": [1] * 4}, {"group": 1, "pads": [1] * 4}):
        wt = w if attrs["group"] == 8 else random_tensor((8, 8, 3, 3), seed=9)
        y, _, _ = engine("Conv", [x, wt], attrs, 11)
        assert y[0].dtype == np.float32 and y[0].flags.c_contiguous


POOL_CASES = [
    ((1, 3, 9, 9), {"kernel_shape": [3, 3]}),
    ((2, 3, 10, 9), {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]}),
    ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ((1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [3, 3], "ceil_mode": 1, "pads": [1, 1, 1, 1]}),
    ((1, 2, 6, 11), {"kernel_shape": [2, 3], "strides": [2, 3], "ceil_mode": 1, "pads": [1, 0, 0, 2]}),
    ((1, 2, 9, 8), {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 2, 9, 8), {"kernel_shape": [2, 3], "auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    ((1, 2, 9, 8), {"kernel_shape": [2, 3], "auto_pad": "VALID", "strides": [2, 1]}),
    ((1, 2, 10, 9), {"kernel_shape": [2, 2], "dilations": [2, 3], "pads": [1, 1, 0, 1]}),
    ((1, 2, 10), {"kernel_shape": [3], "strides": [2], "pads": [1, 2]}),
    ((1, 2, 5, 6, 7), {"kernel_shape": [2, 2, 3], "strides": [1, 2, 2], "pads": [0, 1, 1, 1, 0, 1]}),
]


@pytest.mark.parametrize("xs,attrs", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_maxpool_matches_onnxruntime(xs, attrs):
    x = random_tensor(xs, seed=10)
    check("MaxPool", [x], attrs, opset=12)
    if len(xs) == 4 and "dilations" not in attrs:
        for order in (0, 1):  # Indices output, row- and column-major
            check("MaxPool", [x], {**attrs, "storage_order": order}, opset=12, n_out=2,
                  out_dtypes=[np.float32, np.int64])


@pytest.mark.parametrize("xs,attrs", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_averagepool_matches_onnxruntime(xs, attrs, count_include_pad):
    x = random_tensor(xs, seed=11)
    check("AveragePool", [x], {**attrs, "count_include_pad": count_include_pad}, opset=19)


def test_maxpool_integer_input_pads_with_lowest_value():
    x = random_tensor((1, 2, 5, 5), "int8", seed=12, low=-128, high=-100)  # all negative
    check("MaxPool", [x], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, opset=12)
    xu = random_tensor((1, 2, 5, 5), "uint8", seed=13, low=0, high=255)
    check("MaxPool", [xu], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, opset=12)


def test_maxpool_old_opsets():
    x = random_tensor((1, 3, 8, 8), seed=14)
    check("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}, opset=7)
    check("MaxPool", [x], {"kernel_shape": [3, 3], "storage_order": 0}, opset=8, n_out=2,
          out_dtypes=[np.float32, np.int64])
    check("AveragePool", [x], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, opset=7)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 6), (1, 2, 3, 4, 5)])
def test_global_pools(op, shape):
    check(op, [random_tensor(shape, seed=15)], {}, opset=11)
