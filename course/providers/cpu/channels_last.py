"""The CPU provider's kernel for a ``course.nhwc`` Conv or FusedConv (what the ToNHWC pass writes):
X, Z and Y are (N, H, W, C), the weights OIHW as the nhwc op's schema keeps them.

The channels-last convolution routes already read NCHW views of NHWC memory and write an NCHW
view over NHWC memory (what a node marked by MarkChannelsLast gets), so this is only an adapter:
``x.transpose(0, 3, 1, 2)`` is a free NCHW view of the NHWC input, the route runs as if the node
were marked, and ``y.transpose(0, 2, 3, 1)`` of its result is the C-contiguous (N, OH, OW, M)
array itself, no copy. routes.channels_last_route says which nodes that holds for.
"""
from __future__ import annotations

import numpy as np

from course.ops.nhwc import TO_NCHW, TO_NHWC


def nchw_view(v):
    """The NCHW view of an NHWC operand, made contiguous channels last first if it is not (an
    input straight from a Transpose view), so the channels-last route takes it; None stays None."""
    return None if v is None else np.ascontiguousarray(v).transpose(TO_NCHW)


class ChannelsLastConv:
    """``conv(x, w, b, z)`` (the provider's NCHW convolution kernel, channels last) over NHWC X, Z
    and Y. Should the route still write NCHW (a call the routes do not take), Y is copied to NHWC."""

    def __init__(self, conv):
        self.conv = conv

    def __call__(self, x, w, b=None, z=None):
        y = self.conv(nchw_view(x), w, b, nchw_view(z)).transpose(TO_NHWC)
        return y if y.flags.c_contiguous else np.ascontiguousarray(y)


def nchw_reference(nhwc_reference):
    """The NCHW reference a convolution kernel falls back to, from the nhwc op's reference."""

    def reference(x, w, b=None, z=None):
        args = (x.transpose(TO_NHWC), w, b) + (() if z is None else (z.transpose(TO_NHWC),))
        return nhwc_reference(*args).transpose(TO_NCHW)
    return reference
