"""Pictures of quantization (lesson 10): a tensor's histogram with each calibrator's clipping
threshold, the per-layer sensitivity bar chart, and accuracy against bit width.

The histogram is drawn on a log count axis: the tail a min-max calibrator stretches its grid to
cover is a few hundred values among hundreds of thousands, invisible on a linear axis.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np


def draw_thresholds(values: np.ndarray, thresholds: Mapping[str, float], ax=None, bins: int = 200,
                    title: Optional[str] = None, absolute: bool = True):
    """Histogram of ``values`` (of |values| when ``absolute``) with one vertical line per
    calibrator at the threshold it chose (``{"min-max": 3.1, "entropy": 1.9, ...}``)."""
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    v = np.abs(np.ravel(values)) if absolute else np.ravel(values)
    ax.hist(v, bins=bins, color="0.6", log=True)
    for i, (name, t) in enumerate(thresholds.items()):
        ax.axvline(t, color=plt.get_cmap("tab10")(i), lw=1.5, ls="--", label=f"{name}: {t:.3g}")
    ax.set_xlabel("|x|" if absolute else "x")
    ax.set_ylabel("count (log)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_sensitivity(layers: Sequence[str], sqnr_db: Sequence[float], ax=None, whole_model: Optional[float] = None,
                     title: str = "SQNR of the logits with one layer quantized"):
    """One bar per layer: the logits' SQNR (dB) when only that layer is quantized; lower bars are
    the layers that cost the most. ``whole_model``: the SQNR with every layer quantized, as a line."""
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    order = np.argsort(sqnr_db)
    ax.barh([layers[i] for i in order], [sqnr_db[i] for i in order], color="tab:blue")
    if whole_model is not None:
        ax.axvline(whole_model, color="tab:red", ls="--", label=f"all layers: {whole_model:.1f} dB")
        ax.legend(fontsize=7)
    ax.set_xlabel("SQNR (dB), higher is better")
    ax.set_title(title, fontsize=9)
    return ax


def draw_accuracy_vs_bits(curves: Mapping[str, Mapping[int, float]], float_accuracy: Optional[float] = None,
                          ax=None, title: str = "Test accuracy against weight bits"):
    """One line per method (``{"PTQ": {bits: accuracy}, "QAT": {...}}``), accuracy in percent."""
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    for name, points in curves.items():
        bits = sorted(points)
        ax.plot(bits, [100 * points[b] for b in bits], "o-", label=name)
    if float_accuracy is not None:
        ax.axhline(100 * float_accuracy, color="k", ls=":", label=f"float32: {100 * float_accuracy:.1f} %")
    ax.set_xlabel("weight bits")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return ax
