"""Optimisation profiles: a dynamic-batch engine runs any shape inside its profile and refuses one
outside with an error naming the input, the dim and the range; profiles that do not fit the
model are refused at build; tactics are timed at ``opt`` and the arena planned for ``max``."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.bench import relative_error
from course.errors import EngineError, FeedError, ProfileError
from course.models import build_model
from course.runtime import Engine, build_engine
from ir_builders import convnet, model, ort_run

SMALL = dict(image_size=32, num_classes=10, width=0.25)
PROFILE = {"x": {"min": (1, 3, 8, 8), "opt": (2, 3, 8, 8), "max": (4, 3, 8, 8)}}


def _x(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def engine():
    return build_engine(convnet(), profiles=PROFILE)


@pytest.mark.parametrize("n", [1, 3, 4])
def test_any_batch_inside_the_profile_runs(engine, n):
    x = _x(n, seed=n)
    assert relative_error(engine.run(None, {"x": x})[0], ort_run(convnet(), {"x": x})[0]) <= 1e-5


@pytest.mark.parametrize("n", [0, 5, 64])
def test_a_batch_outside_the_profile_names_the_input_dim_and_range(engine, n):
    with pytest.raises(ProfileError, match=rf"input 'x' dim 0 is {n}, outside the engine's profile \[1, 4\]") as err:
        engine.run(None, {"x": _x(n)})
    assert isinstance(err.value, FeedError) and isinstance(err.value, EngineError)


def test_tactics_are_timed_at_opt_and_the_arena_planned_for_max(engine):
    rows = engine.tactics_report()
    assert rows and all(r.shape[0] == 2 for r in rows)  # opt's batch
    assert engine.plan.arena.dims == {"N": 4}
    assert engine.session.memory_report()["dims"] == {"N": 4}


def test_profiles_survive_the_engine_file(engine, tmp_path):
    engine.save(tmp_path / "p.engine")
    loaded = Engine.load(tmp_path / "p.engine")
    assert loaded.profiles == engine.profiles
    x = _x(3)
    assert np.array_equal(loaded.run(None, {"x": x})[0], engine.run(None, {"x": x})[0])
    with pytest.raises(ProfileError, match="dim 0 is 5"):
        loaded.run(None, {"x": _x(5)})


def test_a_dynamic_model_needs_a_profile_to_be_tuned_but_not_to_run():
    with pytest.raises(ProfileError, match=r"input 'x' has dynamic dims.*profiles="):
        build_engine(convnet())
    untuned = build_engine(convnet(), tune=False)
    assert untuned.run(None, {"x": _x(7)})[0].shape == (7, 64)


def test_a_symbolic_batch_model_of_the_course_runs_across_its_profile():
    m = build_model("mobilenetv2", batch="N", **SMALL)
    e = build_engine(m, profiles={"input": {"min": (1, 3, 32, 32), "opt": (1, 3, 32, 32), "max": (3, 3, 32, 32)}})
    report = e.session.memory_report()
    assert report["dims"] == {"N": 3} and report["arena_bytes"] > 0
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 3, 32, 32)).astype(np.float32)
        assert relative_error(e.run(None, {"input": x})[0], ort_run(m, {"input": x})[0]) <= 1e-4


def _two_inputs():
    nodes = [h.make_node("Add", ["a", "b"], ["y"], name="add")]
    return model(nodes, [("a", T.FLOAT, ["N", 4]), ("b", T.FLOAT, ["N", 4])], [("y", T.FLOAT, ["N", 4])])


@pytest.mark.parametrize("profiles,message", [
    ({"y": {"min": (1, 3, 8, 8), "opt": (1, 3, 8, 8), "max": (1, 3, 8, 8)}}, "'y', which is not an input"),
    ({"x": {"min": (1, 3, 8, 8), "max": (2, 3, 8, 8)}}, "keys 'min', 'opt' and 'max'"),
    ({"x": {"min": (1, 3, 8), "opt": (1, 3, 8), "max": (1, 3, 8)}}, "has rank 3, the input has rank 4"),
    ({"x": {"min": (2, 3, 8, 8), "opt": (1, 3, 8, 8), "max": (4, 3, 8, 8)}}, r"dim 0: needs 0 <= min <= opt"),
    ({"x": {"min": (1, 3, 8, 8), "opt": (1, 3, 8, 8), "max": (1, 3, 16, 16)}}, "dim 2: the model fixes it to 8"),
    ({"x": {"min": "1x3x8x8", "opt": (1, 3, 8, 8), "max": (1, 3, 8, 8)}}, "must be shapes"),
])
def test_a_profile_that_does_not_fit_the_model_is_refused(profiles, message):
    with pytest.raises(ProfileError, match=message):
        build_engine(convnet(), profiles=profiles, tune=False)


def test_inputs_sharing_a_dim_need_one_range_for_it():
    p = {"min": (1, 4), "opt": (2, 4), "max": (8, 4)}
    q = {"min": (1, 4), "opt": (2, 4), "max": (4, 4)}
    with pytest.raises(ProfileError, match="inputs 'a' and 'b' share dim 'N'"):
        build_engine(_two_inputs(), profiles={"a": p, "b": q})
    e = build_engine(_two_inputs(), profiles={"a": p, "b": p})
    a = np.ones((8, 4), np.float32)
    assert np.array_equal(e.run(None, {"a": a, "b": a})[0], a + a)
    with pytest.raises(FeedError, match="'N'"):  # the session's own check: both feeds give N
        e.run(None, {"a": a, "b": a[:2]})
