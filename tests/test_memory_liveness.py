"""Liveness and sizes: inclusive intervals from the steps' reads and writes, graph inputs and
weights left out, graph outputs alive to the end; sizes from dtype and static shape, aligned."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import course
from course.memory import (
    describe, liveness, plan_memory, plan_outputs, plan_sizes, static_shape, step_liveness,
    tensor_bytes,
)
from course.models import build_model


def test_step_liveness_of_a_compact_graph():
    steps, sizes, outputs = describe("""
        a:2 <- x        # x is never written: a graph input, not planned
        b:1 c:1 <- a    # two outputs; c is never read
        d:2* <- b a     # the graph output
        e:1 <- b        # after d: d must still survive to the end
    """)
    assert outputs == {"d"} and sizes == {"a": 128, "b": 64, "c": 64, "d": 128, "e": 64}
    assert step_liveness(steps, keep=outputs) == {
        "a": (0, 2), "b": (1, 3), "c": (1, 1), "d": (2, 3), "e": (3, 3)}
    assert step_liveness(steps)["d"] == (2, 2)


def test_tensor_bytes_rounds_up_to_the_alignment():
    assert tensor_bytes(np.float32, (1, 3, 5, 5)) == 320  # 300 bytes -> 5 cache lines
    assert tensor_bytes(np.float16, (1, 32)) == 64
    assert tensor_bytes(np.float32, ()) == 64  # a scalar still takes one line
    assert tensor_bytes(np.int8, (7,), alignment=16) == 16
    assert tensor_bytes(np.float32, (0, 4)) == 0
    assert static_shape((1, "N", 3)) is None and static_shape(None) is None
    assert static_shape((1, np.int64(3))) == (1, 3)


def fake_plan():
    """A duck-typed plan: x (input, slot 0) and w (weight, slot 1) -> conv (2) -> relu (3) -> y
    (output, slot 4); slot 5 has a symbolic batch dim."""
    f32 = np.dtype(np.float32)

    def step(name, ins, outs, shapes):
        inputs = [None if s < 0 else (f32, (4, 4, 1, 1) if s == 1 else (1, 4, 4, 4)) for s in ins]
        spec = SimpleNamespace(name=name, op_type=name, inputs=inputs,
                               outputs=[None if s is None else (f32, s) for s in shapes])
        return SimpleNamespace(ins=ins, outs=outs, spec=spec)

    steps = [step("Conv", (0, 1, -1), (2,), [(1, 4, 4, 4)]),
             step("Relu", (2,), (3, -1), [(1, 4, 4, 4), None]),
             step("Add", (3, 2), (4,), [(1, 4, 4, 4)]), step("Shape", (4,), (5,), [("N", 4)])]
    return SimpleNamespace(steps=steps, num_slots=6, constants={1: np.zeros((4, 4, 1, 1), f32)},
                           slot_of={"x": 0, "w": 1, "y": 4}, value_names=["x", "w", "c", "r", "y", "s"])


def test_liveness_of_a_plan_read_by_attribute():
    plan = fake_plan()
    assert plan_outputs(plan) == {4}
    assert liveness(plan) == {2: (0, 2), 3: (1, 2), 4: (2, 3), 5: (3, 3)}  # no x, no w
    assert plan_sizes(plan) == ({2: 256, 3: 256, 4: 256}, [5])


def test_plan_memory_of_a_plan_places_the_static_slots():
    mp = plan_memory(fake_plan(), "greedy_by_size")
    assert mp.offsets == {2: 0, 3: 256, 4: 512} and mp.dynamic == [5]
    assert mp.arena_bytes == mp.lower_bound_bytes == 768
    # in place: not r = relu(c) (c is read later), but y = r + c over r (r dies there, read once)
    mp = plan_memory(fake_plan(), "greedy_by_size", inplace=True)
    assert mp.alias == {4: 3} and mp.intervals == {2: (0, 2), 3: (1, 3)}
    assert mp.offsets == {2: 0, 3: 256, 4: 256} and mp.arena_bytes == 512


@pytest.fixture(scope="module")
def small_plan():
    return course.InferenceSession(build_model("resnet", image_size=32, num_classes=10, width=0.25)).plan


def test_liveness_of_a_session_plan(small_plan):
    plan = small_plan
    intervals = liveness(plan)
    written = {s for st in plan.steps for s in st.outs if s >= 0}
    assert set(intervals) == written
    assert not set(intervals) & set(plan.constants)
    outputs = plan_outputs(plan)
    assert outputs and all(intervals[s][1] == len(plan.steps) - 1 for s in outputs)
    for i, st in enumerate(plan.steps):
        for s in st.ins:
            if s in intervals:
                assert intervals[s][0] < i <= intervals[s][1]
    sizes, dynamic = plan_sizes(plan)
    assert dynamic == [] and all(n % 64 == 0 for n in sizes.values())
