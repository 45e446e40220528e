"""The validator catches overlaps, misalignment and missing tensors, naming them; the arena hands
out aligned typed views over one buffer; the double cursor packs weights and activations from
the two ends of one buffer."""
from __future__ import annotations

import numpy as np
import pytest

from course.memory import Arena, DoubleCursor, MemoryPlanError, double_cursor, validate
from course.tensor.align import is_buffer_aligned

INTERVALS = {"a": (0, 2), "b": (1, 3), "c": (3, 4)}
SIZES = {"a": 128, "b": 64, "c": 128}


def test_a_correct_plan_passes():
    validate(INTERVALS, SIZES, {"a": 0, "b": 128, "c": 0})  # c reuses a's bytes: a died at 2


def test_overlap_of_live_tensors_names_both_and_the_step():
    with pytest.raises(MemoryPlanError, match=r"'a' \(bytes \[0, 128\), steps 0..2\) and 'b' "
                                              r"\(bytes \[64, 128\), steps 1..3\).*step 1"):
        validate(INTERVALS, SIZES, {"a": 0, "b": 64, "c": 256})


def test_overlap_message_uses_the_names_given():
    with pytest.raises(MemoryPlanError, match="'conv1_out'.*'relu1_out'"):
        validate({1: (0, 1), 2: (1, 2)}, {1: 64, 2: 64}, {1: 0, 2: 0}, names={1: "conv1_out", 2: "relu1_out"})


def test_touching_tensors_do_not_overlap():
    validate({"a": (0, 1), "b": (0, 1)}, {"a": 64, "b": 64}, {"a": 0, "b": 64})


def test_misaligned_offset_is_caught():
    with pytest.raises(MemoryPlanError, match="'b' at offset 160 is not a multiple of 64"):
        validate(INTERVALS, SIZES, {"a": 0, "b": 160, "c": 256})
    validate(INTERVALS, SIZES, {"a": 0, "b": 160, "c": 256}, alignment=32)


def test_missing_offset_and_capacity():
    with pytest.raises(MemoryPlanError, match="'c' has no offset"):
        validate(INTERVALS, SIZES, {"a": 0, "b": 128})
    with pytest.raises(MemoryPlanError, match=r"'b' \[128, 192\) ends past the arena's 128 bytes"):
        validate(INTERVALS, SIZES, {"a": 0, "b": 128, "c": 0}, capacity=128)


def test_empty_tensors_overlap_nothing():
    validate({"a": (0, 1), "e": (0, 1)}, {"a": 64, "e": 0}, {"a": 0, "e": 0})


# --- the arena -----------------------------------------------------------------------------------

def test_arena_views_share_its_bytes():
    arena = Arena(256)
    assert arena.nbytes == 256 and is_buffer_aligned(arena.buffer, 64)
    x = arena.view(64, np.float32, (2, 8))
    assert x.shape == (2, 8) and x.dtype == np.float32 and x.flags.c_contiguous
    assert is_buffer_aligned(x, 64)
    x[...] = 1.5
    y = arena.view(64, np.float32, (16,))  # the same bytes, another shape
    assert (y == 1.5).all()
    assert np.shares_memory(x, arena.buffer)


def test_arena_refuses_bad_views():
    arena = Arena(128, alignment=128)
    assert is_buffer_aligned(arena.buffer, 128)
    with pytest.raises(MemoryPlanError, match="does not fit"):
        arena.view(64, np.float32, (17,))
    with pytest.raises(MemoryPlanError, match="not a multiple of float32's 4 bytes"):
        arena.view(2, np.float32, (1,))
    assert arena.view(128, np.float64, (0,)).size == 0


# --- the double cursor ---------------------------------------------------------------------------

def test_double_cursor_packs_weights_low_and_activations_high():
    weights, acts, capacity = double_cursor({"w1": 100, "w2": 64}, {"a": 0, "b": 64}, 128)
    assert weights == {"w1": 0, "w2": 128}  # 100 bytes take 128: the next weight stays aligned
    assert capacity == 128 + 64 + 128
    assert acts == {"a": 192, "b": 256}  # the arena's 128 bytes end the buffer
    weights, acts, capacity = double_cursor({"w1": 100}, {"a": 0}, 64, capacity=1000)
    assert weights == {"w1": 0} and acts == {"a": 960 - 64} and capacity == 1000


def test_double_cursor_refuses_to_cross():
    with pytest.raises(MemoryPlanError, match="do not fit"):
        double_cursor({"w1": 100, "w2": 64}, {"a": 0}, 128, capacity=256)
    cursor = DoubleCursor(512)
    assert cursor.high(64) == 448 and cursor.low(1) == 0 and cursor.low(64) == 64
    assert cursor.high(128) == 320 and cursor.free_bytes == 192
    with pytest.raises(MemoryPlanError, match="256 bytes from the start do not fit: 192"):
        cursor.low(256)
    assert cursor.low(192) == 128 and cursor.free_bytes == 0
