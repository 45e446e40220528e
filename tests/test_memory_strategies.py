"""Placement strategies on compact graph descriptions with exact offsets (STYLE item 6), and
hypothesis-generated interval sets: every strategy valid, no bigger than naive, no smaller than
the lower bound; "best" no bigger than any other."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from course.memory import (
    STRATEGIES, FreeBlocks, MemoryPlanError, arena_bytes, describe, live_bytes, lower_bound, place,
    smallest_gap, step_liveness, validate,
)

U = 64  # describe() sizes are in units of 64 bytes

# best fit wins: b dies at once (never read), so c takes its bytes and d sits on top
BEST_FIT_WINS = """
    a:2 <- x
    b:4 <- a
    c:2 <- a
    d:3* <- a c
"""
# greedy by breadth wins: the busiest step (3: b, c, d) is packed first
BREADTH_WINS = """
    a:4 <- x
    b:4 <- a
    c:2 <- b
    d:3* <- b c
"""
CASES = {
    BEST_FIT_WINS: {
        "naive": dict(a=0, b=2, c=6, d=8),
        "greedy_by_size": dict(b=0, d=0, a=4, c=6),
        "greedy_by_breadth": dict(d=0, a=3, c=5, b=5),
        "best_fit": dict(a=0, b=2, c=2, d=4),
        "best": dict(a=0, b=2, c=2, d=4),
    },
    BREADTH_WINS: {
        "naive": dict(a=0, b=4, c=8, d=10),
        "greedy_by_size": dict(a=0, b=4, d=0, c=8),
        "greedy_by_breadth": dict(b=0, d=4, c=7, a=4),
        "best_fit": dict(a=0, b=4, c=0, d=8),
        "best": dict(b=0, d=4, c=7, a=4),
    },
}


def problem(text):
    steps, sizes, outputs = describe(text)
    return step_liveness(steps, keep=outputs), sizes


@pytest.mark.parametrize("text", list(CASES), ids=["best_fit_wins", "breadth_wins"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_exact_offsets(text, strategy):
    intervals, sizes = problem(text)
    offsets = place(intervals, sizes, strategy)
    assert offsets == {t: n * U for t, n in CASES[text][strategy].items()}
    validate(intervals, sizes, offsets)


def test_the_cases_bounds():
    for text, bound in ((BEST_FIT_WINS, 7), (BREADTH_WINS, 9)):
        intervals, sizes = problem(text)
        assert lower_bound(intervals, sizes) == bound * U


def test_best_searches_past_every_heuristic():
    # greedy by size 8, by breadth 9, best fit 10 units: only the order search reaches 7
    intervals, sizes = problem("a:2 <- x; b:3 <- a; c:1 <- a b; d:2 <- a; e:4* <- c d")
    found = {s: arena_bytes(place(intervals, sizes, s), sizes) // U for s in STRATEGIES}
    assert found == {"naive": 12, "greedy_by_size": 8, "greedy_by_breadth": 9, "best_fit": 10, "best": 7}
    assert lower_bound(intervals, sizes) == 7 * U
    validate(intervals, sizes, place(intervals, sizes, "best"))


def test_unknown_strategy_is_named():
    with pytest.raises(MemoryPlanError, match="'tetris'"):
        place({}, {}, "tetris")


def test_empty_problem():
    for s in STRATEGIES:
        assert place({}, {}, s) == {}
    assert lower_bound({}, {}) == 0 and live_bytes({}, {}) == []


def test_smallest_gap_prefers_the_tightest_gap_then_the_top():
    busy = [(0, 64), (192, 64), (320, 64)]  # gaps [64, 192) = 128 and [256, 320) = 64
    assert smallest_gap(64, busy) == 256
    assert smallest_gap(128, busy) == 64
    assert smallest_gap(192, busy) == 384
    assert smallest_gap(64, []) == 0


def test_free_blocks_best_fit_and_merging():
    free = FreeBlocks()
    a, b, c, d = (free.take(n) for n in (128, 64, 192, 64))
    assert (a, b, c, d) == (0, 128, 192, 384) and free.top == 448
    free.give(a, 128)
    free.give(c, 192)
    assert free.take(64) == 0  # the 128-byte hole is the smallest that fits, not the 192 one
    free.give(b, 64)  # merges with [64, 128) and [192, 384): one block [64, 384)
    assert free.by_offset.items() == [(64, 320)]
    free.give(d, 64)  # meets the top: everything from 64 up is free again
    assert free.top == 64 and free.by_offset.items() == [] and free.peak == 448


# --- hypothesis: random interval sets -----------------------------------------------------------

tensors = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 6), st.integers(0, 8)), max_size=24)


def to_problem(spec):
    intervals = {f"t{i}": (first, first + length) for i, (first, length, _) in enumerate(spec)}
    sizes = {f"t{i}": units * U for i, (_, _, units) in enumerate(spec)}
    return intervals, sizes


@given(tensors)
def test_every_strategy_is_valid_and_between_bound_and_naive(spec):
    intervals, sizes = to_problem(spec)
    bound = lower_bound(intervals, sizes)
    naive = arena_bytes(place(intervals, sizes, "naive"), sizes)
    assert naive == sum(sizes.values())
    found = {}
    for s in STRATEGIES:
        offsets = place(intervals, sizes, s)
        validate(intervals, sizes, offsets, capacity=arena_bytes(offsets, sizes))
        found[s] = arena_bytes(offsets, sizes)
        assert bound <= found[s] <= naive, s
    assert found["best"] == min(found.values())


@given(tensors)
def test_lower_bound_is_the_busiest_step(spec):
    intervals, sizes = to_problem(spec)
    steps = range(max((last for _, last in intervals.values()), default=-1) + 1)
    by_hand = [sum(sizes[t] for t, (f, l) in intervals.items() if f <= s <= l) for s in steps]
    assert live_bytes(intervals, sizes) == by_hand
    assert lower_bound(intervals, sizes) == max(by_hand, default=0)


def test_best_without_search_is_the_best_heuristic():
    intervals, sizes = problem("a:2 <- x; b:3 <- a; c:1 <- a b; d:2 <- a; e:4* <- c d")
    assert arena_bytes(STRATEGIES["best"](intervals, sizes, max_tries=0), sizes) == 8 * U
    assert arena_bytes(STRATEGIES["best"](intervals, sizes, time_limit=0.0), sizes) == 8 * U
