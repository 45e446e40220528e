"""The memory-plan pictures (course.viz.memory): one rectangle per tensor at its offset and
steps, the live-bytes staircase with its bound, and a slider that redraws for each step."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from course.memory import describe, live_bytes, place, step_liveness  # noqa: E402
from course.viz.memory import alive_at, draw_live_bytes, draw_plan, plan_slider  # noqa: E402

BLOCK = "c1:4 <- x; r1:4 <- c1; c2:2 <- r1; c3:2 <- r1; s:2 <- c2 c3; p:1 <- s; y:1* <- p"


def problem():
    steps, sizes, outputs = describe(BLOCK)
    intervals = step_liveness(steps, keep=outputs)
    return intervals, sizes, place(intervals, sizes, "greedy_by_size")


def test_draw_plan_puts_one_rectangle_per_tensor_where_it_lives():
    intervals, sizes, offsets = problem()
    fig, ax = plt.subplots()
    draw_plan(intervals, sizes, offsets, ax=ax, unit=64, step=3)
    rects = ax.patches
    assert len(rects) == len(intervals)
    for rect, t in zip(rects, intervals):
        first, last = intervals[t]
        assert rect.get_y() == offsets[t] / 64 and rect.get_height() == sizes[t] / 64
        assert rect.get_x() < first <= last < rect.get_x() + rect.get_width()
        assert (rect.get_alpha() > 0.5) == (t in alive_at(intervals, 3))
    assert ax.get_ylim()[1] >= max(offsets[t] + sizes[t] for t in offsets) / 64
    plt.close(fig)


def test_draw_live_bytes_marks_the_bound_and_the_arenas():
    intervals, sizes, offsets = problem()
    live = live_bytes(intervals, sizes)
    fig, ax = plt.subplots()
    draw_live_bytes(live, ax=ax, arenas={"greedy": 8 * 64}, unit=64)
    levels = [line.get_ydata()[0] for line in ax.get_lines()[1:]]
    assert levels == [max(live) / 64, 8]
    plt.close(fig)


def test_the_slider_redraws_for_each_step():
    intervals, sizes, offsets = problem()
    box = plan_slider(intervals, sizes, offsets, step_names=[f"step {i}" for i in range(7)], unit=64)
    slider = box.children[0]
    assert (slider.min, slider.max) == (0, 6)
    before = plt.get_fignums()
    slider.value = 4
    assert plt.get_fignums() == before  # each redraw closes its figure
