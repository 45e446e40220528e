"""Lesson 05's tiled-matmul pictures (course.viz.tiles): the tile march of one block, the strided
micro-tile ownership, and the tile-size explorer widget."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course.viz.tiles import (draw_micro_tiles, draw_tile_march, micro_tile_owner, tile_loads,  # noqa: E402
                              tile_march, tile_size_explorer)


def test_tile_march_steps_and_clipping():
    steps = tile_march(20, 13, 11, 8, block=(1, 2))
    assert [s["k0"] for s in steps] == [0, 8]
    assert steps[0]["a_rows"] == (16, 20) and steps[0]["b_cols"] == (8, 13)
    assert steps[1]["a_cols"] == (8, 11) and steps[1]["b_rows"] == (8, 11)
    assert steps[1]["a_loads"] == 4 * 3 and steps[1]["b_loads"] == 3 * 5
    with pytest.raises(ValueError):
        tile_march(20, 13, 11, 8, block=(2, 0))


def test_tile_march_loads_add_up_to_the_lesson_formula():
    M, N, K, T = 21, 10, 17, 4
    total_a = total_b = 0
    for by in range(-(-M // T)):
        for bx in range(-(-N // T)):
            for s in tile_march(M, N, K, T, (bx, by)):
                total_a += s["a_loads"]
                total_b += s["b_loads"]
    assert (total_a, total_b) == (tile_loads(M, N, K, T)["A"], tile_loads(M, N, K, T)["B"])
    assert tile_loads(M, N, K, T)["A"] == M * K * -(-N // T)


def test_draw_tile_march_one_row_per_step():
    fig = draw_tile_march(20, 13, 30, 8, block=(1, 0), max_steps=3)
    axes = fig.get_axes()
    assert len(axes) == 9
    filled = [p for p in axes[0].patches if p.get_fill() and p.get_facecolor()[:3] != (0.95, 0.95, 0.95)]
    assert (filled[0].get_x(), filled[0].get_y(), filled[0].get_width(), filled[0].get_height()) == (0, 0, 8, 8)
    assert "step 2, k0 = 16" in axes[6].get_title()
    plt.close(fig)


def test_micro_tile_ownership():
    strided = micro_tile_owner(32, 32, 4, 4)
    contiguous = micro_tile_owner(32, 32, 4, 4, strided=False)
    for owner in (strided, contiguous):
        assert np.array_equal(np.bincount(owner.ravel()), np.full(64, 16))
    assert strided[13, 22] == (13 % 8) * 8 + 22 % 8
    assert set(zip(*np.nonzero(strided == 9))) == {(1 + 8 * i, 1 + 8 * j) for i in range(4) for j in range(4)}
    assert contiguous[13, 22] == (13 // 4) * 8 + 22 // 4
    # a warp's stores: lanes 0-31 of the strided layout write 4 rows of 8 consecutive columns
    assert sorted(set(np.nonzero(strided[:8, :8] < 32)[0])) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        micro_tile_owner(32, 32, 3, 4)
    fig = draw_micro_tiles(thread=9)
    assert sum(1 for p in fig.get_axes()[0].patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)) == 16
    plt.close(fig)


def test_the_tile_size_explorer_redraws_and_recounts():
    box = tile_size_explorer(40, 30, 20)
    slider, text = box.children[0], box.children[1]
    assert slider.value == 8
    assert f"{tile_loads(40, 30, 20, 8)['tiled']:,}" in text.value
    before = plt.get_fignums()
    slider.value = 32
    assert f"tiled {tile_loads(40, 30, 20, 32)['tiled']:,}" in text.value and "tile 32" in text.value
    slider.value = 64
    assert "cannot launch" in text.value
    assert plt.get_fignums() == before
