"""The im2col picture (lesson 03): one output pixel's receptive field in the padded input, and
the column of the im2col matrix it becomes.

Left, each input channel as a grid with its zero padding hatched; the cells that output pixel
``(y, x)`` reads are coloured, one colour per tap. Right, the ``(C*kh*kw, OH*OW)`` matrix with
column ``q = y*OW + x`` filled in the same colours: row ``r = (c*kh + i)*kw + j`` holds tap
``(i, j)`` of channel ``c``. The input holds ``0, 1, 2, ...`` so every number in the column
says which input element (or which zero of the padding) it copied.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import ConnectionPatch, Rectangle


@dataclass(frozen=True)
class Tap:
    """Row ``row`` of the column: channel ``c``, kernel tap ``(i, j)``, input position ``(h, w)``
    (unpadded coordinates: outside ``0..H-1`` / ``0..W-1`` is padding, value 0)."""
    row: int
    c: int
    i: int
    j: int
    h: int
    w: int
    inside: bool


def out_size(n: int, k: int, s: int, pb: int, pe: int, d: int) -> int:
    return (n + pb + pe - d * (k - 1) - 1) // s + 1


def receptive_field(x_shape: Sequence[int], kernel: Sequence[int], strides=(1, 1), pads=(0, 0, 0, 0),
                    dilations=(1, 1), pixel=(0, 0)) -> list[Tap]:
    """The taps of output pixel ``pixel = (y, x)`` of a conv over a ``(C, H, W)`` input, in the
    order of the im2col rows. ``pads`` is ONNX's ``[top, left, bottom, right]``."""
    C, H, W = x_shape
    kh, kw = kernel
    (sh, sw), (dh, dw), (pt, pl) = strides, dilations, pads[:2]
    y, x = pixel
    taps = []
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                h, w = y * sh + i * dh - pt, x * sw + j * dw - pl
                taps.append(Tap((c * kh + i) * kw + j, c, i, j, h, w, 0 <= h < H and 0 <= w < W))
    return taps


def draw_im2col(x_shape: Sequence[int], kernel: Sequence[int], strides=(1, 1), pads=(0, 0, 0, 0),
                dilations=(1, 1), pixel=(0, 0)):
    """Output pixel ``pixel``'s receptive field in a ``(C, H, W)`` input holding ``0, 1, 2, ...``
    and the im2col column it becomes. Returns the Figure; its artists carry ``gid`` "tap" (a
    receptive-field cell), "column-cell" / "column-value" (the column's cells and numbers) and
    "arrow" for tests."""
    C, H, W = x_shape
    kh, kw = kernel
    pt, pl, pb, pr = pads
    oh = out_size(H, kh, strides[0], pt, pb, dilations[0])
    ow = out_size(W, kw, strides[1], pl, pr, dilations[1])
    y, x = pixel
    if not (0 <= y < oh and 0 <= x < ow):
        raise ValueError(f"pixel {pixel} is outside the {oh} x {ow} output")
    taps = receptive_field(x_shape, kernel, strides, pads, dilations, pixel)
    cmap = plt.get_cmap("viridis")
    colour = {t.row: cmap(0.1 + 0.8 * t.row / max(len(taps) - 1, 1)) for t in taps}
    ph, pw = H + pt + pb, W + pl + pr  # padded size of one channel
    rows, q = len(taps), y * ow + x
    tall = max(ph, rows)  # both axes span this many cells, so their cells are the same size
    cell = min(0.32, 7.0 / max(rows, C * (pw + 1)))
    left_w, right_w = C * (pw + 1) * cell, (oh * ow + 2) * cell
    width, height = left_w + right_w + 1.2, tall * cell + 1.0
    fig = plt.figure(figsize=(width, height))
    inp = fig.add_axes((0.2 / width, 0.2 / height, left_w / width, (height - 0.7) / height))
    mat = fig.add_axes(((left_w + 0.9) / width, 0.2 / height, right_w / width, (height - 0.7) / height))
    _draw_input(inp, x_shape, pads, taps, colour, tall)
    _draw_matrix(mat, x_shape, taps, colour, oh * ow, q, tall)
    mat.set_title(f"im2col matrix ({rows} x {oh * ow}): column q = y*OW + x = {y}*{ow} + {x}", fontsize=9)
    # an arrow from the right edge of channel 0's patch to the top of the column
    first = [t for t in taps if t.c == 0]
    start = (max(t.w for t in first) + pl + 1, ph - 1 - (min(t.h for t in first) + pt) + 0.5)
    fig.add_artist(ConnectionPatch(start, (q, rows - 0.5), "data", "data", axesA=inp, axesB=mat,
                                   arrowstyle="-|>", color="crimson", linewidth=1.2, mutation_scale=10,
                                   connectionstyle="arc3,rad=-0.2", gid="arrow"))
    fig.suptitle(f"output pixel (y={y}, x={x}): kernel {kh}x{kw}, strides {tuple(strides)}, "
                 f"pads {tuple(pads)}, dilations {tuple(dilations)}", fontsize=9, y=1 - 0.08 / height)
    return fig


def _value(x_shape, c: int, h: int, w: int) -> int:
    """The number input element (c, h, w) holds: its offset; 0 in the padding."""
    C, H, W = x_shape
    return (c * H + h) * W + w if 0 <= h < H and 0 <= w < W else 0


def _draw_input(ax, x_shape, pads, taps: list, colour: dict, tall: int) -> None:
    """Each channel padded, side by side; the taps coloured; the padding hatched."""
    C, H, W = x_shape
    pt, pl, pb, pr = pads
    ph, pw = H + pt + pb, W + pl + pr
    tap_at = {(t.c, t.h, t.w): t for t in taps}
    for c in range(C):
        x0 = c * (pw + 1)
        for hp, wp in itertools.product(range(ph), range(pw)):
            h, w = hp - pt, wp - pl
            inside, tap = 0 <= h < H and 0 <= w < W, tap_at.get((c, h, w))
            face = colour[tap.row] if tap else ("white" if inside else "#eeeeee")
            ax.add_patch(Rectangle((x0 + wp, ph - 1 - hp), 1, 1, facecolor=face, edgecolor="0.4", linewidth=0.5,
                                   hatch=None if inside else "///", gid="tap" if tap else None))
            ax.text(x0 + wp + 0.5, ph - 0.5 - hp, str(_value(x_shape, c, h, w)), ha="center", va="center",
                    fontsize=6, color="white" if tap else ("0.2" if inside else "0.55"))
        ax.text(x0 + pw / 2, ph + 0.3, f"channel {c}", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-0.2, C * (pw + 1))
    ax.set_ylim(ph - tall - 0.2, ph + 1.2)
    ax.axis("off")


def _draw_matrix(ax, x_shape, taps: list, colour: dict, columns: int, q: int, tall: int) -> None:
    """The im2col matrix, row 0 at the top, with column ``q`` filled in and its rows named."""
    rows = len(taps)
    for r, col in itertools.product(range(rows), range(columns)):
        ours = col == q
        ax.add_patch(Rectangle((col, rows - 1 - r), 1, 1, edgecolor="0.6", linewidth=0.4,
                               facecolor=colour[r] if ours else "#f4f4f4", gid="column-cell" if ours else None))
    for t in taps:
        y = rows - 0.5 - t.row
        ax.text(q + 0.5, y, str(_value(x_shape, t.c, t.h, t.w)), ha="center", va="center", fontsize=6,
                color="white", gid="column-value")
        ax.text(-0.2, y, f"r={t.row}  (c={t.c}, i={t.i}, j={t.j})", ha="right", va="center", fontsize=6)
    ax.text(q + 0.5, rows + 0.2, f"q={q}", ha="center", va="bottom", fontsize=8, color="crimson")
    ax.set_xlim(-0.2, columns + 0.2)
    ax.set_ylim(rows - tall - 0.2, rows + 1.2)
    ax.axis("off")
