"""Conv and FusedConv on the device, two routes:

* **im2col + GEMM** (group 1, the same stride / pad / dilation on both axes, what the
  ``kernels/conv_im2col.py`` kernel takes): cols = im2col(x) is (C*KH*KW, N*OH*OW), the GEMM
  route of gemm.py gives W(F, C*KH*KW) @ cols = (F, N*OH*OW), and the epilogue scatters it to
  NCHW adding bias, a FusedConv's residual Z and its activation (epilogue.py).
* **direct** (any group -- depthwise above all -- and any pads): one thread per output sums its
  group's channels x taps and applies the same epilogue itself (``direct_conv_kernel``).

The weights are uploaded once (reshaped for the GEMM); the pads come from the reference's window
geometry (``course.ops._window``) at run time, so auto_pad SAME works on any input size.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import cuda, float32

from course.ops import _window
from course.providers.base import NodeSpec
from course.providers.cuda.epilogue import CLIP, LEAKY_RELU, RELU, Activation, conv_epilogue
from course.providers.cuda.gemm import matmul_into
from kernels.conv_im2col import BLOCK, im2col_kernel
from kernels.launch import THREADS, ceil_div


class ConvWindow(NamedTuple):
    sh: int
    sw: int
    top: int
    left: int
    dh: int
    dw: int
    groups: int


@cuda.jit
def direct_conv_kernel(y, x, w, bias, z, win, act, use_bias, use_z):
    """y[n, f] = act(sum over the group's channels and taps of x * w + bias[f] + z); NCHW, one
    thread per output element."""
    i = cuda.grid(1)
    if i < y.shape[0] * y.shape[1] * y.shape[2] * y.shape[3]:
        ow = i % y.shape[3]
        oh = (i // y.shape[3]) % y.shape[2]
        f = (i // (y.shape[3] * y.shape[2])) % y.shape[1]
        n = i // (y.shape[3] * y.shape[2] * y.shape[1])
        per_group = w.shape[1]
        c0 = (f // (y.shape[1] // win.groups)) * per_group  # first input channel of f's group
        acc = float32(0.0)
        for c in range(per_group):
            for a in range(w.shape[2]):
                ih = oh * win.sh - win.top + a * win.dh
                for b in range(w.shape[3]):
                    iw = ow * win.sw - win.left + b * win.dw
                    if 0 <= ih < x.shape[2] and 0 <= iw < x.shape[3]:
                        acc += x[n, c0 + c, ih, iw] * w[f, c, a, b]
        if use_bias:
            acc += bias[f]
        if use_z:
            acc += z[n, f, oh, ow]
        if act.kind == RELU:
            acc = max(acc, float32(0.0))
        elif act.kind == LEAKY_RELU:
            if acc < 0:
                acc = acc * act.alpha
        elif act.kind == CLIP:
            acc = min(max(acc, act.lo), act.hi)
        y[n, f, oh, ow] = acc


def geometry(x_shape, w_shape, attrs):
    """((OH, OW), ConvWindow) of this convolution on an input of ``x_shape``."""
    k, s, p, d = _window.spatial_attrs(2, w_shape[2:], attrs.get("strides"), attrs.get("pads"),
                                       attrs.get("dilations"), attrs.get("auto_pad", "NOTSET"))
    out, pb, _ = _window.geometry(x_shape[2:], k, s, p, d, attrs.get("auto_pad", "NOTSET"))
    return tuple(out), ConvWindow(s[0], s[1], pb[0], pb[1], d[0], d[1], int(attrs.get("group", 1)))


def im2col_route(win: ConvWindow) -> bool:
    """The im2col kernel takes one stride, one pad (top = left) and one dilation for both axes."""
    return win.groups == 1 and win.sh == win.sw and win.top == win.left and win.dh == win.dw


def conv2d(state, x, w, b=None, z=None, *, attrs, act: Activation):
    (oh, ow), win = geometry(tuple(x.shape), tuple(w.shape), attrs)
    n, f = x.shape[0], w.shape[0]
    bias = None if b is None else state.on_device(b)
    if not im2col_route(win):
        y = state.empty((n, f, oh, ow))
        if n * f * oh * ow:
            # Launch configuration: one thread per output element, THREADS per block.
            state.launch(direct_conv_kernel, ceil_div(n * f * oh * ow, THREADS), THREADS, y, x, state.on_device(w),
                         bias if bias is not None else state.constant(_NO_VECTOR),
                         state.on_device(z) if z is not None else y, win, act, bias is not None, z is not None)
        return y
    _, c, kh, kw = w.shape
    rows, positions = c * kh * kw, n * oh * ow
    cols = state.empty((rows, positions))
    if rows and positions:
        # Launch configuration: BLOCK threads; x covers output positions, y covers (c, kh, kw).
        grid = (ceil_div(positions, BLOCK[0]), ceil_div(rows, BLOCK[1]))
        state.launch(im2col_kernel, grid, BLOCK, cols, x, kh, kw, win.sh, win.top, win.dh, oh, ow)
    mat = matmul_into(state, state.on_device(w, "im2col", lambda a: a.reshape(f, rows)), cols,
                      state.empty((f, positions)))
    y = state.empty((n * f * oh * ow,))
    residual = None if z is None else state.on_device(z).reshape((n * f * oh * ow,))
    conv_epilogue(state, y, mat, bias, residual, oh * ow, act)
    return y.reshape((n, f, oh, ow))


def make_conv(state, spec: NodeSpec):
    a = spec.attrs
    act = Activation.of(a["activation"], a.get("activation_params") or ()) if spec.op_type == "FusedConv" \
        else Activation.of("Identity")
    return functools.partial(conv2d, state, attrs=dict(a), act=act)


_NO_VECTOR = np.zeros(1, np.float32)  # stands in for an absent bias (never read)
