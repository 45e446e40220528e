"""Shape/dtype inference of the ops: symbolic batch dims, unknown shapes, errors, and the
registry's agreement with onnx's own operator schemas (attributes and arity per opset)."""
import numpy as np
import onnx.defs
import pytest

from course.errors import DTypeError, EngineError, OpAttributeError, ShapeError, UnsupportedOpError
from course.ir.types import TensorType
from course.ops import supported_ops
from course.ops.base import InferContext
from course.ops.registry import lookup

F32 = np.dtype(np.float32)
LAST_OPSET = onnx.defs.onnx_opset_version()


def infer(op, shapes, attrs=None, consts=None, opset=17, dtypes=None, n_out=1):
    k = lookup(op, opset)
    types = [None if s is False else TensorType(dtypes[i] if dtypes else F32, s) for i, s in enumerate(shapes)]
    cv = [None] * len(shapes) if consts is None else [None if c is None else np.asarray(c) for c in consts]
    return k.infer(InferContext(types, cv, k.resolve_attrs(attrs or {}), num_outputs=n_out))


def shapes_of(types):
    return [None if t is None else t.shape for t in types]


I64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731

SYMBOLIC = [  # op, input shapes, attrs, consts, expected output shapes
    ("Conv", [("N", 3, 224, 224), (64, 3, 7, 7)], {"pads": [3] * 4, "strides": [2, 2]}, None, [("N", 64, 112, 112)]),
    ("Conv", [("N", 8, "H", 16), (8, 1, 3, 3)], {"group": 8, "pads": [1] * 4}, None, [("N", 8, None, 16)]),
    ("Conv", [("N", 8, "H", "W"), (4, 8, 3, 3)], {"auto_pad": "SAME_UPPER"}, None, [("N", 4, "H", "W")]),
    ("MaxPool", [("N", 64, 112, 112)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4}, None,
     [("N", 64, 56, 56), ("N", 64, 56, 56)]),
    ("AveragePool", [("N", 4, 7, 7)], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, None, [("N", 4, 4, 4)]),
    ("GlobalAveragePool", [("N", 1280, 7, 7)], {}, None, [("N", 1280, 1, 1)]),
    ("Flatten", [("N", 1280, 1, 1)], {}, None, [("N", 1280)]),
    ("Flatten", [("N", 3, 4)], {"axis": 0}, None, [(1, None)]),
    ("Reshape", [("N", 1280, 1, 1), (2,)], {}, [None, I64(-1, 1280)], [("N", 1280)]),
    ("Reshape", [("N", 64, 7, 7), (2,)], {}, [None, I64(0, -1)], [("N", 3136)]),
    ("Reshape", [("N", 64, 7, 7), (2,)], {}, [None, None], [(None, None)]),
    ("Gemm", [("N", 1280), (1000, 1280), (1000,)], {"transB": 1}, None, [("N", 1000)]),
    ("MatMul", [("B", "T", 64), (64, 32)], {}, None, [("B", "T", 32)]),
    ("BatchNormalization", [("N", 8, "H", "W"), (8,), (8,), (8,), (8,)], {}, None, [("N", 8, "H", "W")]),
    ("Add", [("N", 8, 1, 1), (8, 5, 5)], {}, None, [("N", 8, 5, 5)]),
    ("Concat", [("N", 3, 5), ("N", 4, 5)], {"axis": 1}, None, [("N", 7, 5)]),
    ("Softmax", [("N", 10)], {}, None, [("N", 10)]),
    ("Transpose", [("N", 3, 5)], {"perm": [0, 2, 1]}, None, [("N", 5, 3)]),
    ("Unsqueeze", [("N", 3), (1,)], {}, [None, I64(1)], [("N", 1, 3)]),
    ("Squeeze", [("N", 1, 3), (1,)], {}, [None, I64(1)], [("N", 3)]),
    ("Slice", [("N", 10), (1,), (1,), (1,)], {}, [None, I64(2), I64(-1), I64(1)], [("N", 7)]),
    ("Split", [("N", 6), (2,)], {"axis": 1}, [None, I64(2, 4)], [("N", 2), ("N", 4)]),
    ("Gather", [(5, 4), ("N", 3)], {"axis": 0}, None, [("N", 3, 4)]),
    ("Pad", [("N", 3, 4), (6,)], {}, [None, I64(0, 1, 2, 0, 1, 2)], [("N", 5, 8)]),
    ("Shape", [("N", 3, 4)], {}, None, [(3,)]),
]


@pytest.mark.parametrize("op,shapes,attrs,consts,want", SYMBOLIC, ids=[f"{c[0]}{i}" for i, c in enumerate(SYMBOLIC)])
def test_symbolic_dims_flow(op, shapes, attrs, consts, want):
    dtypes = [np.dtype(np.int64) if op == "Gather" and i == 1 else F32 for i in range(len(shapes))]
    got = infer(op, shapes, attrs, consts, dtypes=dtypes, n_out=len(want))
    assert shapes_of(got)[: len(want)] == want


def test_dtypes_inferred():
    assert infer("Shape", [(2, 3)])[0].dtype == np.int64
    assert infer("Cast", [(2,)], {"to": 7})[0].dtype == np.int64
    assert infer("MaxPool", [(1, 1, 4, 4)], {"kernel_shape": [2, 2]})[1].dtype == np.int64
    assert infer("Dropout", [(3,)], opset=13)[1].dtype == np.bool_
    assert infer("QuantizeLinear", [(3,), (), ()], opset=13, dtypes=[F32, F32, np.dtype(np.int8)])[0].dtype == np.int8
    assert infer("QuantizeLinear", [(3,), ()], opset=13)[0].dtype == np.uint8
    assert infer("DequantizeLinear", [(3,), ()], opset=13, dtypes=[np.dtype(np.int8), F32])[0].dtype == F32
    assert infer("ConvInteger", [(1, 1, 3, 3), (1, 1, 2, 2)], opset=10,
                 dtypes=[np.dtype(np.uint8)] * 2)[0].dtype == np.int32
    assert infer("ConstantOfShape", [(2,)], {"value": np.array([1], np.int32)}, [I64(2, 5)])[0] == \
        TensorType(np.int32, (2, 5))


ERRORS = [  # op, shapes, attrs, consts, error class
    ("Conv", [(1, 3, 8, 8), (4, 2, 3, 3)], {}, None, ShapeError),  # 3 channels vs 2 x group 1
    ("Conv", [(1, 3, 8, 8), (4, 3, 3)], {}, None, ShapeError),
    ("Conv", [(1, 3, 2, 2), (4, 3, 3, 3)], {}, None, ShapeError),  # kernel larger than input
    ("Conv", [(1, 3, 8, 8), (4, 3, 3, 3)], {"auto_pad": "SAME"}, None, OpAttributeError),
    ("MaxPool", [(1, 3, 8, 8)], {"kernel_shape": [2]}, None, ShapeError),
    ("Reshape", [(2, 3), (2,)], {}, [None, I64(4, -1)], ShapeError),
    ("Reshape", [(2, 3), (2,)], {}, [None, I64(-1, -1)], ShapeError),
    ("Gemm", [(2, 3), (4, 5)], {}, None, ShapeError),
    ("MatMul", [(2, 3), (4, 5)], {}, None, ShapeError),
    ("Add", [(2, 3), (4,)], {}, None, ShapeError),
    ("Concat", [(2, 3), (2, 4)], {"axis": 0}, None, ShapeError),
    ("Concat", [(2, 3), (2, 4)], {"axis": 2}, None, OpAttributeError),
    ("Softmax", [(2, 3)], {"axis": 2}, None, OpAttributeError),
    ("Transpose", [(2, 3)], {"perm": [0, 0]}, None, OpAttributeError),
    ("Squeeze", [(2, 3), (1,)], {}, [None, I64(0)], ShapeError),
    ("Split", [(5, 2), (2,)], {}, [None, I64(2, 2)], ShapeError),
    ("Cast", [(2,)], {"to": 16}, None, DTypeError),  # bfloat16: not an engine type
]


@pytest.mark.parametrize("op,shapes,attrs,consts,err", ERRORS, ids=[f"{c[0]}{i}" for i, c in enumerate(ERRORS)])
def test_bad_nodes_raise_engine_errors(op, shapes, attrs, consts, err):
    with pytest.raises(err) as info:
        infer(op, shapes, attrs, consts, n_out=2 if op == "Split" else 1)
    assert "node" not in str(info.value)  # the IR prepends the node name, ops do not


def test_mixed_dtypes_and_bad_attributes():
    with pytest.raises(DTypeError, match="float32, int64"):
        infer("Add", [(2,), (2,)], dtypes=[F32, np.dtype(np.int64)])
    with pytest.raises(OpAttributeError, match="unknown attribute"):
        lookup("Relu", 14).resolve_attrs({"alpha": 1.0})
    with pytest.raises(OpAttributeError, match="required attribute 'to'"):
        lookup("Cast", 13).resolve_attrs({})
    with pytest.raises(UnsupportedOpError):
        lookup("Conv", 0)


MINIMAL_ATTRS = {"Cast": {"to": 1}, "Concat": {"axis": 0}, "LRN": {"size": 3}, "MaxPool": {"kernel_shape": [2, 2]},
                 "AveragePool": {"kernel_shape": [2, 2]}, "Constant": {"value": np.zeros(2, np.float32)},
                 "Split": {"num_outputs": 2}}


@pytest.mark.parametrize("op", supported_ops())
def test_unknown_shapes_never_crash_inference(op):
    k = lookup(op, 18)
    n = k.num_inputs[0] or 0
    dts = [np.dtype(np.uint8) if "Integer" in op or op.startswith("QLinear") or op == "DequantizeLinear" else F32] * n
    if op == "Gather":
        dts[1] = np.dtype(np.int64)
    ctx = InferContext([TensorType(d, None) for d in dts], [None] * n, k.resolve_attrs(MINIMAL_ATTRS.get(op, {})))
    try:
        out = k.infer(ctx)
    except EngineError:
        return
    assert all(t is None or isinstance(t, TensorType) for t in out)


def _versions():
    for op in supported_ops():
        for v in range(7, LAST_OPSET + 1):
            try:
                schema = onnx.defs.get_schema(op, v)
            except onnx.defs.SchemaError:
                continue
            yield op, v, schema


@pytest.mark.parametrize("op", supported_ops())
def test_registry_matches_onnx_schemas(op):
    """For every opset from 7 up, the kernel takes exactly the schema's attributes and arity."""
    checked = 0
    for name, v, schema in _versions():
        if name != op:
            continue
        k = lookup(op, v)
        want = set(schema.attributes) - {"consumed_inputs"}
        assert set(k.attrs) == want, f"{op}-{v}: kernel attrs {sorted(k.attrs)} != schema {sorted(want)}"
        lo, hi = k.num_inputs
        assert lo == schema.min_input, f"{op}-{v}: min inputs {lo} != {schema.min_input}"
        assert (hi if hi is not None else 2 ** 31 - 1) == schema.max_input, f"{op}-{v}: max inputs"
        lo, hi = k.num_outputs
        assert lo == schema.min_output and (hi if hi is not None else 2 ** 31 - 1) == schema.max_output, \
            f"{op}-{v}: outputs ({lo}, {hi}) != ({schema.min_output}, {schema.max_output})"
        checked += 1
    assert checked > 0
