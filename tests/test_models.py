"""The six model builders: valid ONNX in the engine's op set, the architecture each claims, sane
activation scales, seeded weights; and the engine's logits against onnxruntime on every model.

Relative error, used throughout: ``max|ours - ort| / max|ort|`` over the logits tensor (one
scale for the whole tensor, so logits near zero do not blow it up). Bound: 1e-4.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from course.bench import relative_error
from course.models import MODEL_NAMES, MODELS, build_model

# The op set the engine implements (course/ops); the builders must stay inside it.
ENGINE_OPS = set(
    "Abs Add AveragePool BatchNormalization Cast Clip Concat Constant ConstantOfShape Conv "
    "ConvInteger DequantizeLinear Div Dropout Exp Flatten Gather Gemm GlobalAveragePool "
    "GlobalMaxPool Identity LeakyRelu LRN MatMul MatMulInteger MaxPool Mul Neg Pad QLinearConv "
    "QLinearMatMul QuantizeLinear Reciprocal Relu Reshape Shape Sigmoid Slice Softmax Split Sqrt "
    "Squeeze Sub Sum Tanh Transpose Unsqueeze".split())
REL_TOL = 1e-4
SMALL = dict(image_size=32, num_classes=10, width=0.25)  # quick variants


@pytest.fixture(scope="module")
def full_models():
    cache: dict[str, onnx.ModelProto] = {}

    def get(name):
        if name not in cache:
            cache[name] = MODELS[name]()
        return cache[name]

    return get


def image(batch=1, size=224, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def ort_run(model, x, outputs=None):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(outputs, {"input": x})


def ops_of(model):
    return [n.op_type for n in model.graph.node]


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


# ---- the models themselves -------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_is_valid_onnx_in_engine_op_set(name, full_models):
    model = full_models(name)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert set(ops_of(model)) <= ENGINE_OPS, set(ops_of(model)) - ENGINE_OPS
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, dims(inp)) == ("input", [1, 3, 224, 224])
    assert (out.name, dims(out)) == ("logits", [1, 1000])
    assert len({n.name for n in model.graph.node}) == len(model.graph.node), "node names unique"


def _has_chain(model, *op_types):
    """True if some node of op_types[0] feeds one of op_types[1] directly, and so on."""
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def walk(node, rest):
        if not rest:
            return True
        return any(c.op_type == rest[0] and walk(c, rest[1:])
                   for o in node.output for c in consumers.get(o, []))

    return any(n.op_type == op_types[0] and walk(n, op_types[1:]) for n in model.graph.node)


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _initializer(model, name):
    return next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == name)


def _depthwise_convs(model):
    out = []
    for n in model.graph.node:
        if n.op_type == "Conv" and _attr(n, "group", 1) > 1:
            w = _initializer(model, n.input[1])
            out.append((n, w.shape))
    return out


def check_resnet(m):
    ops = ops_of(m)
    assert ops.count("Conv") == 20 and ops.count("BatchNormalization") == 20  # 17 + 3 shortcuts
    assert ops.count("Add") == 8, "eight basic blocks, one residual Add each"
    assert _has_chain(m, "BatchNormalization", "Add", "Relu")
    assert ops[:4] == ["Conv", "BatchNormalization", "Relu", "MaxPool"]
    assert ops[-3:] == ["GlobalAveragePool", "Flatten", "Gemm"]


def check_inception(m):
    ops = ops_of(m)
    assert ops.count("LRN") == 2
    concats = [n for n in m.graph.node if n.op_type == "Concat"]
    assert len(concats) == 7 and all(len(n.input) == 4 for n in concats), "4-branch modules"
    kernels = {tuple(_attr(n, "kernel_shape")) for n in m.graph.node if n.op_type == "Conv"}
    assert {(1, 1), (3, 3), (5, 5), (7, 7)} <= kernels
    assert _has_chain(m, "MaxPool", "Conv", "Relu", "Concat"), "pool-projection branch"


def check_densenet(m):
    ops = ops_of(m)
    assert ops.count("AveragePool") == 3, "transitions between four dense blocks"
    assert ops.count("Concat") == 6 + 12 + 16 + 8
    assert _has_chain(m, "Concat", "BatchNormalization", "Relu", "Conv")
    channels = [_initializer(m, n.input[1]).shape[1] for n in m.graph.node
                if n.op_type == "Conv" and _attr(n, "kernel_shape") == [1, 1]]
    assert channels[:3] == [64, 96, 128], "each layer sees 32 more channels (growth rate)"


def check_mobilenetv2(m):
    dw = _depthwise_convs(m)
    assert len(dw) == 17 and all(shape[1] == 1 and _attr(n, "group") == shape[0]
                                 for n, shape in dw), "17 depthwise convs, group == channels"
    clips = [n for n in m.graph.node if n.op_type == "Clip"]
    assert clips and all(len(n.input) == 3 for n in clips), "ReLU6 as Clip with min/max inputs"
    lo, hi = (float(_initializer(m, clips[0].input[i])) for i in (1, 2))
    assert (lo, hi) == (0.0, 6.0)
    assert ops_of(m).count("Add") == 10, "residual Adds where stride 1 and channels match"
    assert "Relu" not in ops_of(m)
    assert _has_chain(m, "Conv", "BatchNormalization", "Add"), "linear bottleneck into the Add"


def check_squeezenet(m):
    pools = [n for n in m.graph.node if n.op_type == "MaxPool"]
    assert len(pools) == 3 and all(_attr(n, "ceil_mode") == 1 for n in pools)
    assert ops_of(m).count("Concat") == 8, "eight fire modules"
    assert "Dropout" in ops_of(m) and "Gemm" not in ops_of(m)
    assert ops_of(m)[-4:] == ["Conv", "Relu", "GlobalAveragePool", "Flatten"]


def check_shufflenet(m):
    assert _has_chain(m, "Concat", "Reshape", "Transpose", "Reshape"), "channel shuffle"
    tr = [n for n in m.graph.node if n.op_type == "Transpose"]
    assert len(tr) == 16 and all(_attr(n, "perm") == [0, 2, 1, 3, 4] for n in tr)
    splits = [n for n in m.graph.node if n.op_type == "Split"]
    assert len(splits) == 13 and all(len(n.output) == 2 for n in splits)
    assert len(_depthwise_convs(m)) == 16 + 3


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_has_its_architecture(name, full_models):
    globals()[f"check_{name}"](full_models(name))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_activations_neither_explode_nor_vanish(name, full_models):
    """Every intermediate tensor's RMS stays within [0.1, 50] for a unit-variance input."""
    model = onnx.ModelProto()
    model.CopyFrom(full_models(name))
    inferred = onnx.shape_inference.infer_shapes(model)
    model.graph.output.extend(inferred.graph.value_info)
    sess_outs = ort_run(model, image())
    names = [o.name for o in model.graph.output]
    rms = {n: float(np.sqrt(np.mean(np.square(v, dtype=np.float64))))
           for n, v in zip(names, sess_outs) if v.dtype == np.float32}
    assert len(rms) > 50
    bad = {n: r for n, r in rms.items() if not 0.1 <= r <= 50}
    assert not bad, f"activation scale out of range: {bad}"
    logits = sess_outs[0]
    assert np.isfinite(logits).all() and logits.std() > 0.1


def test_builders_are_seeded():
    a, b = build_model("resnet", seed=3, **SMALL), build_model("resnet", seed=3, **SMALL)
    assert a.SerializeToString() == b.SerializeToString()
    c = build_model("resnet", seed=4, **SMALL)
    assert ops_of(a) == ops_of(c)
    assert a.graph.initializer[0].raw_data != c.graph.initializer[0].raw_data
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg")


class LRN(OpRun):
    """LRN exactly as the ONNX spec writes it. onnx 1.23's reference LRN loops ``for c in
    range(x.shape[0])`` (the batch axis), so at batch 1 only channel 0 gets its square sum;
    onnxruntime follows the spec (checked in test_spec_lrn_matches_onnxruntime)."""

    op_domain = ""

    def _run(self, x, alpha=None, beta=None, bias=None, size=None):
        lo, hi = (size - 1) // 2, -(-(size - 1) // 2)  # floor and ceil of (size - 1) / 2
        sq = np.square(x.astype(np.float64))
        window = np.zeros_like(sq)
        for c in range(x.shape[1]):
            window[:, c] = sq[:, max(0, c - lo):c + hi + 1].sum(axis=1)
        return ((x / (bias + alpha / size * window) ** beta).astype(x.dtype),)


def test_spec_lrn_matches_onnxruntime():
    node = onnx.helper.make_node("LRN", ["input"], ["y"], size=5, alpha=0.02, beta=0.75, bias=1.0)
    x = image(size=5) * 3
    graph = onnx.helper.make_graph(
        [node], "lrn", [onnx.helper.make_tensor_value_info("input", 1, list(x.shape))],
        [onnx.helper.make_tensor_value_info("y", 1, list(x.shape))])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                   ir_version=8)
    ours = ReferenceEvaluator(model, new_ops=[LRN]).run(None, {"input": x})[0]
    assert relative_error(ort_run(model, x)[0], ours) <= 1e-6
    assert relative_error(ours, x) > 1e-2  # the alpha chosen makes the normalisation visible


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_small_variant_agrees_with_onnx_reference(name):
    """A 32x32 / 10-class / width 0.25 variant: onnxruntime and onnx's reference evaluator agree
    (so the models do not lean on one runtime's reading of the spec, e.g. ceil_mode pooling)."""
    model = build_model(name, **SMALL)
    onnx.checker.check_model(model, full_check=True)
    x = image(size=32, seed=2)
    want = ReferenceEvaluator(model, new_ops=[LRN]).run(None, {"input": x})[0]
    got = ort_run(model, x)[0]
    assert got.shape == (1, 10)
    assert relative_error(got, want) <= REL_TOL


def test_symbolic_batch_model_shape():
    model = build_model("mobilenetv2", batch="N")
    onnx.checker.check_model(model, full_check=True)
    assert dims(model.graph.input[0]) == ["N", 3, 224, 224]
    assert dims(model.graph.output[0]) == ["N", 1000]


# ---- the engine against onnxruntime ----------------------------------------------------------
@pytest.fixture(scope="module")
def engine():
    import course

    try:
        return course.InferenceSession
    except (AttributeError, ImportError) as e:  # the engine is part of the product: fail, not skip
        pytest.fail(f"course.InferenceSession is not available: {e!r}")


def engine_run(engine, model, x, **kwargs):
    sess = engine(model, **kwargs)
    assert [i.name for i in sess.get_inputs()] == ["input"]
    (y,) = sess.run(None, {"input": x})
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    return y


@pytest.mark.parametrize("providers", [None, ["ReferenceExecutionProvider"]], ids=["default", "reference"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_engine_matches_onnxruntime(name, providers, engine, full_models):
    model, x = full_models(name), image()
    want = ort_run(model, x)[0]
    got = engine_run(engine, model, x, providers=providers)
    assert got.shape == want.shape == (1, 1000)
    err = relative_error(got, want)
    assert err <= REL_TOL, f"{name}: relative error {err:.3g} > {REL_TOL}"
    assert int(got.argmax()) == int(want.argmax())


def test_engine_symbolic_batch_of_two(engine):
    model = build_model("shufflenet", batch="N")
    x = image(batch=2, seed=5)
    want = ort_run(model, x)[0]
    got = engine_run(engine, model, x)
    assert got.shape == want.shape == (2, 1000)
    assert relative_error(got, want) <= REL_TOL
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    # each row is that image alone: batching must not mix samples
    alone = engine_run(engine, model, x[1:])
    assert relative_error(alone[0], want[1]) <= REL_TOL


# ---- the comparison above has teeth: plausible kernel mistakes move the logits past REL_TOL ---
def _wrong(op_type, make):
    """A wrong kernel for op_type, built from the engine's own one (custom_kernels hook)."""
    from course.ops import registry

    return op_type, make(registry.lookup(op_type, 17).compute)


WRONG_KERNELS = {
    "mobilenetv2": _wrong("Clip", lambda k: lambda x, lo=None, hi=None, **a: k(x, lo, None, **a)),
    "resnet": _wrong("BatchNormalization",  # scale and bias swapped
                     lambda k: lambda x, s, b, m, v, **a: k(x, b, s, m, v, **a)),
    "inception": _wrong("LRN",  # alpha used as is instead of alpha / size
                        lambda k: lambda x, **a: k(x, **{**a, "alpha": a["alpha"] * a["size"]})),
    "squeezenet": _wrong("MaxPool", lambda k: lambda x, **a: k(x, **{**a, "ceil_mode": 0})),
    "shufflenet": _wrong("Split", lambda k: lambda x, s=None, **a: tuple(reversed(k(x, s, **a)))),
    "densenet": _wrong("Concat", lambda k: lambda *xs, **a: k(*reversed(xs), **a)),
}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_models_expose_a_plausible_kernel_mistake(name, engine, full_models):
    import course

    op_type, fn = WRONG_KERNELS[name]
    model, x = full_models(name), image()
    want = ort_run(model, x)[0]
    try:
        (got,) = engine(model, custom_kernels={op_type: fn}).run(None, {"input": x})
    except course.EngineError:
        return  # caught by the engine's own checks (e.g. an output shape that cannot be right)
    assert relative_error(got, want) > 10 * REL_TOL, f"a wrong {op_type} went unnoticed on {name}"
