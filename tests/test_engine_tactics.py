"""Tactic selection: every tactic the CPU provider offers computes the node (against the
reference op), the build keeps the fastest candidate that gives the right output, a timing cache
makes a later build time nothing, and the report says what was chosen over what."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from course.errors import EngineFileError, KernelError
from course.models import build_model
from course.providers import ExecutionProvider, NodeSpec
from course.providers.cpu import CPUExecutionProvider, blas
from course.runtime import Engine, TimingCache, build_engine
from course.runtime import tactics
from cpu_cases import assert_close, channels_last, conv_spec, frozen, rng, spec_for, reference
from ir_builders import mlp

CPU = CPUExecutionProvider()
SMALL = dict(image_size=32, num_classes=10, width=0.25)
needs_blas = pytest.mark.skipif(not blas.available(), reason="numpy's BLAS cannot be called directly here")

CONV_CASES = [  # (x shape, w shape, attributes, fused with a residual, X channels last)
    ((1, 16, 16, 15), (8, 16, 3, 3), {"pads": [1, 1, 1, 1]}, False, False),
    ((1, 16, 14, 14), (24, 16, 3, 3), {"pads": [1, 1, 1, 1]}, True, True),
    ((2, 5, 15, 17), (33, 5, 3, 3), {"pads": [0, 2, 1, 0]}, True, False),
    ((1, 3, 23, 21), (8, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}, False, False),
    ((1, 20, 9, 9), (48, 20, 3, 3), {"strides": [2, 2], "pads": [1, 0, 0, 1], "dilations": [1, 2]}, True, False),
    ((1, 24, 9, 7), (40, 24, 1, 1), {}, True, True),
    ((1, 16, 15, 15), (8, 16, 1, 1), {"pads": [1, 0, 0, 1]}, False, False),
    ((1, 8, 5, 6), (16, 8, 1, 1), {"strides": [2, 2]}, False, True),
    ((2, 24, 13, 11), (24, 1, 3, 3), {"group": 24, "strides": [2, 1], "pads": [0, 1, 2, 0]}, True, False),
    ((1, 32, 14, 14), (32, 1, 3, 3), {"group": 32, "pads": [1, 1, 1, 1]}, False, True),
]


def _conv(i, xs, ws, attrs, fused, last):
    r = rng(i)
    x = r.standard_normal(xs).astype(np.float32)
    w = frozen(r.standard_normal(ws).astype(np.float32))
    b = frozen(r.standard_normal(ws[0]).astype(np.float32))
    z = None
    if fused:
        z = r.standard_normal(reference("Conv", 11, "", [x, w, None], attrs).shape).astype(np.float32)
    x = channels_last(x) if last else x
    return conv_spec(x, w, b, z, attrs, "Relu" if fused else None)


@needs_blas
@pytest.mark.parametrize("i", range(len(CONV_CASES)))
def test_every_conv_tactic_computes_the_node(i):
    spec, inputs, want = _conv(i, *CONV_CASES[i])
    names = CPU.tactics(spec)
    assert len(names) >= 2 and len(set(names)) == len(names) and "reference" in names
    for name in names:
        spec.marks["tactic"] = name
        got = CPU.kernel(spec)(*inputs)
        assert_close(got, want, int(np.prod(inputs[1].shape[1:])) + 2)
        with CPU.running():  # shared with the helper thread, then a replay
            assert_close(CPU.kernel(spec)(*inputs), want, int(np.prod(inputs[1].shape[1:])) + 2)


@needs_blas
def test_the_heuristic_route_comes_first_and_the_routes_that_apply_follow():
    from course.providers.cpu import routes

    spec, inputs, _ = _conv(0, *CONV_CASES[0])  # 3x3, stride 1: winograd's
    assert CPU.tactics(spec)[0] == "winograd"
    assert set(CPU.tactics(spec)) == {"winograd", "reference", "im2col", "taps"}
    depthwise, _, _ = _conv(8, *CONV_CASES[8])
    assert CPU.tactics(depthwise) == ["depthwise", "reference"]
    pointwise, _, _ = _conv(5, *CONV_CASES[5])
    assert CPU.tactics(pointwise) == ["pointwise", "reference", "im2col", "taps"]
    marked, _, _ = _conv(5, *CONV_CASES[5])
    marked.marks["layout"] = "NHWC"
    assert CPU.tactics(marked) == []  # the layout pass chose its route
    symbolic = NodeSpec(**{**spec.__dict__, "inputs": [(np.dtype(np.float32), ("N", 16, 16, 15)), *spec.inputs[1:]]})
    assert CPU.tactics(symbolic) == []  # unknown shapes: nothing to time
    assert not routes.route_applies("winograd", routes.ConvCase(16, 8, 1, (8, 16, 1, 1),
                                                                spec_window(), True))


def spec_window():
    from course.providers.cpu.geometry import window_of

    return window_of((8, 8), (1, 1), {})


@needs_blas
@pytest.mark.parametrize("tactic", ["bands", "reference"])
def test_gemm_tactics_compute_the_node(tactic):
    r = rng(5)
    a, b, c = (r.standard_normal(s).astype(np.float32) for s in [(3, 300), (1000, 300), (1000,)])
    spec = spec_for("Gemm", [a, frozen(b), frozen(c)], {"transB": 1}, (3, 1000))
    assert CPU.tactics(spec) == ["bands", "reference"]
    spec.marks["tactic"] = tactic
    assert_close(CPU.kernel(spec)(a, b, c), a @ b.T + c, 300)


def test_a_tactic_the_provider_lacks_is_refused():
    spec, _, _ = _conv(0, *CONV_CASES[0])
    spec.marks["tactic"] = "fft"
    with pytest.raises(ValueError, match="no tactic 'fft'"):
        CPU.kernel(spec)


def test_a_file_naming_an_unknown_tactic_does_not_load(tmp_path):
    e = build_engine(build_model("resnet", **SMALL), tune=False)
    conv = next(st for st in e.plan.steps if st.provider == "CPUExecutionProvider")
    conv.spec.marks["tactic"] = "fft"
    e.save(tmp_path / "t.engine")
    with pytest.raises(EngineFileError, match="no tactic 'fft'") as err:
        Engine.load(tmp_path / "t.engine")
    assert err.value.reason == "device"


# ---- the selection itself, on a provider of known speeds ---------------------------------------
class Timed(ExecutionProvider):
    """Relu by three tactics: "heuristic" (2 ms), "fast" (0.2 ms) and "wrong" (instant, wrong)."""

    name = "TimedExecutionProvider"
    DELAY = {"heuristic": 2e-3, "fast": 2e-4, "wrong": 0.0}

    def claims(self, spec):
        return spec.op_type == "Relu"

    def tactics(self, spec):
        return ["heuristic", "fast", "wrong"]

    def kernel(self, spec):
        tactic = spec.marks.get("tactic", "heuristic")

        def relu(x):
            return np.maximum(x, 0) if tactic != "wrong" else x
        relu.seconds = self.DELAY[tactic]  # what the fake clock below says each call takes
        return relu


def fake_clock(kernel, args):
    """tactics.time_call on a fake clock: each call takes the kernel's declared ``seconds``, so
    the choice does not depend on how busy the machine is."""
    return kernel(*args), kernel.seconds


def test_the_fastest_candidate_with_the_right_output_is_chosen(monkeypatch):
    monkeypatch.setattr(tactics, "time_call", fake_clock)
    e = build_engine(mlp(batch=2), providers=[Timed(), "ReferenceExecutionProvider"],
                     graph_optimization_level="disable")
    (row,) = e.tactics_report()
    assert (row.node, row.heuristic, row.chosen, row.source) == ("relu", "heuristic", "fast", "timed")
    assert row.times_ms["wrong"] == float("inf")  # fastest, but another output: never chosen
    assert row.times_ms["fast"] < row.times_ms["heuristic"]
    assert e.plan.steps[2].spec.marks["tactic"] == "fast"
    table = e.describe_tactics()
    assert "relu" in table and "heuristic" in table and "fast" in table


def test_noise_alone_keeps_the_heuristic():
    assert tactics.pick({"a": 1.0, "b": 0.97}, "a") == "a"  # within MARGIN
    assert tactics.pick({"a": 1.0, "b": 0.5}, "a") == "b"
    assert tactics.pick({"a": float("inf"), "b": 0.5}, "a") == "b"


def test_a_timing_cache_makes_the_second_build_time_nothing(tmp_path, monkeypatch):
    path = tmp_path / "timing.json"
    m = build_model("mobilenetv2", **SMALL)
    first = build_engine(m, timing_cache=path)
    data = json.loads(path.read_text())
    assert data["version"] == tactics.CACHE_VERSION and len(data["entries"]) >= 3
    assert first.build_info["timed"] > 0

    def no_timing(*args, **kwargs):
        raise AssertionError("a cached build timed a kernel")
    monkeypatch.setattr(tactics, "time_call", no_timing)
    second = build_engine(m, timing_cache=str(path))
    assert {r.source for r in second.tactics_report()} == {"cache"}
    assert [r.chosen for r in second.tactics_report()] == [r.chosen for r in first.tactics_report()]
    assert second.build_info["timed"] == 0
    with pytest.raises(KernelError, match="timed a kernel"):  # raised inside the tuning run
        build_engine(m, timing_cache=tmp_path / "other.json")  # a fresh cache must time


def test_a_bad_timing_cache_is_an_engine_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(EngineFileError, match="timing cache"):
        TimingCache(path)
    path.write_text(json.dumps({"version": 99, "entries": {}}))
    with pytest.raises(EngineFileError, match="version"):
        TimingCache(path)


def test_the_cache_key_tells_layouts_and_shapes_apart():
    spec, inputs, _ = _conv(0, *CONV_CASES[0])
    x = inputs[0]
    keys = {tactics.cache_key("CPU", spec, (x, *inputs[1:])),
            tactics.cache_key("CPU", spec, (channels_last(x), *inputs[1:])),
            tactics.cache_key("CPU", spec, (x[:, :, :8], *inputs[1:]))}
    assert len(keys) == 3


def test_a_tuned_engine_computes_what_the_heuristic_one_does():
    m = build_model("resnet", **SMALL)
    tuned, plain = build_engine(m), build_engine(m, tune=False)
    assert all(r.chosen in r.times_ms for r in tuned.tactics_report())
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    a, b = tuned.run(None, {"input": x})[0], plain.run(None, {"input": x})[0]
    assert np.max(np.abs(a - b)) <= 1e-4 * np.max(np.abs(b))


@needs_blas
@pytest.mark.parametrize("name", ["mobilenetv2", "inception"])
@pytest.mark.parametrize("pick", [1, -1])
def test_any_tactic_choice_computes_the_model(name, pick, tmp_path):
    """Every node forced to its second (or last) candidate instead of the heuristic's choice --
    channels-last marked 1x1 convolutions on routes that write NCHW included -- still gives
    onnxruntime's logits, after a save and load."""
    from ir_builders import ort_run

    m = build_model(name, **SMALL)
    e = build_engine(m, tune=False)
    forced = 0
    for st in e.plan.steps:
        names = CPU.tactics(dataclasses.replace(st.spec, marks={}))  # channels-last marked nodes too
        if st.provider == "CPUExecutionProvider" and len(names) > 1:
            st.spec.marks["tactic"] = names[pick]
            forced += 1
    assert forced >= 5
    e.save(tmp_path / "forced.engine")
    loaded = Engine.load(tmp_path / "forced.engine")
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    got, want = loaded.run(None, {"input": x})[0], ort_run(m, {"input": x})[0]
    assert np.max(np.abs(got - want)) <= 1e-4 * np.max(np.abs(want))
