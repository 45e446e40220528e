"""A histogram of |x| that grows with the data: what the percentile, entropy and MSE calibrators read.

Batches arrive one at a time and a later batch may hold a larger |x| than any before, so the
histogram keeps a fixed number of bins over [0, amax] and, when amax grows, re-bins the counts it
has into the wider range (linear interpolation of the cumulative counts; onnxruntime and TensorRT
also merge histograms approximately). The signed min and max, and the count of exact zeros, are kept exactly beside it.
"""
from __future__ import annotations

import numpy as np


class AbsHistogram:
    """Counts of |x| in ``bins`` equal bins over [0, amax], plus the exact min and max of x and the
    number of exact zeros (``zeros``: they sit in bin 0 with the small non-zero values)."""

    def __init__(self, bins: int = 2048):
        self.bins = bins
        self.counts = np.zeros(bins, np.float64)
        self.amax = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.zeros = 0.0

    @property
    def width(self) -> float:
        return self.amax / self.bins

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(0.0, self.amax, self.bins + 1)

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64).ravel()
        if x.size == 0:
            return
        self.min, self.max = min(self.min, float(x.min())), max(self.max, float(x.max()))
        a = np.abs(x)
        self.zeros += float(np.count_nonzero(a == 0))
        top = float(a.max())
        if top > self.amax:
            self._widen(top)
        if self.amax == 0.0:  # all zeros so far: everything sits in the first bin
            self.counts[0] += a.size
            return
        self.counts += np.histogram(a, bins=self.bins, range=(0.0, self.amax))[0]

    def _widen(self, amax: float) -> None:
        if self.counts.any() and self.amax > 0.0:
            cum = np.concatenate([[0.0], np.cumsum(self.counts)])
            new_edges = np.linspace(0.0, amax, self.bins + 1)
            self.counts = np.diff(np.interp(new_edges, self.edges, cum))
        self.amax = amax

    def clipped(self, threshold: float) -> tuple[float, float]:
        """The signed range [min, max] clipped to [-threshold, threshold]."""
        lo = 0.0 if self.min >= 0 else max(self.min, -threshold)
        return lo, min(self.max, threshold)
