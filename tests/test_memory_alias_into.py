"""Concatenation in place (course.memory.alias_into): a Concat's inputs placed inside its output,
on compact graph descriptions with exact offsets, and the validator's view of such plans."""
from __future__ import annotations

import pytest

from course.memory import (
    MemoryPlanError, arena_bytes, describe, lower_bound, merge_into, place, step_liveness, validate, with_chunks,
)

U = 64

# step 2 = Concat(a, b): a is bytes [0, 2U) of c, b bytes [2U, 3U)
CONCAT = "a:2 <- x; b:1 <- x; c:3 <- a b; d:1* <- c"
PARTS = [(2, "c", [("a", 0), ("b", 2 * U)])]


def merged(text, candidates, alias=None):
    steps, sizes, outputs = describe(text)
    intervals = step_liveness(steps, keep=outputs)
    return (*merge_into(steps, intervals, sizes, candidates, alias=alias), intervals, sizes)


def test_chunks_live_inside_their_container_at_exact_offsets():
    placed, within, intervals, sizes = merged(CONCAT, PARTS)
    assert within == {"a": ("c", 0), "b": ("c", 2 * U)}
    assert placed == {"c": (0, 3), "d": (3, 3)}  # c reserved from a's birth
    offsets = with_chunks(place(placed, sizes, "greedy_by_size"), within)
    assert offsets == {"c": 0, "d": 3 * U, "a": 0, "b": 2 * U}
    validate(intervals, sizes, offsets, within=within)
    assert arena_bytes(offsets, sizes) == 4 * U
    assert lower_bound(intervals, sizes) == 6 * U  # a, b and c all alive at the concat: no copy-based plan fits in less


@pytest.mark.parametrize("text, candidates, alias, want, why", [
    ("a:2 <- x; b:1 <- x; c:3 <- a b; d:1* <- c a", PARTS, {}, {"b": ("c", 2 * U)}, "a is read after the concat"),
    (CONCAT, PARTS, {"a": "q"}, {"b": ("c", 2 * U)}, "a writes over q in place"),
    (CONCAT, PARTS, {"q": "a"}, {"b": ("c", 2 * U)}, "q writes over a in place"),
    (CONCAT, PARTS, {"c": "q"}, {}, "c writes over q in place"),
    ("a:2* <- x; b:1 <- x; c:3 <- a b; d:1* <- c", PARTS, {}, {"b": ("c", 2 * U)}, "a is a graph output"),
    ("a:1 <- x; c:2 <- a a; d:1* <- c", [(1, "c", [("a", 0), ("a", U)])], {}, {}, "the concat reads a twice"),
    (CONCAT, [(2, "c", [("a", 0), ("b", 2 * U - 16)])], {},
     {"a": ("c", 0)}, "b's chunk would start between two alignment boundaries"),
    ("a:2 <- x; b:2 <- x; c:3 <- a b; d:1* <- c", PARTS, {}, {"a": ("c", 0)}, "b does not fit inside c"),
])
def test_alias_into_is_refused(text, candidates, alias, want, why):
    placed, within, intervals, sizes = merged(text, candidates, alias)
    assert within == want, why
    offsets = with_chunks(place(placed, sizes, "best"), within)
    validate(intervals, sizes, offsets, within=within)


def test_an_input_two_concats_want_goes_to_the_last_one_only():
    text = "a:1 <- x; b:1 <- x; c:2 <- a b; e:1 <- x; f:2 <- a e; g:1* <- c f"
    cands = [(2, "c", [("a", 0), ("b", U)]), (4, "f", [("a", 0), ("e", U)])]
    placed, within, intervals, sizes = merged(text, cands)
    assert within == {"b": ("c", U), "a": ("f", 0), "e": ("f", U)}
    assert placed["f"] == (0, 5) and placed["c"] == (1, 5)
    offsets = with_chunks(place(placed, sizes, "best"), within)
    validate(intervals, sizes, offsets, within=within)


def test_a_container_overwritten_in_place_after_its_concat_still_takes_chunks():
    _, within, _, _ = merged(CONCAT, PARTS, {"d": "c"})  # d = relu(c) in place: a and b are dead by then
    assert within == {"a": ("c", 0), "b": ("c", 2 * U)}


def test_a_concat_of_a_concat_nests_and_copies_nothing():
    """DenseNet's shape: f = Concat(c, e) where c = Concat(a, b); c is a chunk of f in turn."""
    text = "a:1 <- x; b:1 <- x; c:2 <- a b; e:1 <- x; f:3 <- c e; g:1* <- f"
    cands = [(2, "c", [("a", 0), ("b", U)]), (4, "f", [("c", 0), ("e", 2 * U)])]
    placed, within, intervals, sizes = merged(text, cands)
    assert within == {"a": ("c", 0), "b": ("c", U), "c": ("f", 0), "e": ("f", 2 * U)}
    assert placed == {"f": (0, 5), "g": (5, 5)}
    offsets = with_chunks(place(placed, sizes, "greedy_by_size"), within)
    assert offsets == {"f": 0, "g": 3 * U, "c": 0, "a": 0, "b": U, "e": 2 * U}
    validate(intervals, sizes, offsets, within=within)
    offsets["b"] = 2 * U  # b where e goes: the two overlap while both live
    with pytest.raises(MemoryPlanError):
        validate(intervals, sizes, offsets, within=within)


def good_plan():
    placed, within, intervals, sizes = merged(CONCAT, PARTS)
    return intervals, sizes, with_chunks(place(placed, sizes, "greedy_by_size"), within), within


@pytest.mark.parametrize("break_it, match", [
    (lambda iv, sz, off, w: off.update(b=off["b"] + U), "is not at"),  # wrong chunk offset
    (lambda iv, sz, off, w: w.update(b=("c", U)), "is not at"),  # the recorded offset disagrees
    (lambda iv, sz, off, w: (off.update(b=U), w.update(b=("c", U))), "overlap"),  # two chunks share bytes
    (lambda iv, sz, off, w: iv.update(a=(0, 3)), "after its container"),  # a read after the concat
    (lambda iv, sz, off, w: w.update(d=("c", 2 * U)), "is not at|after its container"),  # d is no chunk of c
    (lambda iv, sz, off, w: (w.update(a=("c", 2 * U)), off.update(a=2 * U)), "is not at"),  # past c's end
    (lambda iv, sz, off, w: w.update(c=("a", 0)), "inside itself"),  # a cycle: c in a in c
])
def test_validator_rejects_a_wrong_alias_into(break_it, match):
    intervals, sizes, offsets, within = good_plan()
    validate(intervals, sizes, offsets, within=within)
    break_it(intervals, sizes, offsets, within)
    with pytest.raises(MemoryPlanError, match=match):
        validate(intervals, sizes, offsets, within=within)


def test_validator_rejects_a_tensor_in_a_containers_bytes_before_the_concat():
    """c's bytes are reserved from a's birth: a tensor placed there while a lives overlaps."""
    text = "a:2 <- x; e:1 <- a; g:1 <- e; b:1 <- g; c:3 <- a b; d:1* <- c"
    placed, within, intervals, sizes = merged(text, [(4, "c", [("a", 0), ("b", 2 * U)])])
    assert within == {"a": ("c", 0), "b": ("c", 2 * U)}
    offsets = with_chunks(place(placed, sizes, "best"), within)
    validate(intervals, sizes, offsets, within=within)
    offsets["e"] = offsets["c"] + 2 * U  # where b goes later; e dies before b is born, but c is reserved
    with pytest.raises(MemoryPlanError, match="overlap"):
        validate(intervals, sizes, offsets, within=within)
