"""Concat and Split on the device: each input (Concat) or output (Split) is one slab of the big
tensor along the axis, moved by one launch of ``copy_slab_kernel``.

Viewed as 2-D, (outer, axis * inner) with outer the product of the dims before the axis and
inner of those after, a slab is a block of whole columns: ``dst[o, dst_start + j] =
src[o, src_start + j]`` for j < width. Consecutive threads move consecutive columns (coalesced).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from course.providers.base import NodeSpec
from course.providers.cuda.views import output_shapes, static_shapes
from kernels.launch import THREADS, ceil_div


@cuda.jit
def copy_slab_kernel(dst, src, dst_start, src_start, width):
    """dst[o, dst_start + j] = src[o, src_start + j] for o < dst.shape[0], j < width."""
    i = cuda.grid(1)
    if i < dst.shape[0] * width:
        o = i // width
        j = i % width
        dst[o, dst_start + j] = src[o, src_start + j]


def _copy_slab(state, dst, src, dst_start: int, src_start: int, width: int) -> None:
    n = dst.shape[0] * width
    if n:
        # Launch configuration: one thread per element moved, THREADS per block.
        state.launch(copy_slab_kernel, ceil_div(n, THREADS), THREADS, dst, src, dst_start, src_start, width)


def _as_2d(shape, axis: int, inner_from: int):
    return (int(np.prod(shape[:axis])), int(np.prod(shape[inner_from:])))


def concat(state, *xs, axis: int):
    shapes = [tuple(x.shape) for x in xs]
    ax = axis % len(shapes[0])
    out_shape = shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:]
    y = state.empty(out_shape)
    y2 = y.reshape(_as_2d(out_shape, ax, ax))
    inner, start = int(np.prod(out_shape[ax + 1:])), 0
    for x, s in zip(xs, shapes):
        width = s[ax] * inner
        _copy_slab(state, y2, state.on_device(x).reshape(_as_2d(s, ax, ax)), start, 0, width)
        start += width
    return y


def split(state, x, *consts, spec: NodeSpec, shapes):
    shapes = shapes if shapes is not None else output_shapes(spec, x, consts)
    ax = int(spec.attrs.get("axis", 0)) % len(x.shape)
    src = x.reshape(_as_2d(tuple(x.shape), ax, ax))
    inner, start, outs = int(np.prod(tuple(x.shape)[ax + 1:])), 0, []
    for s in shapes:
        y = state.empty(s)
        width = s[ax] * inner
        _copy_slab(state, y.reshape(_as_2d(s, ax, ax)), src, 0, start, width)
        start += width
        outs.append(y)
    return tuple(outs)


def make_concat(state, spec: NodeSpec):
    return functools.partial(concat, state, axis=int(spec.attrs["axis"]))


def make_split(state, spec: NodeSpec):
    return functools.partial(split, state, spec=spec, shapes=static_shapes(spec))
