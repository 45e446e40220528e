"""Conv (N-d, groups, dilations, auto_pad): pad, im2col over strided views, one matmul per group.

``Y[n, m, o] = B[m] + sum_{c, t} W[m, c, t] * Xpad[n, g*C/group + c, o*s + t*d]`` for every output
position ``o`` and kernel tap ``t``, where ``g = m // (M/group)`` is output channel m's group.
The im2col matrix holds, for each output position, the window of input values under the
kernel: a strided view of the padded input (no loop over taps), copied once into
(N, group, C/group * taps, positions) so each group is one matrix product.
"""
from __future__ import annotations

import numpy as np

from course.errors import ShapeError
from course.ops import _window as win
from course.ops._common import write_out
from course.ops.base import InferContext, Op
from course.ops.registry import register

CONV_ATTRS = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None,
              "pads": None, "strides": None}


def conv_core(x, w, group=1, strides=None, pads=None, dilations=None, auto_pad="NOTSET", out=None):
    """Convolution without bias: x (N, C, *S), w (M, C/group, *K) -> (N, M, *O), a fresh array,
    or ``out`` written when it is given with that shape (destination passing)."""
    n, c, m = x.shape[0], x.shape[1], w.shape[0]
    if w.ndim != x.ndim or c != w.shape[1] * group or m % group:
        raise ShapeError(f"X {x.shape} and W {w.shape} do not fit group={group}")
    k, s, p, d = win.spatial_attrs(x.ndim - 2, w.shape[2:], strides, pads, dilations, auto_pad)
    dims, pb, pe = win.geometry(x.shape[2:], k, s, p, d, auto_pad)
    cols = win.windows(win.pad_input(x, pb, pe), k, s, d, dims)  # (N, C, *O, *K), a view
    nsp = len(k)
    cols = np.moveaxis(cols, tuple(range(2, 2 + nsp)), tuple(range(2 + nsp, 2 + 2 * nsp)))  # (N, C, *K, *O)
    rows = (c // group) * int(np.prod(k))  # one im2col row per input channel of a group and tap
    cols = cols.reshape(n, group, rows, int(np.prod(dims)))  # the copy: (N, group, rows, positions)
    shape = (n, m) + tuple(dims)
    if out is None or out.shape != shape or not out.flags.c_contiguous:
        return np.matmul(w.reshape(group, m // group, rows), cols).reshape(shape)  # (N, group, M/group, P)
    np.matmul(w.reshape(group, m // group, rows), cols, out=out.reshape(n, group, m // group, -1))
    return out


def conv_infer_shape(ctx: InferContext, x_shape, w_shape, m_channels=None):
    """Output shape of a Conv-like node from X and W shapes and its attributes."""
    a = ctx.attrs
    if x_shape is None:
        return None
    nsp = len(x_shape) - 2
    if nsp < 1:
        raise ShapeError(f"X has rank {len(x_shape)}; convolution needs (N, C, spatial...)")
    if w_shape is not None and len(w_shape) != len(x_shape):
        raise ShapeError(f"W has rank {len(w_shape)} but X has rank {len(x_shape)}")
    kernel = a.get("kernel_shape") or (w_shape[2:] if w_shape is not None else None)
    m = w_shape[0] if w_shape is not None else m_channels
    c, g = x_shape[1], a.get("group", 1)
    if w_shape is not None and isinstance(c, int) and isinstance(w_shape[1], int) and c != w_shape[1] * g:
        raise ShapeError(f"X has {c} channels but W expects {w_shape[1]} x group {g}")
    if kernel is None or not all(isinstance(v, int) for v in kernel):
        return (x_shape[0], m) + (None,) * nsp
    auto_pad = a.get("auto_pad", "NOTSET")
    k, s, p, d = win.spatial_attrs(nsp, kernel, a.get("strides"), a.get("pads"), a.get("dilations"), auto_pad)
    return (x_shape[0], m) + tuple(win.geometry(x_shape[2:], k, s, p, d, auto_pad)[0])


def check_kernel_shape(kernel_shape, w) -> None:
    if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
        raise ShapeError(f"kernel_shape {list(kernel_shape)} does not match W {w.shape}")


@register("Conv", since=1)
class Conv(Op):
    attrs = CONV_ATTRS
    num_inputs = (2, 3)

    def infer_shape(self, ctx: InferContext):
        return [conv_infer_shape(ctx, ctx.shape(0), ctx.shape(1))]

    def compute(self, x, w, b=None, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                pads=None, strides=None, out=None):
        check_kernel_shape(kernel_shape, w)
        y = conv_core(x, w, group, strides, pads, dilations, auto_pad, out)
        if b is not None:
            y += b.reshape((-1,) + (1,) * (y.ndim - 2))
        return write_out(out, y)
