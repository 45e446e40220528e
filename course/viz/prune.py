"""Pictures of pruning (lesson 11): accuracy against sparsity per method, before and after
fine-tuning (``course.prune.sparsity_curves``' result).

One colour per method; dashed with open markers = right after the cut, solid with filled
markers = fine-tuned. The x axis is the sparsity each point really reached (fraction of the
weights zero or removed), not the level asked for: filter pruning removes more than its level says.
A method with one point (2:4) shows as a pair of markers.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D


def draw_sparsity_curves(curves: Mapping[str, Sequence], float_accuracy: Optional[float] = None, ax=None,
                         title: str = "Test accuracy against sparsity"):
    """``curves``: {method: [points with .sparsity, .pruned, .finetuned]}; accuracies in percent.
    Each method draws two lines, labelled ``"<method>, no fine-tuning"`` (dashed) and
    ``"<method>, fine-tuned"`` (solid); the legend names the methods and the two styles once."""
    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    handles = []
    for i, (name, points) in enumerate(curves.items()):
        color = plt.get_cmap("tab10")(i)
        pts = sorted(points, key=lambda p: p.sparsity)
        x = [100 * p.sparsity for p in pts]
        ax.plot(x, [100 * p.pruned for p in pts], "o--", color=color, mfc="none", label=f"{name}, no fine-tuning")
        ax.plot(x, [100 * p.finetuned for p in pts], "o-", color=color, label=f"{name}, fine-tuned")
        handles.append(Line2D([], [], color=color, marker="o", label=name))
    handles += [Line2D([], [], color="0.4", ls="--", mfc="none", marker="o", label="no fine-tuning"),
                Line2D([], [], color="0.4", ls="-", marker="o", label="fine-tuned")]
    if float_accuracy is not None:
        ax.axhline(100 * float_accuracy, color="k", ls=":", lw=1)
        handles.append(Line2D([], [], color="k", ls=":", label=f"unpruned: {100 * float_accuracy:.1f} %"))
    ax.set_xlabel("sparsity (% of weights zero or removed)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(handles=handles, fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    return ax
