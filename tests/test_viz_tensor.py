"""The strides picture and the view explorer (course.viz.tensor): one cell per buffer position,
the view's cells coloured, each element labelled with the offset numpy reads it from, one arc per
step of the row-major walk that moves; the explorer redraws when a control changes."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course.viz.tensor import describe_view, draw_view, view_explorer, view_offsets  # noqa: E402


def by_gid(artists, gid):
    return [a for a in artists if a.get_gid() == gid]


CASES = [  # (what, the numpy view of arange(n), n)
    ("transpose", lambda a: a.reshape(3, 4).T, 12),
    ("reversed columns", lambda a: a.reshape(3, 4)[:, 3:0:-1], 12),
    ("rows with gaps", lambda a: a.reshape(3, 8)[:, :4], 24),
    ("3-d slice", lambda a: a.reshape(3, 4, 5)[1:, ::-1, ::2], 60),
    ("broadcast", lambda a: np.broadcast_to(a.reshape(3, 1), (3, 4)), 3),
]


@pytest.mark.parametrize("what, make, n", CASES, ids=[c[0] for c in CASES])
def test_draw_view_matches_what_numpy_reads(what, make, n):
    base = np.arange(n)
    view = make(base)  # base holds its own offsets, so the view's values are the offsets it reads
    strides = tuple(s // view.itemsize for s in view.strides)
    offset = (view.ctypes.data - base.ctypes.data) // base.itemsize
    assert view_offsets(view.shape, strides, offset).reshape(-1).tolist() == view.reshape(-1).tolist()

    fig = draw_view(view.shape, strides, offset, buffer_size=n)
    mem, grid = fig.axes
    reads = set(view.reshape(-1).tolist())
    cells = by_gid(mem.patches, "view-cell") + by_gid(mem.patches, "buffer")
    assert len(cells) == n, "one cell per buffer position"
    assert sorted(int(p.get_x()) for p in by_gid(mem.patches, "view-cell")) == sorted(reads)
    labels = [int(t.get_text()) for t in by_gid(grid.texts, "offset")]
    assert labels == view.reshape(-1).tolist(), "each element shows the offset it reads, in row-major order"
    flat = view.reshape(-1)
    moves = int(np.count_nonzero(flat[1:] != flat[:-1]))
    assert len(by_gid(mem.patches, "walk")) == moves, "one arc per step of the walk that moves"
    plt.close(fig)


def test_the_walk_is_left_out_for_big_views_and_a_bad_view_is_refused():
    fig = draw_view((10, 10), (10, 1))
    assert not by_gid(fig.axes[0].patches, "walk")
    plt.close(fig)
    with pytest.raises(ValueError, match="outside a buffer"):
        draw_view((3, 4), (4, 1), 2, buffer_size=12)


def test_describe_view_says_when_flattening_needs_a_copy():
    assert "flattening it: a view with stride 1" in describe_view((3, 4), (4, 1))
    assert "impossible without a copy" in describe_view((4, 3), (1, 4))
    assert "contiguous: no" in describe_view((3, 4), (8, 1))


def explorer_controls(box):
    (shape_w, perm_w), (axis_w, step_w) = box.children[0].children, box.children[1].children
    return shape_w, perm_w, axis_w, step_w, box.children[2], box.children[3]


def grid_labels(box):
    return [int(t.get_text()) for t in by_gid(box.figure.axes[1].texts, "offset")]


def test_the_explorer_redraws_when_a_control_changes():
    box = view_explorer(shapes=((3, 4), (2, 3, 4)))
    shape_w, perm_w, axis_w, step_w, range_w, info = explorer_controls(box)
    assert grid_labels(box) == list(range(12)) and "strides (4, 1), offset 0" in info.value
    before = plt.get_fignums()

    perm_w.value = (1, 0)  # the transpose: slicing axis 1 of it now ranges over 3 rows
    assert (box.layout_now.shape, box.layout_now.strides) == ((4, 3), (1, 4))
    assert range_w.max == 3 and grid_labels(box) == np.arange(12).reshape(3, 4).T.reshape(-1).tolist()

    step_w.value = -1  # columns of the transpose backwards
    want = np.arange(12).reshape(3, 4).T[:, ::-1]
    assert box.layout_now.strides == (1, -4) and box.layout_now.offset == 8
    assert grid_labels(box) == want.reshape(-1).tolist()
    assert "strides (1, -4), offset 8" in info.value

    range_w.value = (1, 3)  # rows 1..2 of the transpose's axis 1, walked backwards
    assert grid_labels(box) == np.arange(12).reshape(3, 4).T[:, 2:0:-1].reshape(-1).tolist()

    shape_w.value = (2, 3, 4)  # a new tensor resets the permutation, the axis, the range and the step
    assert len(perm_w.options) == 6 and perm_w.value == (0, 1, 2) and axis_w.value == 2
    assert grid_labels(box) == list(range(24))
    axis_w.value = 0
    step_w.value = 2
    assert box.layout_now.shape == (1, 3, 4) and box.layout_now.strides == (24, 4, 1)
    assert plt.get_fignums() == before, "each redraw closes its figure"


def test_an_empty_slice_draws_nothing():
    box = view_explorer()
    range_w = explorer_controls(box)[4]
    range_w.value = (2, 2)
    assert box.figure is None and box.layout_now.size == 0
