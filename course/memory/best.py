"""The "best" strategy: several heuristics, the smallest arena kept, then a seeded local search.

Why this and not an exact search: placing intervals is NP-hard, and an exact branch and bound
is only practical for a few dozen tensors while the course's models have up to a few hundred.
A greedy placement is decided entirely by the order in which tensors choose their gap, so the
search works on that order: start from the best of greedy by size, greedy by breadth and best
fit, then repeatedly move one tensor to another place in the order and re-place everything,
keeping the change when the arena does not grow (equal moves let it cross plateaus). It stops
at the lower bound, which proves the result optimal, or after ``max_tries`` moves. Counting
moves, not seconds, keeps the result the same on every machine for a given ``seed``;
``time_limit`` is only a safety net for graphs far bigger than the course's (a session plans
once, at construction, and should not take minutes there).
"""
from __future__ import annotations

import random
import time
from typing import Hashable, Mapping, Optional

from course.memory.best_fit import place_best_fit
from course.memory.bound import lower_bound
from course.memory.greedy import by_breadth_order, by_size_order, neighbours, place_in_order
from course.memory.liveness import Interval
from course.memory.validate import arena_bytes

MAX_TRIES = 1000
TIME_LIMIT = 10.0  # seconds


def place_best(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int],
               max_tries: int = MAX_TRIES, seed: int = 0, time_limit: Optional[float] = TIME_LIMIT) -> dict:
    """The smallest placement found by the heuristics and up to ``max_tries`` order moves."""
    meet = neighbours(intervals)
    bound = lower_bound(intervals, sizes)
    tried = [place_best_fit(intervals, sizes)]
    orders = [by_size_order(intervals, sizes), by_breadth_order(intervals, sizes)]
    greedy = [place_in_order(order, intervals, sizes, meet) for order in orders]
    tried += greedy
    if min(arena_bytes(p, sizes) for p in tried) > bound:
        start = min(range(len(orders)), key=lambda i: arena_bytes(greedy[i], sizes))
        tried.append(search_order(orders[start], intervals, sizes, meet, bound, max_tries, seed, time_limit))
    return min(tried, key=lambda p: arena_bytes(p, sizes))  # first of equals: the simplest


def search_order(order: list, intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int],
                 meet: Mapping, bound: int, max_tries: int, seed: int = 0,
                 time_limit: Optional[float] = None) -> dict:
    """Local search over a greedy order: move one tensor, re-place, keep if not bigger."""
    rng = random.Random(seed)
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    best_order = list(order)
    best = arena_bytes(place_in_order(best_order, intervals, sizes, meet), sizes)
    for _ in range(max_tries):
        if best <= bound or (deadline is not None and time.perf_counter() > deadline):
            break
        order = list(best_order)
        order.insert(rng.randrange(len(order)), order.pop(rng.randrange(len(order))))
        size = arena_bytes(place_in_order(order, intervals, sizes, meet), sizes)
        if size <= best:
            best_order, best = order, size
    return place_in_order(best_order, intervals, sizes, meet)
