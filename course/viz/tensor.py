"""Pictures of strides and views (lesson 02): a view's memory as a row of cells, and an explorer
with sliders for the shape, the permutation and a slice that redraws the picture.

The picture has two parts. Above, the flat buffer: one cell per position, labelled with its
offset; the cells the view reads are coloured, and arcs follow the view's elements in row-major
order, so a contiguous view walks the row in unit steps while a transpose or a strided slice
jumps. Below, the view in its own shape, each element showing the buffer offset it reads
(``offset + sum(index * strides)``) in the colour of that cell. Strides count elements.
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

from course.tensor import Layout, as_view, gather_offsets, reshape_strides

MAX_ARCS = 64  # beyond this many elements the walk's arcs would hide the cells


def view_offsets(shape: Sequence[int], strides: Sequence[int], offset: int = 0) -> np.ndarray:
    """The buffer offset of every element of the view, as an int array of its shape."""
    return gather_offsets(Layout(tuple(shape), tuple(strides), offset))


def _grid(shape: tuple) -> tuple[int, int]:
    """Rows and columns of the view drawn flat: the last axis across, all others down."""
    if not shape:
        return 1, 1
    return int(np.prod(shape[:-1], dtype=np.int64)), shape[-1]


def _row_label(shape: tuple, row: int) -> str:
    if len(shape) <= 1:
        return ""
    index = np.unravel_index(row, shape[:-1])
    return "[" + ", ".join(str(int(i)) for i in index) + ", :]"


def draw_view(shape: Sequence[int], strides: Sequence[int], offset: int = 0,
              buffer_size: Optional[int] = None, title: Optional[str] = None, walk: bool = True):
    """The view ``(shape, strides, offset)`` over a flat buffer of ``buffer_size`` cells (default:
    up to the last cell it reads). Top: the buffer, view cells coloured, arcs from each element to
    the next in row-major order (``walk``; one arc per step that moves, none past ``MAX_ARCS``
    elements). Bottom: the view, each element labelled with its buffer offset. Returns the Figure;
    its artists carry ``gid`` "buffer" / "view-cell" / "offset" / "walk" for tests."""
    shape, strides = tuple(int(d) for d in shape), tuple(int(s) for s in strides)
    flat = view_offsets(shape, strides, offset).reshape(-1)
    size = int(buffer_size) if buffer_size is not None else int(flat.max(initial=offset)) + 1
    if flat.size and (flat.min() < 0 or flat.max() >= size):
        raise ValueError(f"the view reads [{flat.min()}, {flat.max()}], outside a buffer of {size}")
    cmap = plt.get_cmap("viridis")
    colour = {}  # buffer position -> colour of the first element that reads it
    for k, pos in enumerate(flat.tolist()):
        colour.setdefault(pos, cmap(0.15 + 0.75 * k / max(flat.size - 1, 1)))
    fig, mem, grid = _figure(size, *_grid(shape))
    _draw_buffer(mem, size, flat, colour, walk)
    mem.set_title(title or f"shape {shape}   strides {strides}   offset {offset}", fontsize=10)
    _draw_elements(grid, shape, flat, colour)
    return fig


def _figure(size: int, rows: int, cols: int):
    """A figure with the buffer's axes above the view's, laid out in inches so that every cell is
    square: buffer cells of ``cm`` inches (smaller for a long buffer), view cells of ``cg``."""
    cm, cg, left = min(0.4, 11.0 / max(size, 1)), min(0.42, 5.0 / max(rows, 1)), 0.9
    mem_w, mem_h = cm * (size + 0.4), cm * 4.0
    grid_w, grid_h = cg * (max(cols, 1) + 0.4), cg * (rows + 0.4)
    width, height = left + max(mem_w, grid_w) + 0.3, mem_h + grid_h + 0.95
    fig = plt.figure(figsize=(width, height))
    mem = fig.add_axes((left / width, (grid_h + 0.55) / height, mem_w / width, mem_h / height))
    grid = fig.add_axes((left / width, 0.1 / height, grid_w / width, grid_h / height))
    return fig, mem, grid


def _draw_buffer(ax, size: int, flat: np.ndarray, colour: dict, walk: bool) -> None:
    for pos in range(size):
        inside = pos in colour
        ax.add_patch(Rectangle((pos, 0), 1, 1, facecolor=colour.get(pos, "#eeeeee"), edgecolor="black",
                               linewidth=0.6, gid="view-cell" if inside else "buffer"))
        ax.text(pos + 0.5, 0.5, str(pos), ha="center", va="center", fontsize=7,
                color="white" if inside else "0.45")
    if walk and 1 < flat.size <= MAX_ARCS:
        for a, b in zip(flat[:-1].tolist(), flat[1:].tolist()):
            if a == b:
                continue  # stride 0: the same cell again
            # every arc rises about one cell whatever its length (the bend is relative to the
            # length): forward jumps above the buffer, backward ones below it
            rad = -min(0.6, 2.0 / abs(b - a))
            y = 1.0 if b > a else 0.0
            ax.add_patch(FancyArrowPatch((a + 0.5, y), (b + 0.5, y), connectionstyle=f"arc3,rad={rad}",
                                         arrowstyle="-|>", mutation_scale=6, linewidth=0.7,
                                         color="crimson", gid="walk"))
    ax.set_xlim(-0.2, size + 0.2)
    ax.set_ylim(-1.5, 2.5)
    ax.axis("off")
    ax.text(-0.4, 0.5, "buffer", ha="right", va="center", fontsize=8)


def _draw_elements(ax, shape: tuple, flat: np.ndarray, colour: dict) -> None:
    rows, cols = _grid(shape)
    labels = flat.reshape(rows, cols) if flat.size else np.zeros((rows, 0), dtype=np.int64)
    for r, c in itertools.product(range(rows), range(cols)):
        pos, y = int(labels[r, c]), rows - 1 - r
        ax.add_patch(Rectangle((c, y), 1, 1, facecolor=colour[pos], edgecolor="black", linewidth=0.6))
        ax.text(c + 0.5, y + 0.5, str(pos), ha="center", va="center", fontsize=8, color="white", gid="offset")
    for r in range(rows):
        ax.text(-0.15, rows - 1 - r + 0.5, _row_label(shape, r), ha="right", va="center", fontsize=7)
    ax.set_xlim(-0.2, max(cols, 1) + 0.2)
    ax.set_ylim(-0.2, rows + 0.2)
    ax.axis("off")
    ax.set_title("the view: the buffer offset each element reads", fontsize=8, loc="left")


def describe_view(shape: Sequence[int], strides: Sequence[int], offset: int = 0) -> str:
    """One line: the layout, whether it is contiguous, and whether flattening it is a view."""
    flat = reshape_strides(tuple(shape), tuple(strides), (int(np.prod(shape, dtype=np.int64)),))
    contiguous = Layout(tuple(shape), tuple(strides), offset).is_contiguous
    how = f"a view with stride {flat[0]}" if flat is not None else "impossible without a copy"
    return (f"shape {tuple(shape)}, strides {tuple(strides)}, offset {offset}; "
            f"contiguous: {'yes' if contiguous else 'no'}; flattening it: {how}")


def _slice_args(lo: int, hi: int, step: int) -> tuple:
    """``(start, stop, step)`` that walks indices lo .. hi-1 with ``step`` (backwards when negative)."""
    if step > 0:
        return lo, hi, step
    return hi - 1, (lo - 1 if lo > 0 else None), step


def view_explorer(shapes: Sequence[Sequence[int]] = ((3, 4), (2, 3, 4), (4, 6))):
    """An ipywidgets explorer: pick a contiguous tensor's shape, permute its axes, slice one axis
    of the permuted view (a range of indices and a step, negative steps included) and see the
    result drawn by :func:`draw_view` over the same buffer, with its strides and offset. Returns
    the widget box; ``box.figure`` and ``box.layout_now`` hold the last picture and view (tests
    read them)."""
    return _ViewExplorer([tuple(int(d) for d in s) for s in shapes]).box


class _ViewExplorer:
    """The explorer's controls and what they do: a new shape resets the permutation, the sliced
    axis, the index range and the step; a new permutation or axis resets the index range."""

    def __init__(self, shapes: list):
        import ipywidgets as widgets

        self.shape = widgets.Dropdown(options=[(str(s), s) for s in shapes], value=shapes[0], description="shape")
        self.perm = widgets.Dropdown(description="permute")
        self.axis = widgets.Dropdown(description="slice axis")
        self.step = widgets.Dropdown(options=[1, 2, 3, -1, -2], value=1, description="step")
        self.range = widgets.IntRangeSlider(description="indices", continuous_update=False)
        self.info, self.out = widgets.HTML(), widgets.Output()
        self.box = widgets.VBox([widgets.HBox([self.shape, self.perm]), widgets.HBox([self.axis, self.step]),
                                 self.range, self.info, self.out])
        self.busy = False
        self.shape.observe(self._quietly(self._reset_shape), names="value")
        self.perm.observe(self._quietly(self._reset_axis), names="value")
        self.axis.observe(self._quietly(self._reset_axis), names="value")
        self.range.observe(self.show, names="value")
        self.step.observe(self.show, names="value")
        self._quietly(self._reset_shape)(None)

    def _quietly(self, reset):
        """A handler that resets the dependent controls without drawing, then draws once."""
        def handler(change):
            if self.busy:
                return
            self.busy = True
            try:
                reset()
            finally:
                self.busy = False
            self.show()
        return handler

    def _reset_shape(self):
        ndim = len(self.shape.value)
        self.perm.options = [(str(p), p) for p in itertools.permutations(range(ndim))]
        self.perm.value = tuple(range(ndim))
        self.axis.options = list(range(ndim))
        self.axis.value = ndim - 1
        self.step.value = 1
        self._reset_axis()

    def _reset_axis(self):
        d = self.shape.value[self.perm.value[self.axis.value]]
        self.range.min, self.range.max = 0, d
        self.range.value = (0, d)

    def show(self, change=None):
        if self.busy:
            return
        base = as_view(np.arange(int(np.prod(self.shape.value))).reshape(self.shape.value))
        view = base.permute(*self.perm.value).slice(self.axis.value, *_slice_args(*self.range.value, self.step.value))
        layout = view.layout
        self.info.value = f"<code>{describe_view(layout.shape, layout.strides, layout.offset)}</code>"
        self.box.layout_now, self.box.figure = layout, None
        with self.out:
            self.out.clear_output(wait=True)
            if layout.size == 0:
                print("the slice is empty: widen the index range")
                return
            fig = draw_view(layout.shape, layout.strides, layout.offset, buffer_size=base.buffer.size)
            plt.show()
            plt.close(fig)
        self.box.figure = fig
