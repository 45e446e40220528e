"""The shipped digits CNN: its data split, its file, its accuracy, and the engine's agreement with
onnxruntime on the whole test set. Also checks that the training script's exporter writes the
network it trained (numpy forward pass == onnxruntime on the exported graph)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from course.bench import relative_error
from course.models import digits_model_path, load_digits_split
from course.models.digits import NOTE_FILE


@pytest.fixture(scope="module")
def split():
    return load_digits_split()


@pytest.fixture(scope="module")
def ort_logits(split):
    sess = ort.InferenceSession(str(digits_model_path()), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": split.x_test})[0]


def test_split_is_fixed_stratified_and_disjoint(split):
    assert split.x_train.shape == (1347, 1, 8, 8) and split.x_test.shape == (450, 1, 8, 8)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert 0.0 <= split.x_test.min() and split.x_test.max() == 1.0
    again = load_digits_split()
    assert np.array_equal(again.x_test, split.x_test) and np.array_equal(again.y_test, split.y_test)
    per_class = np.bincount(np.concatenate([split.y_train, split.y_test]))
    assert np.abs(np.bincount(split.y_test) - 0.25 * per_class).max() <= 1, "stratified"
    train_rows = {r.tobytes() for r in split.x_train}
    assert sum(r.tobytes() in train_rows for r in split.x_test) < 5  # digits has a few duplicates
    other = load_digits_split(seed=1)
    assert not np.array_equal(other.y_test, split.y_test)


def test_model_file_interface():
    model = onnx.load(digits_model_path())
    onnx.checker.check_model(model, full_check=True)
    (inp,), (out,) = model.graph.input, model.graph.output
    shape = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa
    assert (inp.name, shape(inp)) == ("input", ["N", 1, 8, 8])
    assert (out.name, shape(out)) == ("logits", ["N", 10])
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("BatchNormalization") == 2 and ops.count("Conv") == 2  # for folding/pruning
    assert digits_model_path().stat().st_size < 1_000_000


def test_onnxruntime_accuracy_matches_the_note(split, ort_logits):
    acc = float((ort_logits.argmax(axis=1) == split.y_test).mean())
    note = json.loads(NOTE_FILE.read_text())
    assert acc >= 0.97
    assert acc == pytest.approx(note["test_accuracy_onnxruntime"], abs=1e-12)
    assert note["split"]["n_test"] == len(split.y_test)


@pytest.fixture(scope="module")
def engine():
    import course

    try:
        return course.InferenceSession
    except (AttributeError, ImportError) as e:  # the engine is part of the product: fail, not skip
        pytest.fail(f"course.InferenceSession is not available: {e!r}")


def test_engine_accuracy_and_predictions(engine, split, ort_logits):
    sess = engine(str(digits_model_path()))
    assert [i.name for i in sess.get_inputs()] == ["input"]
    (logits,) = sess.run(None, {"input": split.x_test})
    assert logits.shape == (450, 10) and logits.dtype == np.float32
    assert relative_error(logits, ort_logits) <= 1e-4
    assert np.array_equal(logits.argmax(axis=1), ort_logits.argmax(axis=1))
    assert float((logits.argmax(axis=1) == split.y_test).mean()) >= 0.97


def test_engine_accepts_bytes_and_single_images(engine, split, ort_logits):
    sess = engine(digits_model_path().read_bytes())
    for i in (0, 7, 449):
        (one,) = sess.run(["logits"], {"input": split.x_test[i:i + 1]})
        assert relative_error(one[0], ort_logits[i]) <= 1e-4


def test_exporter_writes_the_trained_network(split):
    from course.models import train_digits as td

    rng = np.random.default_rng(7)
    layers = td.build_network(seed=7)
    for layer in layers:  # untrained but distinct parameters, so a swapped tensor shows
        for p in layer.params.values():
            p += rng.normal(0, 0.3, p.shape)
    td.forward(layers, split.x_train[:200].astype(np.float64), train=True)  # moves BN stats
    assert not np.allclose(layers[1].mean, 0) and not np.allclose(layers[1].var, 1)
    model = td.to_onnx(layers)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": split.x_test[:64]})[0]
    want = td.forward(layers, split.x_test[:64].astype(np.float64))
    assert relative_error(got, want) <= 1e-5
