"""The CPU provider's AveragePool and (non-3x3) MaxPool against the reference definitions: every
attribute, 1-3 spatial dims, awkward sizes; AveragePool's summation order differs (taps one by
one vs a pairwise sum), so it allows a few ulps of the window's sum; MaxPool is exact."""
import numpy as np
import pytest

from course.ops.registry import lookup
from course.providers import NodeSpec
from course.providers.cpu import CPUExecutionProvider
from course.providers.cpu.pooling import average_pool, max_pool

CASES = [  # (input shape, attributes)
    ((1, 3, 8, 8), dict(kernel_shape=[2, 2], strides=[2, 2])),  # DenseNet's transitions
    ((2, 4, 7, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ((2, 4, 7, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    ((1, 2, 10, 6), dict(kernel_shape=[3, 2], strides=[3, 2], ceil_mode=1)),
    ((1, 2, 10, 6), dict(kernel_shape=[3, 2], strides=[3, 2], pads=[0, 1, 2, 0], ceil_mode=1, count_include_pad=1)),
    ((1, 2, 11, 11), dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 1, 1, 2])),
    ((1, 2, 9, 9), dict(kernel_shape=[4, 4], auto_pad="SAME_UPPER", strides=[2, 2])),
    ((3, 2, 13), dict(kernel_shape=[4], strides=[3], pads=[2, 1])),
    ((1, 2, 5, 6, 7), dict(kernel_shape=[2, 3, 2], strides=[1, 2, 2], pads=[1, 0, 1, 0, 1, 1])),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, attrs", CASES)
def test_average_pool_matches_the_reference(shape, attrs, dtype):
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    want = lookup("AveragePool", 19).compute(x, **attrs)
    got = average_pool(x, **attrs)
    assert got.dtype == want.dtype and got.shape == want.shape
    k = int(np.prod(attrs["kernel_shape"]))
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(got, want, rtol=4 * k * eps, atol=4 * k * eps * np.abs(x).max())


MAX_ATTRS = [{k: v for k, v in a.items() if k != "count_include_pad"} for _, a in CASES]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("i", range(len(CASES)))
def test_max_pool_matches_the_reference_exactly(i, dtype):
    shape, attrs = CASES[i][0], MAX_ATTRS[i]
    x = np.random.default_rng(i).standard_normal(shape).astype(dtype)
    x.flat[::7] = np.nan if i % 2 else x.flat[::7]  # NaN wins, as np.maximum and the reference say
    want = lookup("MaxPool", 12).compute(x, **attrs)
    got = max_pool(x, **attrs)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_the_provider_claims_float_average_pools_and_runs_them():
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    attrs = {"auto_pad": "NOTSET", "kernel_shape": [2, 2], "pads": None, "strides": [2, 2],
             "count_include_pad": 0, "ceil_mode": 0, "dilations": None}
    f32 = NodeSpec("pool", "AveragePool", "", 19, attrs, [(np.dtype(np.float32), x.shape)],
                   [(np.dtype(np.float32), (1, 3, 4, 4))])
    cpu = CPUExecutionProvider()
    assert cpu.claims(f32)
    f16 = NodeSpec("pool", "AveragePool", "", 19, attrs, [(np.dtype(np.float16), x.shape)],
                   [(np.dtype(np.float16), (1, 3, 4, 4))])
    assert not cpu.claims(f16)  # float16 stays with the reference
    got = cpu.kernel(f32)(x)
    np.testing.assert_allclose(got, x.reshape(1, 3, 4, 2, 4, 2).mean(axis=(3, 5)), rtol=1e-6, atol=1e-6)


def test_the_provider_claims_max_pools_without_indices():
    cpu = CPUExecutionProvider()
    f32, i64 = np.dtype(np.float32), np.dtype(np.int64)

    def spec(kernel, dtype=f32, outputs=1):
        attrs = {"auto_pad": "NOTSET", "kernel_shape": kernel, "pads": None, "strides": None, "storage_order": 0,
                 "ceil_mode": 0, "dilations": None, "_num_outputs": outputs}
        outs = [(dtype, (1, 2, 3, 3))] + ([(i64, (1, 2, 3, 3))] if outputs == 2 else [])
        return NodeSpec("p", "MaxPool", "", 12, attrs, [(dtype, (1, 2, 4, 4))], outs)
    assert cpu.claims(spec([2, 2])) and cpu.claims(spec([3, 3])) and cpu.claims(spec([2, 2], np.dtype(np.float64)))
    assert not cpu.claims(spec([2, 2], outputs=2))  # Indices: the reference's
    assert not cpu.claims(spec([2, 2], np.dtype(np.int8)))
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    np.testing.assert_array_equal(cpu.kernel(spec([2, 2]))(x), lookup("MaxPool", 12).compute(x, kernel_shape=[2, 2]))


# --- prepared kernels: the geometry kept per input shape ------------------------------------------
PREPARED_SHAPES = [  # one node's kernel called on these in turn: a new shape, then an old one again
    (1, 3, 8, 8), (2, 3, 11, 7), (1, 3, 8, 8), (1, 1, 5, 13)]


def _node_kernel(op_type, attrs, dtype, cpu=None):
    full = {"auto_pad": "NOTSET", "pads": None, "strides": None, "ceil_mode": 0, "dilations": None, **attrs}
    if op_type == "MaxPool":
        full = {**full, "storage_order": 0, "_num_outputs": 1}
    else:
        full = {"count_include_pad": 0, **full}
    spec = NodeSpec("pool", op_type, "", 19 if op_type == "AveragePool" else 12, full,
                    [(np.dtype(dtype), ("N", "C", "H", "W"))], [(np.dtype(dtype), None)])
    cpu = cpu or CPUExecutionProvider()
    assert cpu.claims(spec)
    return cpu.kernel(spec), cpu.kernel_into(spec), full


PREPARED_ATTRS = [  # 2-D cases of CASES that fit every shape above, and the 3x3 compiled MaxPool
    dict(kernel_shape=[2, 2], strides=[2, 2]),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    dict(kernel_shape=[3, 2], strides=[3, 2], pads=[0, 1, 2, 0], ceil_mode=1),
    dict(kernel_shape=[2, 2], dilations=[2, 3], pads=[2, 1, 1, 2]),
    dict(kernel_shape=[1, 1], strides=[2, 1]),
    dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    dict(kernel_shape=[2, 3], auto_pad="SAME_LOWER", strides=[2, 2]),
]


PREPARED_CASES = [(op, attrs, dtype) for op in ("MaxPool", "AveragePool") for attrs in PREPARED_ATTRS
                  for dtype in (np.float32, np.float64)
                  if not (op == "MaxPool" and attrs["kernel_shape"] == [3, 3] and dtype == np.float64)]  # not claimed


@pytest.mark.parametrize("op_type, attrs, dtype", PREPARED_CASES)
def test_a_prepared_pool_follows_the_reference_across_changing_shapes(op_type, attrs, dtype):
    attrs = {k: v for k, v in attrs.items() if op_type == "AveragePool" or k != "count_include_pad"}
    kernel, into, full = _node_kernel(op_type, attrs, dtype)
    ref = lookup(op_type, 19 if op_type == "AveragePool" else 12)
    for i, shape in enumerate(PREPARED_SHAPES):
        x = np.random.default_rng(i).standard_normal(shape).astype(dtype)
        if op_type == "MaxPool" and i == 1:
            x.flat[::5] = np.nan  # NaN wins, as np.maximum and the reference say
        want = ref.compute(x, **full)
        got = kernel(x)
        assert got.dtype == want.dtype and got.shape == want.shape
        view = np.full(want.shape, 7.0, dtype=dtype)  # destination passing: written in full
        into(x, out=(view,))
        for y in (got, view):
            if op_type == "MaxPool":
                np.testing.assert_array_equal(y, want)
            else:
                np.testing.assert_allclose(y, want, rtol=40 * np.finfo(dtype).eps, atol=1e-12)


def test_a_prepared_pool_reads_strided_inputs_and_ignores_unfit_destinations():
    kernel, _, full = _node_kernel("MaxPool", dict(kernel_shape=[2, 2], strides=[1, 2], pads=[1, 0, 0, 1]),
                                   np.float32)
    x = np.random.default_rng(3).standard_normal((2, 6, 9, 10)).astype(np.float32)[:, ::2, 1:, ::-1]
    want = lookup("MaxPool", 12).compute(x, **full)
    np.testing.assert_array_equal(kernel(x), want)
    wrong = np.zeros(want.shape, dtype=np.float64)  # not the output's dtype: a new array instead
    got = kernel(x, out=wrong)
    assert got is not wrong and not wrong.any()
    np.testing.assert_array_equal(got, want)


def test_a_prepared_pool_raises_the_references_error_for_a_window_that_does_not_fit():
    kernel, _, _ = _node_kernel("AveragePool", dict(kernel_shape=[4, 4]), np.float32)
    kernel(np.ones((1, 1, 4, 4), np.float32))
    with pytest.raises(Exception, match="does not fit"):
        kernel(np.ones((1, 1, 3, 8), np.float32))
