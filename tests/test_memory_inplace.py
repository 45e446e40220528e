"""In-place reuse (an elementwise op writes over an input that dies there) and workspaces
(scratch that lives for one step), on compact graph descriptions with exact offsets."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from course.memory import (
    add_workspaces, arena_bytes, describe, im2col_bytes, lower_bound, merge_inplace, place,
    step_liveness, validate, with_aliases, workspace_key,
)

U = 64

CHAIN = "a:2 <- x; b:2 <- a; c:1* <- b"  # b = relu(a): a dies where b is born


def merged(text, candidates):
    steps, sizes, outputs = describe(text)
    intervals = step_liveness(steps, keep=outputs)
    return (*merge_inplace(steps, intervals, sizes, candidates, keep=outputs), sizes)


def test_inplace_shares_the_dying_input():
    intervals, alias, sizes = merged(CHAIN, [(1, "a", "b")])
    assert alias == {"b": "a"} and intervals == {"a": (0, 2), "c": (2, 2)}
    offsets = with_aliases(place(intervals, sizes, "greedy_by_size"), alias)
    assert offsets == {"a": 0, "b": 0, "c": 2 * U}
    assert arena_bytes(offsets, sizes) == 3 * U  # 4 units without in-place: a and b both at step 1
    steps, sizes, outputs = describe(CHAIN)
    assert lower_bound(step_liveness(steps, outputs), sizes) == 4 * U


def test_inplace_chains_fold_into_the_first_tensor():
    intervals, alias, _ = merged("a:2 <- x; b:2 <- a; c:2 <- b; d:1* <- c", [(1, "a", "b"), (2, "b", "c")])
    assert alias == {"b": "a", "c": "a"} and intervals == {"a": (0, 3), "d": (3, 3)}


@pytest.mark.parametrize("text, candidate, why", [
    ("a:2 <- x; b:2 <- a; c:1* <- a b", (1, "a", "b"), "a is read after step 1"),
    ("a:2 <- x; b:2 <- a a; c:1* <- b", (1, "a", "b"), "Add(a, a) reads a twice at step 1"),
    ("a:2 <- x; b:3 <- a; c:1* <- b", (1, "a", "b"), "sizes differ"),
    ("a:2* <- x; b:2* <- a", (1, "a", "b"), "a is a graph output"),
    ("a:2 <- x; b:2 <- a; c:1* <- b", (2, "a", "b"), "b is not written at step 2"),
])
def test_inplace_is_refused(text, candidate, why):
    steps, sizes, outputs = describe(text)
    intervals = step_liveness(steps, keep=outputs)
    got, alias, _ = merged(text, [candidate])
    assert alias == {} and got == intervals, why


def test_workspace_lives_one_step_and_reuses_dead_bytes():
    steps, sizes, outputs = describe("a:2 <- x; b:2 <- a; c:2* <- b")
    intervals, sizes = add_workspaces(step_liveness(steps, outputs), sizes, {2: 100, 0: 0})
    ws = workspace_key(2)
    assert intervals[ws] == (2, 2) and sizes[ws] == 128 and workspace_key(0) not in intervals
    offsets = place(intervals, sizes, "greedy_by_size")
    assert offsets == {"a": 0, "b": 2 * U, "c": 0, ws: 4 * U}  # c took dead a's bytes
    validate(intervals, sizes, offsets)
    assert arena_bytes(offsets, sizes) == lower_bound(intervals, sizes) == 6 * U


def conv_spec(x, w, y, strides=(1, 1), op="Conv"):
    f32 = np.dtype(np.float32)
    return SimpleNamespace(op_type=op, attrs={"strides": list(strides)},
                           inputs=[(f32, x), (f32, w)], outputs=[(f32, y)])


def test_im2col_workspace_estimate():
    assert im2col_bytes(conv_spec((1, 3, 8, 8), (4, 3, 3, 3), (1, 4, 8, 8))) == 3 * 9 * 64 * 4
    assert im2col_bytes(conv_spec((1, 8, 8, 8), (4, 4, 3, 3), (1, 4, 8, 8), op="FusedConv")) == 4 * 9 * 64 * 4
    assert im2col_bytes(conv_spec((1, 3, 8, 8), (4, 3, 1, 1), (1, 4, 8, 8))) == 0  # pointwise
    assert im2col_bytes(conv_spec((1, 3, 8, 8), (4, 3, 1, 1), (1, 4, 4, 4), strides=(2, 2))) == 3 * 16 * 4
    assert im2col_bytes(conv_spec((1, 3, "H", 8), (4, 3, 3, 3), (1, 4, "H", 8))) == 0
    assert im2col_bytes(SimpleNamespace(op_type="Relu")) == 0
