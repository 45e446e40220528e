"""Thresholds chosen on a histogram of |x|: TensorRT's KL-divergence rule and the least MSE.

Entropy (TensorRT, "8-bit Inference with TensorRT", 2017), for each candidate i of ``levels`` ..
``bins`` kept bins:

    P = hist[:i], with everything clipped (hist[i:].sum()) folded into P[i-1]
    Q = hist[:i] merged into ``levels`` chunks, each chunk's count spread evenly over its non-empty bins
    divergence[i] = KL(P / sum P || Q / sum Q)

and the threshold is (m + 0.5) * bin width for the i = m with the smallest divergence. Folding the
clipped mass into the last bin is what makes clipping cost something: forget it and P never sees
the outliers, so the smallest threshold always wins. The first bin's count is replaced by the
second's (as NVIDIA's pytorch-quantization does): after a ReLU half the values are exact zeros,
and that spike, smeared over a chunk of Q, would favour thresholds far too small.

MSE: for a threshold t, values below t pick up rounding noise of variance step^2 / 12 (step =
t / ``steps``), values above t the clipping error (|x| - t)^2; the threshold with the least total
over the histogram (bin centres stand for their values) wins.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-4  # smoothing so that KL stays finite where Q is empty but P is not


def _smooth(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Give EPS to the bins where Q is empty but P is not, and renormalise, so log(p / q) stays
    finite. Only those bins: smoothing every empty bin moves EPS * (number of empty bins) of Q's
    mass away from where P is, a penalty that grows with the candidate's width on a sparse
    histogram (a tail, values on a grid) and so biased the choice towards clipping."""
    q = q + EPS * ((q == 0) & (p > 0))
    return q / q.sum()


def expand_quantized(src: np.ndarray, levels: int) -> np.ndarray:
    """Merge ``src`` into ``levels`` chunks and spread each chunk's sum over its non-empty bins."""
    i = src.size
    edges = (np.arange(levels + 1) * i) // levels
    nonzero = src != 0
    sums = np.add.reduceat(src, edges[:-1])
    counts = np.add.reduceat(nonzero.astype(np.float64), edges[:-1])
    per_bin = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return np.repeat(per_bin, np.diff(edges)) * nonzero


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    q = _smooth(q / q.sum(), p)
    keep = p > 0
    return float(np.sum(p[keep] * np.log(p[keep] / q[keep])))


def entropy_threshold(hist: np.ndarray, width: float, levels: int = 128) -> float:
    """TensorRT's threshold for a histogram of |x| with bins of ``width``."""
    hist = np.array(hist, np.float64)
    if hist.size <= levels or hist.sum() == 0:
        return hist.size * width
    hist[0] = hist[1]  # a ReLU's exact zeros would dominate P and Q alike (pytorch-quantization does this)
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # tail[i] = hist[i:].sum()
    best_i, best = hist.size, np.inf
    for i in range(levels, hist.size + 1):
        if hist[i - 1] == 0 and tail[i] == 0:
            continue  # an empty last bin with nothing clipped: same as a smaller i
        if tail[0] == tail[i]:
            continue  # nothing kept below the threshold: Q is empty (KL undefined)
        p = hist[:i].copy()
        p[-1] += tail[i]
        d = kl_divergence(p, expand_quantized(hist[:i], levels))
        if d <= best:  # on a tie the larger threshold: it clips less (a sparse histogram ties often)
            best_i, best = i, d
    return min(best_i + 0.5, hist.size) * width


def mse_threshold(hist: np.ndarray, width: float, steps: float = 255) -> float:
    """The edge t = k * width (k = 1..bins) minimising rounding noise + clipping error."""
    hist = np.asarray(hist, np.float64)
    centre = (np.arange(hist.size) + 0.5) * width
    t = np.arange(1, hist.size + 1) * width
    below = np.cumsum(hist)  # counts in bins < k
    # sums over bins >= k of h, h*c, h*c^2 (suffix sums), for the clipping term sum h (c - t)^2
    s0, s1, s2 = (np.concatenate([np.cumsum((hist * centre ** e)[::-1])[::-1][1:], [0.0]]) for e in (0, 1, 2))
    clip = s2 - 2 * t * s1 + t * t * s0
    noise = below * (t / steps) ** 2 / 12
    return float(t[int(np.argmin(clip + noise))])
