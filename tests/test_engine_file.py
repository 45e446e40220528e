"""Engine files: build -> save -> load -> run for every model of course.models (outputs equal to
the freshly built engine's and onnxruntime's), every way a file can be bad (truncated, corrupted,
not an engine file, another version, built for a provider this process lacks), loading that
does no pass and no tactic work, and a custom op's engine round trip."""
from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T, helper as h

import course
from course.bench import relative_error
from course.errors import EngineError, EngineFileError, FeedError
from course.models import MODEL_NAMES, build_model, digits_model_path
from course.ops.base import Op
from course.providers import ExecutionProvider, KernelProvider, NodeSpec
from course.runtime import Engine, build_engine
from course.runtime import engine_file
from ir_builders import convnet, model, ort_run

SMALL = dict(image_size=32, num_classes=10, width=0.25)
REL_TOL = 1e-4


def _model(name):
    if name == "digits":
        return onnx.load(digits_model_path())
    return build_model(name, **SMALL)


def _image(name, seed=1):
    shape = (2, 1, 8, 8) if name == "digits" else (1, 3, 32, 32)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("name", [*MODEL_NAMES, "digits"])
def test_engine_file_round_trips_every_model(name, tmp_path):
    m = _model(name)
    built = build_engine(m, tune=False)
    path = tmp_path / f"{name}.engine"
    size = built.save(path)
    assert path.stat().st_size == size
    loaded = Engine.load(path)
    x = _image(name)
    want = built.run(None, {"input": x})
    got = loaded.run(None, {"input": x})
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert relative_error(got[0], ort_run(m, {"input": x})[0]) <= REL_TOL
    assert [(a.name, a.shape, a.type) for a in loaded.get_inputs()] == \
        [(a.name, a.shape, a.type) for a in built.get_inputs()]
    assert [(a.name, a.shape, a.type) for a in loaded.get_outputs()] == \
        [(a.name, a.shape, a.type) for a in built.get_outputs()]
    assert loaded.assignment() == built.assignment()
    assert loaded.get_providers() == built.get_providers()
    assert loaded.plan.arena == built.plan.arena and built.plan.arena is not None


def test_a_tuned_engine_keeps_its_tactics_and_weights_read_only(tmp_path):
    built = build_engine(build_model("resnet", **SMALL))
    assert built.tactics_report(), "a ResNet has convolutions to tune"
    built.save(tmp_path / "r.engine")
    loaded = Engine.load(tmp_path / "r.engine")
    marks = lambda e: [st.spec.marks.get("tactic") for st in e.plan.steps]  # noqa: E731
    assert marks(loaded) == marks(built) and any(marks(built))
    assert [r.to_dict() for r in loaded.tactics_report()] == [r.to_dict() for r in built.tactics_report()]
    for slot, arr in loaded.plan.constants.items():
        assert not arr.flags.writeable and np.array_equal(arr, built.plan.constants[slot])
    x = _image("resnet")
    assert np.array_equal(loaded.run(None, {"input": x})[0], built.run(None, {"input": x})[0])


def test_saving_twice_gives_the_same_bytes_and_a_readable_header(tmp_path):
    e = build_engine(convnet(), tune=False)
    e.save(tmp_path / "a.engine")
    e.save(tmp_path / "b.engine")
    raw = (tmp_path / "a.engine").read_bytes()
    assert raw == (tmp_path / "b.engine").read_bytes()
    assert raw.startswith(engine_file.MAGIC)
    header_len = struct.unpack_from("<I", raw, 12)[0]
    header = json.loads(raw[engine_file.PREFIX.size:engine_file.PREFIX.size + header_len])
    assert header["engine_version"] == course.__version__
    assert header["providers"] and {"numpy", "python"} <= set(header)


def test_a_loaded_engine_checks_feeds_as_a_session_does(tmp_path):
    build_engine(convnet(), tune=False).save(tmp_path / "c.engine")
    e = Engine.load(tmp_path / "c.engine")
    with pytest.raises(FeedError, match="missing input 'x'"):
        e.run(None, {})
    with pytest.raises(FeedError, match="dtype float64"):
        e.run(None, {"x": np.zeros((1, 3, 8, 8))})
    with pytest.raises(FeedError, match="unknown output name"):
        e.run(["nope"], {"x": np.zeros((1, 3, 8, 8), np.float32)})
    assert e.get_inputs()[0].shape == ["N", 3, 8, 8] and e.get_outputs()[0].name == "y"


# ---- bad files -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("engine") / "good.engine"
    build_engine(convnet(), tune=False).save(path)
    return path.read_bytes()


def _load_bytes(tmp_path, raw: bytes):
    path = tmp_path / "bad.engine"
    path.write_bytes(raw)
    return Engine.load(path)


@pytest.mark.parametrize("cut", [0, 5, 30, "header", "payload", -1])
def test_a_truncated_file_says_so(good_file, tmp_path, cut):
    header_len = struct.unpack_from("<I", good_file, 12)[0]
    at = {"header": engine_file.PREFIX.size + header_len // 2,
          "payload": engine_file.PREFIX.size + header_len + 100}.get(cut, cut)
    with pytest.raises(EngineFileError, match="truncated") as err:
        _load_bytes(tmp_path, good_file[:at])
    assert err.value.reason == "truncated" and isinstance(err.value, EngineError)


@pytest.mark.parametrize("where", ["header", "payload", "last byte"])
def test_a_corrupted_file_fails_its_checksum(good_file, tmp_path, where):
    header_len = struct.unpack_from("<I", good_file, 12)[0]
    at = {"header": engine_file.PREFIX.size + 3, "payload": engine_file.PREFIX.size + header_len + 9,
          "last byte": len(good_file) - 1}[where]
    bad = bytearray(good_file)
    bad[at] ^= 0x40
    with pytest.raises(EngineFileError, match="checksum") as err:
        _load_bytes(tmp_path, bytes(bad))
    assert err.value.reason == "checksum"


def test_extra_bytes_after_the_end_are_corruption(good_file, tmp_path):
    with pytest.raises(EngineFileError, match="bytes after its end") as err:
        _load_bytes(tmp_path, good_file + b"\0")
    assert err.value.reason == "corrupted"


@pytest.mark.parametrize("raw", [b"PK\x03\x04 a zip file, not an engine" * 3, b"ONNX", None])
def test_a_file_that_is_no_engine_says_so(good_file, tmp_path, raw):
    raw = raw if raw is not None else b"X" + good_file[1:]
    with pytest.raises(EngineFileError, match="not an engine file") as err:
        _load_bytes(tmp_path, raw)
    assert err.value.reason == "magic"


def test_another_format_version_says_so(good_file, tmp_path):
    bad = bytearray(good_file)
    struct.pack_into("<I", bad, 8, engine_file.FORMAT_VERSION + 1)
    with pytest.raises(EngineFileError, match=r"format version 2.*reads version 1") as err:
        _load_bytes(tmp_path, bytes(bad))
    assert err.value.reason == "version"


def _rewrite_header(raw: bytes, **changes) -> bytes:
    """The file with header fields changed and its checksum made right again (a file written by
    another engine, not a corrupted one)."""
    _, version, header_len, payload_len, _ = engine_file.PREFIX.unpack_from(raw)
    start = engine_file.PREFIX.size
    header = json.loads(raw[start:start + header_len])
    header.update(changes)
    new = json.dumps(header).encode()
    new += b" " * (-(start + len(new)) % engine_file.ALIGN)
    payload = raw[start + header_len:]
    digest = hashlib.sha256(new + payload).digest()
    return engine_file.PREFIX.pack(engine_file.MAGIC, version, len(new), payload_len, digest) + new + payload


def test_another_engine_version_says_so(good_file, tmp_path):
    with pytest.raises(EngineFileError, match="engine version 0.0.1") as err:
        _load_bytes(tmp_path, _rewrite_header(good_file, engine_version="0.0.1"))
    assert err.value.reason == "version"


def test_a_file_for_a_provider_this_process_lacks_says_which(good_file, tmp_path):
    raw = _rewrite_header(good_file, providers=["TPUExecutionProvider"],
                          session_providers=["TPUExecutionProvider", "ReferenceExecutionProvider"])
    with pytest.raises(EngineFileError, match="TPUExecutionProvider.*lacks") as err:
        _load_bytes(tmp_path, raw)
    assert err.value.reason == "device"


class FakeDevice(ExecutionProvider):
    """A provider of this test only: claims Relu."""

    name = "FakeDeviceExecutionProvider"

    def claims(self, spec: NodeSpec) -> bool:
        return spec.op_type == "Relu"

    def kernel(self, spec: NodeSpec):
        return lambda x: np.maximum(x, 0)


def test_a_plan_on_a_provider_not_given_to_load_is_a_device_error(tmp_path):
    built = build_engine(convnet(), providers=[FakeDevice(), "ReferenceExecutionProvider"], tune=False,
                         graph_optimization_level="disable")
    assert built.assignment()["relu"] == "FakeDeviceExecutionProvider"
    built.save(tmp_path / "f.engine")
    with pytest.raises(EngineFileError, match="FakeDeviceExecutionProvider") as err:
        Engine.load(tmp_path / "f.engine")
    assert err.value.reason == "device"
    with pytest.raises(EngineFileError, match="FakeDeviceExecutionProvider"):
        Engine.load(tmp_path / "f.engine", providers=["CPUExecutionProvider"])
    e = Engine.load(tmp_path / "f.engine", providers=[FakeDevice()])
    assert e.assignment()["relu"] == "FakeDeviceExecutionProvider"


# ---- loading does no build work ---------------------------------------------------------------
def test_loading_runs_no_pass_no_partitioning_and_no_tactic_search(tmp_path, monkeypatch):
    from course.runtime import arena, engine, session, tactics

    built = build_engine(build_model("mobilenetv2", **SMALL))
    built.save(tmp_path / "m.engine")

    def forbidden(*args, **kwargs):
        raise AssertionError("build work while loading an engine")

    for module, name in [(session, "from_onnx"), (session, "optimize"), (session, "partition"),
                         (session, "build_plan"), (session, "_mark_layouts"), (engine, "select_tactics"),
                         (tactics, "time_call"), (tactics, "select_tactics"), (arena, "plan_arena"),
                         (engine, "plan_arena")]:
        monkeypatch.setattr(module, name, forbidden)
    loaded = Engine.load(tmp_path / "m.engine")
    x = _image("mobilenetv2")
    assert np.array_equal(loaded.run(None, {"input": x})[0], built.run(None, {"input": x})[0])


# ---- custom ops -------------------------------------------------------------------------------
class HardSwish2(Op):
    """x * clip(x + 3, 0, 6) / 6, an op the engine lacks: schema (shape and dtype follow x)."""

    op_type, domain, since = "HardSwish2", "com.example", 1


def _hard_swish(x):
    return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype)


def _custom_model():
    rng = np.random.default_rng(3)
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("HardSwish2", ["c"], ["s"], name="hs", domain="com.example"),
             h.make_node("Relu", ["s"], ["y"], name="relu")]
    return model(nodes, [("x", T.FLOAT, [1, 8, 16, 16])], [("y", T.FLOAT, [1, 16, 16, 16])],
                 {"w": rng.standard_normal((16, 8, 3, 3)).astype(np.float32)},
                 extra_opsets=[("com.example", 1)])


def test_a_custom_op_imports_optimises_builds_saves_and_loads(tmp_path):
    mine = KernelProvider({"HardSwish2": _hard_swish}, name="MyOps", domain="com.example", ops=[HardSwish2])
    e = build_engine(_custom_model(), providers=[mine, "CPUExecutionProvider"])
    assert e.assignment() == {"conv": "CPUExecutionProvider", "hs": "MyOps", "relu": "ReferenceExecutionProvider"}
    e.save(tmp_path / "custom.engine")
    with pytest.raises(EngineFileError, match="MyOps") as err:
        Engine.load(tmp_path / "custom.engine")
    assert err.value.reason == "device"
    loaded = Engine.load(tmp_path / "custom.engine", providers=[mine, "CPUExecutionProvider"])
    x = np.random.default_rng(4).standard_normal((1, 8, 16, 16)).astype(np.float32)
    got = loaded.run(None, {"x": x})[0]
    assert np.array_equal(got, e.run(None, {"x": x})[0])
    w = loaded.plan.constants[loaded.plan.slot_of["w"]]
    conv = course.InferenceSession(
        model([h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [("x", T.FLOAT, [1, 8, 16, 16])],
              [("y", T.FLOAT, [1, 16, 16, 16])], {"w": np.array(w)}), providers=["ReferenceExecutionProvider"])
    want = np.maximum(_hard_swish(conv.run(None, {"x": x})[0]), 0)
    assert relative_error(got, want) <= 1e-5
