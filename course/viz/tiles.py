"""Pictures of tiled matrix multiplication (lesson 05): the tile march of one block along K, the
strided micro-tile ownership of register blocking, and a tile-size explorer (global loads against
the tile).

All counts here are the formulas of lesson 05 written in plain Python (no GPU, no Numba): the
tiled kernel loads only in-bounds elements, each element of A once per block column and each
element of B once per block row.
"""
from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle


def _cdiv(n: int, d: int) -> int:
    return -(-n // d)


def tile_march(M: int, N: int, K: int, tile: int, block: tuple[int, int] = (0, 0)) -> list[dict]:
    """What block ``(bx, by)`` of the tiled kernel loads at each step along K.

    One dict per step: ``k0``; ``a_rows``/``a_cols`` and ``b_rows``/``b_cols`` as ``(start, stop)``
    ranges of the tile clipped to the matrix (the rest of the tile is zero-filled, not loaded);
    ``a_loads``/``b_loads`` the global loads of that step."""
    bx, by = block
    if not (0 <= bx < _cdiv(N, tile) and 0 <= by < _cdiv(M, tile)):
        raise ValueError(f"block {block} is outside the grid ({_cdiv(N, tile)}, {_cdiv(M, tile)})")
    rows = (by * tile, min(M, (by + 1) * tile))
    cols = (bx * tile, min(N, (bx + 1) * tile))
    steps = []
    for k0 in range(0, K, tile):
        ks = (k0, min(K, k0 + tile))
        steps.append({"step": len(steps), "k0": k0, "a_rows": rows, "a_cols": ks, "b_rows": ks, "b_cols": cols,
                      "a_loads": (rows[1] - rows[0]) * (ks[1] - ks[0]),
                      "b_loads": (ks[1] - ks[0]) * (cols[1] - cols[0])})
    return steps


def _matrix(ax, shape, title, tile):
    """The matrix as a grey rectangle, with room for the tiles that stick out of it."""
    ax.add_patch(Rectangle((0, 0), shape[1], shape[0], facecolor="0.95", edgecolor="black", linewidth=1))
    ax.set_xlim(-0.5, _cdiv(shape[1], tile) * tile + 0.5)
    ax.set_ylim(_cdiv(shape[0], tile) * tile + 0.5, -0.5)  # row 0 at the top, as the matrix is written
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def _tile(ax, rows, cols, full, colour, alpha=0.9, label=None):
    """The tile as the kernel sees it (dashed, ``full``: rows x cols of the tile size) and the part
    loaded from memory (filled)."""
    (r0, r1), (c0, c1) = full
    ax.add_patch(Rectangle((c0, r0), c1 - c0, r1 - r0, fill=False, edgecolor=colour, linestyle="--", linewidth=1))
    ax.add_patch(Rectangle((cols[0], rows[0]), cols[1] - cols[0], rows[1] - rows[0],
                           facecolor=colour, edgecolor=colour, alpha=alpha, label=label))


def draw_tile_march(M: int, N: int, K: int, tile: int, block: tuple[int, int] = (0, 0), max_steps: int = 4):
    """One row per step of block ``block``: the A tile it loads (filled; dashed: the zero-filled
    rest of the tile), the B tile, and the C tile the block owns. Returns the figure."""
    steps = tile_march(M, N, K, tile, block)[:max_steps]
    bx, by = block
    fig, axes = plt.subplots(len(steps), 3, figsize=(9, 2.6 * len(steps)), squeeze=False)
    for row, st in zip(axes, steps):
        k0, t = st["k0"], tile
        _matrix(row[0], (M, K), f"step {st['step']}, k0 = {k0}: A tile ({st['a_loads']} loads)", t)
        _tile(row[0], st["a_rows"], st["a_cols"], ((by * t, by * t + t), (k0, k0 + t)), "tab:blue")
        (r0, r1), (c0, c1) = st["a_rows"], st["b_cols"]
        row[0].add_patch(Rectangle((0, r0), K, r1 - r0, color="tab:blue", alpha=0.1))  # the block's rows of A
        _matrix(row[1], (K, N), f"B tile ({st['b_loads']} loads)", t)
        _tile(row[1], st["b_rows"], st["b_cols"], ((k0, k0 + t), (bx * t, bx * t + t)), "tab:orange")
        row[1].add_patch(Rectangle((c0, 0), c1 - c0, K, color="tab:orange", alpha=0.1))  # its columns of B
        _matrix(row[2], (M, N), f"C tile of block {block}", t)
        _tile(row[2], st["a_rows"], st["b_cols"], ((by * t, by * t + t), (bx * t, bx * t + t)), "tab:green",
              alpha=0.3 + 0.7 * (st["step"] + 1) / len(steps))
    fig.suptitle(f"block {block} of the tiled matmul, M, N, K = {M}, {N}, {K}, tile {tile}: one A tile and one "
                 f"B tile per step along K\n(grey: the matrix; dashed: the part of a tile past its edge, zero-filled)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def micro_tile_owner(BM: int, BN: int, TM: int, TN: int, strided: bool = True) -> np.ndarray:
    """(BM, BN) array: the thread (``tid = ty * (BN // TN) + tx``) that computes each output of the
    block tile. Strided: thread (tx, ty) owns rows ty + i*(BM/TM), columns tx + j*(BN/TN);
    contiguous: the TM x TN patch at rows ty*TM.., columns tx*TN..."""
    if BM % TM or BN % TN:
        raise ValueError(f"the micro-tile {TM} x {TN} must divide the block tile {BM} x {BN}")
    ny, nx = BM // TM, BN // TN
    r, c = np.meshgrid(np.arange(BM), np.arange(BN), indexing="ij")
    if strided:
        ty, tx = r % ny, c % nx
    else:
        ty, tx = r // TM, c // TN
    return ty * nx + tx


def draw_micro_tiles(BM: int = 32, BN: int = 32, TM: int = 4, TN: int = 4, thread: int = 9):
    """Strided and contiguous micro-tile ownership side by side: every output coloured by its
    thread's position in warp 0 (threads 0-31) or grey (other warps), the outputs of ``thread``
    outlined. Returns the figure."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, strided in zip(axes, (True, False)):
        owner = micro_tile_owner(BM, BN, TM, TN, strided)
        shown = np.where(owner < 32, owner, -1).astype(float)
        ax.imshow(np.ma.masked_less(shown, 0), cmap="tab20b", vmin=0, vmax=31)
        ax.imshow(np.ma.masked_greater_equal(shown, 0), cmap=ListedColormap(["0.88"]))
        for r, c in zip(*np.nonzero(owner == thread)):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_title(("strided" if strided else "contiguous") + f": thread {thread}'s {TM * TN} outputs in red;\n"
                     "colour: the lane of warp 0 that owns it (grey: other warps)", fontsize=9)
        ax.set_xlabel("column of the block tile")
        ax.set_ylabel("row of the block tile")
    fig.tight_layout()
    return fig


def tile_loads(M: int, N: int, K: int, tile: int) -> dict:
    """Global loads of the naive and the tiled matmul, and what a tile x tile block costs."""
    a, b = M * K * _cdiv(N, tile), K * N * _cdiv(M, tile)
    return {"naive": 2 * M * N * K, "A": a, "B": b, "tiled": a + b, "threads": tile * tile,
            "shared_bytes": 2 * tile * tile * 4, "blocks": _cdiv(M, tile) * _cdiv(N, tile)}


def _loads_html(M, N, K, tile) -> str:
    d = tile_loads(M, N, K, tile)
    warn = " <b style='color:#b00'>(more than 1024 threads: cannot launch)</b>" if d["threads"] > 1024 else ""
    return (f"<b>tile {tile}</b>: {d['blocks']} blocks of {d['threads']} threads{warn}, "
            f"{d['shared_bytes']} bytes of shared memory each<br>"
            f"global loads: naive {d['naive']:,}, tiled {d['tiled']:,} (A {d['A']:,} + B {d['B']:,}): "
            f"{d['naive'] / d['tiled']:.1f}x fewer")


def tile_size_explorer(M: int = 100, N: int = 100, K: int = 100, tiles=(1, 2, 4, 8, 16, 32, 64)):
    """A slider over tile sizes: global loads of the tiled matmul (and of the naive one) for an
    M x K by K x N product, the threads and shared memory a block needs. Returns the widget."""
    import ipywidgets as widgets

    slider = widgets.SelectionSlider(options=list(tiles), value=8 if 8 in tiles else tiles[0],
                                     description="tile", continuous_update=False)
    text = widgets.HTML()
    out = widgets.Output()

    def show(change=None):
        text.value = _loads_html(M, N, K, slider.value)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6, 3))
            loads = [tile_loads(M, N, K, t)["tiled"] for t in tiles]
            ax.loglog(tiles, loads, "o-", label="tiled")
            ax.axhline(2 * M * N * K, color="0.5", ls="--", label="naive")
            ax.plot([slider.value], [tile_loads(M, N, K, slider.value)["tiled"]], "o", ms=12, mfc="none", color="red")
            ax.set_xlabel("tile")
            ax.set_ylabel("global loads")
            ax.set_title(f"M, N, K = {M}, {N}, {K}", fontsize=9)
            ax.legend(fontsize=8)
            plt.show()
            plt.close(fig)

    slider.observe(show, names="value")
    show()
    return widgets.VBox([slider, text, out])
