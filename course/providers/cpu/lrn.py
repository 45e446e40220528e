"""LRN (AlexNet/GoogLeNet's local response normalisation), float32, into the arena.

The reference (course/ops/lrn.py) squares X, pads the channel axis, takes a cumulative sum and
a difference: three temporaries of X's size or more, allocated at every call. Here the
channel-window sum is built from ``size`` shifted slices of X*X, accumulated in a workspace
(one array of X's size: the step's scratch, planned in the session's arena), and the result is
written into ``out``: a run in the arena allocates nothing for this node. The squares are
accumulated directly rather than as a difference of prefix sums, so the window sum has no
cancellation error (the reference's can); the two agree to float32 rounding.
"""
from __future__ import annotations

import numpy as np

from course.providers.cpu import scratch


def lrn_scratch(x_shape) -> list:
    """The pieces of scratch one call needs: the channel-window sums, one array of X's shape."""
    return [(np.float32, tuple(x_shape))]


class LRNKernel:
    """One LRN node's kernel: ``kernel(x, out=None, workspace=None)``."""

    def __init__(self, attrs):
        self.size = int(attrs["size"])
        self.alpha, self.beta, self.bias = (np.float32(attrs.get(k, d)) for k, d in
                                            (("alpha", 1e-4), ("beta", 0.75), ("bias", 1.0)))

    def __call__(self, x, out=None, workspace=None):
        y = out if _fits(out, x) else np.empty(x.shape, np.float32)
        (window,) = scratch.carve(workspace, lrn_scratch(x.shape))
        np.square(x, out=y)  # y holds X*X until the last line
        c, lo, hi = x.shape[1], (self.size - 1) // 2, self.size // 2  # channels c-lo .. c+hi, as ONNX
        window.fill(0)
        for d in range(-lo, hi + 1):  # window[:, k] += sq[:, k + d] where both exist
            if abs(d) < c:
                np.add(window[:, max(0, -d):c - max(0, d)], y[:, max(0, d):c + min(0, d)],
                       out=window[:, max(0, -d):c - max(0, d)])
        np.multiply(window, self.alpha / np.float32(self.size), out=window)
        np.add(window, self.bias, out=window)
        np.power(window, self.beta, out=window)
        return np.divide(x, window, out=y)


def _fits(out, x) -> bool:
    return (out is not None and out.shape == x.shape and out.dtype == np.float32 and out.flags.c_contiguous
            and not np.may_share_memory(out, x))
