"""Shared-memory banks (lesson 05): which bank each lane of a warp hits, the conflict degree, and
an explorer with stride, padding and word-size sliders.

The access explored is lane ``t`` reading element ``t * stride`` of a shared array whose rows of
32 elements are followed by ``padding`` unused elements, exactly how a ``[rows][32 + padding]``
tile is laid out: reading down a column of such a tile is stride 32. The rule is the tracer's
(``kernels.trace.analysis``): 32 banks of 4-byte words, a request costs as many wavefronts as the
most distinct words one bank must deliver; 8-byte elements are served per half-warp.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import matplotlib.pyplot as plt


def bank_map(stride: int, padding: int = 0, word_bytes: int = 4, lanes: int = 32) -> dict:
    """Where each lane's element lies: ``elements``, byte ``addresses``, ``banks`` (one tuple of
    banks per lane: an 8-byte element spans two), the conflict ``degree`` and ``wavefronts``."""
    if word_bytes not in (4, 8, 16):
        raise ValueError(f"word_bytes must be 4, 8 or 16, got {word_bytes}")
    elements = [t * stride for t in range(lanes)]
    addresses = [(e + padding * (e // 32)) * word_bytes for e in elements]
    words = [range(a // 4, (a + word_bytes) // 4) for a in addresses]
    banks = [tuple(w % 32 for w in ws) for ws in words]
    per_group = 32 // (word_bytes // 4)  # 8-byte elements: two half-warps, each served on its own
    distinct = defaultdict(set)
    for lane, ws in enumerate(words):
        for w in ws:
            distinct[(lane // per_group, w % 32)].add(w)
    degree_of = defaultdict(int)
    for (group, _), ws in distinct.items():
        degree_of[group] = max(degree_of[group], len(ws))
    return {"elements": elements, "addresses": addresses, "banks": banks,
            "degree": max(degree_of.values()), "wavefronts": sum(degree_of.values())}


def draw_bank_map(stride: int, padding: int = 0, word_bytes: int = 4, ax=None):
    """Lanes (rows) against banks (columns); each cell a lane's word, numbered by the pass
    (wavefront) that serves it within its lane group. Returns the axes."""
    ax = ax if ax is not None else plt.gca()
    info = bank_map(stride, padding, word_bytes)
    grid = np.zeros((32, 32))
    per_group = 32 // (word_bytes // 4)
    seen = defaultdict(list)  # (group, bank) -> distinct words in order of first request
    for lane, a in enumerate(info["addresses"]):
        for w in range(a // 4, (a + word_bytes) // 4):
            order = seen[(lane // per_group, w % 32)]
            if w not in order:
                order.append(w)
            grid[lane, w % 32] = order.index(w) + 1
    ax.imshow(np.ma.masked_equal(grid, 0), cmap="viridis_r", vmin=1, vmax=max(2, grid.max()), aspect="auto")
    ax.set_xlabel("bank")
    ax.set_ylabel("lane")
    ax.set_title(f"stride {stride}, padding {padding}, {word_bytes}-byte words: degree {info['degree']}\n"
                 f"(colour: the pass that serves the lane's word)", fontsize=9)
    return ax


def _summary_html(stride, padding, word_bytes) -> str:
    info = bank_map(stride, padding, word_bytes)
    shown = ", ".join(f"{b[0]}" for b in info["banks"][:8])
    return (f"<b>conflict degree {info['degree']}</b> ({info['wavefronts']} wavefronts); "
            f"lane t reads element {stride}t; banks of lanes 0-7: {shown}, ...")


def bank_explorer(stride: int = 32, padding: int = 0, word_bytes: int = 4):
    """Sliders for the stride, the row padding and the element size; shows the bank of each of
    the 32 lanes and the conflict degree. Returns the widget."""
    import ipywidgets as widgets

    s = widgets.IntSlider(value=stride, min=0, max=64, description="stride", continuous_update=False)
    p = widgets.IntSlider(value=padding, min=0, max=4, description="padding", continuous_update=False)
    w = widgets.ToggleButtons(options=[4, 8], value=word_bytes, description="word bytes")
    text = widgets.HTML()
    out = widgets.Output()

    def show(change=None):
        text.value = _summary_html(s.value, p.value, w.value)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(5.5, 4))
            draw_bank_map(s.value, p.value, w.value, ax=ax)
            plt.show()
            plt.close(fig)

    for control in (s, p, w):
        control.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([s, p]), w, text, out])
