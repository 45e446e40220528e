"""Data-movement ops (reshape, squeeze, slice, split, pad, ...) across their opset versions."""
import numpy as np
import pytest

from course.testing import random_tensor
from ops_oracle import check, engine

I64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731


@pytest.mark.parametrize("shape,spec", [((2, 3, 4), (4, 6)), ((2, 3, 4), (-1, 4)), ((2, 3, 4), (0, -1)),
                                        ((2, 3, 4), (0, 0, 2, 2)), ((2, 3, 4), (24,)), ((4,), (2, 1, 2))])
@pytest.mark.parametrize("opset", [5, 14])
def test_reshape(shape, spec, opset):
    check("Reshape", [random_tensor(shape, seed=1), I64(*spec)], {}, opset=opset, consts=(1,))


def test_reshape_allowzero():
    x = np.zeros((0, 3), dtype=np.float32)
    check("Reshape", [x, I64(3, 0)], {"allowzero": 1}, opset=14, consts=(1,))


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3, 4])
def test_flatten(axis):
    check("Flatten", [random_tensor((2, 3, 4, 5), seed=2)], {"axis": axis}, opset=13)


@pytest.mark.parametrize("axes", [None, [0], [2, 0], [-1]])
def test_squeeze_both_forms(axes):
    x = random_tensor((1, 3, 1, 1), seed=3)
    check("Squeeze", [x], {} if axes is None else {"axes": axes}, opset=11)
    check("Squeeze", [x] + ([] if axes is None else [I64(*axes)]), {}, opset=13, consts=(1,))


@pytest.mark.parametrize("axes", [[0], [1, 3], [-1], [3, 0], [-2, 1]])
def test_unsqueeze_both_forms(axes):
    x = random_tensor((3, 4), seed=4)
    check("Unsqueeze", [x], {"axes": axes}, opset=11)
    check("Unsqueeze", [x, I64(*axes)], {}, opset=13, consts=(1,))


@pytest.mark.parametrize("perm", [None, [0, 1, 2], [2, 0, 1], [1, 2, 0]])
def test_transpose(perm):
    check("Transpose", [random_tensor((2, 3, 4), seed=5)], {} if perm is None else {"perm": perm}, opset=13)


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_concat(axis):
    shapes = {0: [(1, 3), (2, 3), (4, 3)], 1: [(2, 1), (2, 3), (2, 2)]}[axis % 2]
    check("Concat", [random_tensor(s, seed=i) for i, s in enumerate(shapes)], {"axis": axis}, opset=13)


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("sizes", [None, [2, 4], [1, 0, 5]])
def test_split(opset, sizes):
    x = random_tensor((6, 3), seed=6)
    n = 2 if sizes is None else len(sizes)
    if opset == 11:
        inputs, attrs = [x], ({} if sizes is None else {"split": sizes})
    else:
        inputs, attrs = [x] + ([] if sizes is None else [I64(*sizes)]), {}
        if opset == 18 and sizes is None:
            attrs = {"num_outputs": n}
    check("Split", inputs, {**attrs, "axis": 0}, opset=opset, consts=(1,), n_out=n)


def test_split_uneven_last_part_opset18():
    check("Split", [random_tensor((7, 2), seed=7)], {"num_outputs": 3}, opset=18, n_out=3)


SLICES = [((0,), (2,), None, None), ((1, 0), (3, -1), (1, 2), None), ((-1,), (-100,), (0,), (-1,)),
          ((0, 5), (10**10, 1), (2, 1), (2, -2)), ((-3,), (10**18,), (-1,), None), ((2,), (1,), (0,), None)]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice_inputs(starts, ends, axes, steps):
    x = random_tensor((4, 6, 5), seed=8)
    inputs = [x, I64(*starts), I64(*ends), None if axes is None else I64(*axes), None if steps is None else I64(*steps)]
    if steps is None:
        inputs = inputs[:4] if axes is not None else inputs[:3]
    check("Slice", inputs, {}, opset=13, consts=(1, 2, 3, 4))


def test_slice_attributes_opset9():
    x = random_tensor((4, 6, 5), seed=9)
    check("Slice", [x], {"starts": [1, -4], "ends": [3, 100], "axes": [0, 2]}, opset=9)
    check("Slice", [x], {"starts": [0, 1], "ends": [2, 5]}, opset=9)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("idx", [np.array(1), np.array([0, -1, 1]), np.array([[0, 1], [-2, 0]])])
def test_gather(axis, idx):
    check("Gather", [random_tensor((3, 4, 2), seed=10), idx.astype(np.int64)], {"axis": axis}, opset=13)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_attribute_form(mode):
    check("Pad", [random_tensor((3, 4), seed=11)], {"pads": [1, 2, 2, 0], "mode": mode, "value": 1.5}, opset=2)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", [[0, 1, 2, 1, 0, 1], [1, -1, 0, 0, 2, -1]])
def test_pad_input_form(mode, pads):
    x = random_tensor((2, 4, 3), seed=12)
    check("Pad", [x, I64(*pads), np.array(0.25, np.float32)], {"mode": mode}, opset=19, consts=(1, 2))


def test_pad_axes_input():
    x = random_tensor((2, 4, 3), seed=13)
    check("Pad", [x, I64(1, 2, 0, 1), np.array(-1.0, np.float32), I64(-1, 0)], {}, opset=18, consts=(1, 2, 3))


@pytest.mark.parametrize("attrs", [{}, {"start": 1}, {"end": -1}, {"start": -2, "end": 10}, {"start": 3, "end": 1}])
def test_shape(attrs):
    check("Shape", [random_tensor((2, 3, 4), seed=14)], attrs, opset=15, out_dtypes=[np.int64])


def test_shape_old_opset_and_identity():
    x = random_tensor((5, 1), seed=15)
    check("Shape", [x], {}, opset=13, out_dtypes=[np.int64])
    check("Identity", [x], {}, opset=13)


def test_constant_forms():
    t = random_tensor((2, 3), seed=16)
    for attrs, want in (({"value": t}, t), ({"value_float": 2.5}, np.float32(2.5)),
                        ({"value_ints": [1, 2, 3]}, I64(1, 2, 3)), ({"value_int": 7}, np.int64(7))):
        got, _, _ = engine("Constant", [], attrs, 13)
        assert got[0].dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(got[0], want)


@pytest.mark.parametrize("value", [None, np.array([3], np.int32), np.array([0.5], np.float32)])
def test_constant_of_shape(value):
    attrs = {} if value is None else {"value": value}
    dts = [np.float32 if value is None else value.dtype]
    check("ConstantOfShape", [I64(2, 0, 3) if value is not None and value.dtype == np.int32 else I64(2, 3)], attrs,
          opset=20, consts=(0,), out_dtypes=dts)


@pytest.mark.parametrize("opset", [10, 13])
def test_dropout_is_identity_with_true_mask(opset):
    x = random_tensor((3, 4), seed=17)
    got, _, _ = engine("Dropout", [x], {}, opset, n_out=2)
    np.testing.assert_array_equal(got[0], x)
    assert got[1].dtype == np.bool_ and got[1].shape == x.shape and got[1].all()
    check("Dropout", [x], {}, opset=opset)
