"""Conv (N-d, groups, dilations, auto_pad) by im2col + one batched BLAS matmul per group.

Fast paths: a 1x1 convolution is a plain matmul; a depthwise convolution (group == C == M)
accumulates one whole-tensor multiply-add per kernel tap instead of a tiny GEMM per channel (and
a 3x3 float one runs the compiled kernel of _fused_kernels.py, which does the same sums in the
same order); a 2-D convolution over planes >= 14x14 with >= 16 input channels is one
accumulating BLAS GEMM per kernel tap over shifted windows of the padded input, with no im2col
buffer (_tap_gemms); a float32 one that is strided, or has few input channels (a stem), and has
at least twice as many output pixels as channels is one job that makes its im2col matrix a
cache-sized block of output pixels at a time and multiplies each block at once, on both threads
(_im2col_gemms); one with fewer pixels than that (ResNet's 14x14 and 7x7 stages) is one job too,
both threads making parts of one shared im2col matrix, then each multiplying half of the weight
rows by it. A float32 stride-1 3x3 one (no dilation) with >= 196 output pixels per plane runs
Winograd's F(2x2, 3x3) instead: 16 GEMMs on transformed 4x4 tiles, 2.25x fewer multiplications
(_winograd). float32 GEMMs go through course/ops/_parallel.py, which shares them with its helper
thread during a session run.
"""
from __future__ import annotations

import functools
import weakref
from functools import lru_cache
from typing import Optional

import numpy as np

from course.errors import ShapeError
from course.ops import _blas
from course.ops import _window as win
from course.ops.base import InferContext, Op
from course.ops.registry import register


def conv_core(x, w, group=1, strides=None, pads=None, dilations=None, auto_pad="NOTSET", post=None,
              channels_last=False):
    """Convolution: x (N, C, *S), w (M, C/group, *K) -> (N, M, *O), x's dtype, a fresh array.

    ``post`` = (bias or None, z or None, activation, params), float32 or float64 only, z of the
    output's shape: ``y = activation(y + bias + z)`` in place, FusedConv's epilogue. On the float32
    GEMM routes it runs on each band of the GEMM while the band is still in cache
    (_parallel.gemm_sum); elsewhere as one pass afterwards (fk.epilogue). Same bits either way.

    ``channels_last``: a float32 1x1 convolution returns its (N, M, *O) result as a view of an
    (N, *O, M) array (the channels of a pixel side by side), made as X.T @ W.T by the same GEMM;
    what the channels-last depthwise kernel reads (fk._depthwise3x3_nhwc). Other convolutions
    ignore it. x may itself be laid out that way: a 1x1 convolution reads it as a
    transposed GEMM operand, the other routes copy it to NCHW first."""
    n, c, m, nsp = x.shape[0], x.shape[1], w.shape[0], x.ndim - 2
    if w.ndim != x.ndim or c != w.shape[1] * group or m % group:
        raise ShapeError(f"X {x.shape} and W {w.shape} do not fit group={group}")
    k, s, d, out, pb, pe = _setup(x.shape[2:], w.shape[2:], _key(strides), _key(pads), _key(dilations), auto_pad)
    if (nsp == 2 and group == 1 and tuple(k) == (3, 3) and tuple(s) == tuple(d) == (1, 1) and _pooled(x, w)
            and _use_winograd(x, w, out)):
        return _winograd(x, w, pb, out, post)
    if (nsp == 2 and group == 1 and (any(v > 1 for v in k + s) or any(pb + pe)) and _pooled(x, w)
            and _use_im2col_gemm(x, w, s, out)):
        return _im2col_gemms(x, w, k, s, d, pb, out, post)
    if group == 1 and all(v == 1 for v in k):  # 1x1: a plain matmul, no im2col at all
        xs = win.tap_view(win.pad_input(x, pb, pe), (0,) * nsp, out, s, d)
        xs = xs.reshape(n, c, int(np.prod(out)))
        if _pooled(x, w):  # both threads, one band of output rows or columns each
            if xs.strides[2] != xs.itemsize and xs.strides[1] != xs.itemsize:  # neither NCHW nor NHWC rows
                xs = np.ascontiguousarray(xs)
            if channels_last:
                return _channels_last_gemms(xs, w, out, post)
            y = np.empty((n, m, xs.shape[2]), dtype=x.dtype)
            _pooled_gemms(np.ascontiguousarray(w.reshape(1, m, c)), [xs], y, post)
            return y.reshape((n, m) + tuple(out))
        y = np.matmul(w.reshape(m, c), xs).reshape((n, m) + tuple(out))
        return _finish(y, post)
    if nsp == 2:  # every tap is a contiguous slice; results live on an (OH, PW) grid
        taps, width = win.flat_taps(x, k, s, d, pb, out)
        if group == 1 and _use_tap_gemms(x, w, out):
            return _tap_gemms(taps, w, n, m, out, width, post)
    else:
        xp = win.pad_input(x, pb, pe)
        taps = [win.tap_view(xp, t, out, s, d) for t in np.ndindex(*k)]
        width = out[-1]
    if group == c == m:  # depthwise: one whole-tensor multiply-add per tap, not a GEMM per channel
        wk = w.reshape(c, -1, *(1,) * (taps[0].ndim - 2))
        y = taps[0] * wk[:, 0]
        tmp = np.empty_like(y)
        for t in range(1, len(taps)):
            y += np.multiply(taps[t], wk[:, t], out=tmp)
    else:  # im2col: one strided copy per tap, then one batched BLAS matmul over the groups
        # The copy drops the grid's junk columns, so the GEMM computes only real outputs (a 3x3
        # grid is (OW + 2) / OW as wide: 9/7 at 7x7, where ResNet's widest convs run).
        grid = (n, c) + tuple(out[:-1]) + (width,)
        col = np.empty((n, c, len(taps)) + tuple(out), dtype=x.dtype)
        for t, view in enumerate(taps):
            col[:, :, t] = view.reshape(grid)[..., :out[-1]]
        col = col.reshape(n, group, (c // group) * len(taps), int(np.prod(out)))
        if group == 1 and _pooled(x, w):
            y = np.empty((n, m, col.shape[3]), dtype=x.dtype)
            _pooled_gemms(np.ascontiguousarray(w.reshape(1, m, -1)), [col[:, 0]], y, post)
            return y.reshape((n, m) + tuple(out))
        y = np.matmul(w.reshape(group, m // group, -1), col)  # (N, group, M/group, P)
        return _finish(y.reshape((n, m) + tuple(out)), post)
    y = y.reshape((n, m) + tuple(out[:-1]) + (width,))
    return _finish(y if width == out[-1] else np.ascontiguousarray(y[..., :out[-1]]), post)


def output_shape(x, w, strides=None, pads=None, dilations=None, auto_pad="NOTSET") -> tuple:
    """(N, M, *out) of the convolution of x by w (as conv_core will make it)."""
    out = _setup(x.shape[2:], w.shape[2:], _key(strides), _key(pads), _key(dilations), auto_pad)[3]
    return (x.shape[0], w.shape[0]) + out


def _finish(y, post):
    """Apply ``post`` (see conv_core) to a finished output, as one pass."""
    if post is None:
        return y
    from course.ops import _fused_kernels as fk

    b, z, activation, params = post
    return fk.epilogue(np.ascontiguousarray(y), b, activation, params, z)  # in place: a copy only if strided


def _pooled_gemms(wt, taps, y, post):
    """y[i] = sum_t wt[t] @ taps[t][i] per image through _parallel.gemm_sum, ``post`` fused in.
    wt (T, M, K), taps[t] (N, K, P) with row-major images, y (N, M, P) contiguous."""
    par = _parallel()
    n = y.shape[0]
    bias, z, act = _epilogue_operands(post, y.shape, y.dtype)
    for i in range(n):
        par.gemm_sum(wt, [view[i] for view in taps], y[i], bias=bias, z=None if z is None else z[i], act=act)


def _epilogue_operands(post, shape, dtype, channels_last=False):
    """(bias, z, act) for gemm_sum / im2col_gemm from ``post`` (see conv_core), for an output of
    ``shape`` (N, M, P), or (N, P, M) with ``channels_last`` (z then read channels last: a view
    if it is laid out that way, else a copy); all None without a post."""
    if post is None:
        return None, None, None
    from course.ops import _fused_kernels as fk

    b, z, activation, params = post
    m = shape[2] if channels_last else shape[1]
    bias = None if b is None else np.ascontiguousarray(b, dtype=dtype).reshape(m)
    if z is not None:
        z = np.ascontiguousarray(np.moveaxis(z, 1, -1) if channels_last else z, dtype=dtype).reshape(shape)
    return bias, z, fk.scalars(dtype, activation, params)


def _channels_last_gemms(xs, w, out, post):
    """A 1x1 convolution made channels last: Y.T (P, M) = X.T (P, C) @ W.T (C, M) per image, xs
    (N, C, P) in either layout, w (M, C, 1, 1); the bias is one per column, a residual is read
    channels last (copied to that layout if it is not). Returns (N, M, *out), a view."""
    n, c, p = xs.shape
    m = w.shape[0]
    y = np.empty((n,) + tuple(out) + (m,), dtype=xs.dtype)
    yt = y.reshape(n, p, m)
    bias, z, act = _epilogue_operands(post, yt.shape, yt.dtype, channels_last=True)
    wt = _channel_major(w)
    for i in range(n):
        _parallel().gemm_sum(xs[i].T[None], [wt], yt[i], bias=bias, z=None if z is None else z[i], act=act,
                             bias_axis=1)
    return y.transpose(0, 3, 1, 2)


class PreparedConv:
    """Conv / FusedConv for one node, made by ``prepare`` when the plan is built: the same
    results as ``compute`` with the node's attributes, for any inputs, with less Python per call.

    MobileNetV2 runs ~50 convolutions, and the general path (attribute checks, geometry, routing,
    gemm_sum's operand checks) costs 20-35 us of Python per call: as much as a 14x14 layer's
    arithmetic. So the first call takes the general path and keeps the job it posted
    (_parallel.Job) when that one job does the whole convolution straight from X into the output
    (batch 1: a 1x1 GEMM, a blocked im2col GEMM, a 3x3 depthwise kernel); a later call with the same weight and bias
    arrays and an X (and Z) of the same dtype, shape and strides then only allocates the output,
    puts the new addresses in a copy of the job's arguments and posts it: the same kernel with the
    same arguments, so the same bits. Any other call takes the general path, and its job is kept
    in turn; a node whose job could not be replayed takes the general path from then on. Only
    read-only weights (a session's snapshots) are replayed: the job reads copies made from them
    (W.T, the taps' layout), which would go stale if the array were written in place."""

    def __init__(self, compute, attrs):
        self.general = functools.partial(compute, **attrs)
        self.fast = None  # _Replay of the last call, or None
        self.replayable = True  # False once a call could not be replayed: the general path from then on

    def __call__(self, x, w, b=None, z=None):
        f = self.fast
        if (f is not None and w is f.w and b is f.b and x.shape == f.x_shape and x.strides == f.x_strides
                and x.dtype == f.dtype and (z is None if f.z_key is None
                                            else z is not None and (z.shape, z.strides, z.dtype) == f.z_key)):
            return f.run(x, z)
        args = (x, w, b) if z is None else (x, w, b, z)  # Conv's compute has no Z
        if (not self.replayable or x.dtype != np.float32 or x.ndim != 4 or x.shape[0] != 1
                or w.flags.writeable or (b is not None and b.flags.writeable)):
            return self.general(*args)
        par = _parallel()
        with par.recording() as jobs:
            y = self.general(*args)
        self.fast = _Replay.of(jobs, x, w, b, z, y)
        self.replayable = self.fast is not None
        return y


class _Replay:
    """The one job of a PreparedConv call, ready to post again for new X, Z and output arrays."""
    __slots__ = ("job", "x_slot", "y_slot", "z_slot", "w", "b", "x_shape", "x_strides", "dtype", "z_key",
                 "out_shape", "axes")

    @staticmethod
    def of(jobs, x, w, b, z, y) -> Optional[_Replay]:
        """The replay of ``jobs`` (what one call posted), or None when they cannot be replayed."""
        par = _parallel()
        if len(jobs) != 1 or not isinstance(y, np.ndarray) or y.ndim != 4 or y.dtype != x.dtype or y.size == 0:
            return None
        job, address = jobs[0], par._address
        if y.flags.c_contiguous:
            out_shape, axes = y.shape, None
        elif y.transpose(0, 2, 3, 1).flags.c_contiguous:  # channels last
            out_shape, axes = y.transpose(0, 2, 3, 1).shape, (0, 3, 1, 2)
        else:
            return None
        kind, v = job.values[0], job.values
        ax, ay, az = address(x), address(y), address(z) if z is not None else None
        if kind == par.GEMM:
            if v[par.GEMM_A] == ax:
                x_slot = par.GEMM_A
            elif job.table is not None and job.table.shape[0] == 1 and job.table[0, 0] == ax:
                x_slot = -1  # X is the (only) B operand: patched in a copy of the table
            else:
                return None
            y_slot, z_slot = par.GEMM_C, par.GEMM_Z
            if (z is None) != (v[par.GEMM_HAS_Z] == 0) or (z is not None and v[z_slot] != az):
                return None
        elif kind in (par.IM2COL_GEMM, par.WINOGRAD):
            x_slot, y_slot, z_slot, has_z = ((par.IM2COL_X, par.IM2COL_Y, par.IM2COL_Z, par.IM2COL_HAS_Z)
                                             if kind == par.IM2COL_GEMM else
                                             (par.WINOGRAD_X, par.WINOGRAD_Y, par.WINOGRAD_Z, par.WINOGRAD_HAS_Z))
            if v[x_slot] != ax or (z is None) != (v[has_z] == 0) or (z is not None and v[z_slot] != az):
                return None
        elif kind in (par.DEPTHWISE, par.DEPTHWISE_NHWC) and z is None:
            x_slot, y_slot, z_slot = ((par.DEPTHWISE_X, par.DEPTHWISE_Y) if kind == par.DEPTHWISE
                                      else (par.DEPTHWISE_NHWC_X, par.DEPTHWISE_NHWC_Y)) + (-1,)
            if v[x_slot] != ax:
                return None
        else:
            return None
        if v[y_slot] != ay:
            return None
        r = _Replay()
        r.job, r.x_slot, r.y_slot, r.z_slot = job, x_slot, y_slot, z_slot
        r.w, r.b, r.x_shape, r.x_strides, r.dtype = w, b, x.shape, x.strides, x.dtype
        r.z_key = None if z is None else (z.shape, z.strides, z.dtype)
        r.out_shape, r.axes = out_shape, axes
        # the job keeps its constant operands (weights, bias, tables), not this call's X, Z and Y
        calls = {ax, ay, az, *(v[slot] for slot in par.scratch_slots(v))}  # each run makes its own scratch
        job.keep = tuple(a for a in job.keep if a is not None and a.size and address(a) not in calls)
        return r

    def run(self, x, z):
        par = _parallel()
        job = self.job
        y = np.empty(self.out_shape, dtype=self.dtype)
        values = job.values.copy()  # the job itself stays as it is: another thread may replay it
        if self.x_slot < 0:
            table = job.table.copy()
            table[0, 0] = par._address(x)
            values[par.GEMM_TABLE] = par._address(table)
        else:
            values[self.x_slot] = par._address(x)
        values[self.y_slot] = par._address(y)
        if z is not None:
            values[self.z_slot] = par._address(z)
        par.Job(values, job.floats, job.chunks, par.fresh_scratch(values)).post()
        return y if self.axes is None else y.transpose(self.axes)


CHANNELS_LAST_MIN = 64  # depthwise channels; below, the plane-by-plane kernel is as fast


def channels_last_hints(graph, custom_kernels) -> dict:
    """Which float32 convolutions make their output channels last (an (N, C, H, W) view of an
    (N, H, W, C) array): ``{id(node): {"_channels_last": True}}``, for the plan to pass on.

    Channels last pays between MobileNet's 1x1 and 3x3 depthwise convolutions: the depthwise
    kernel then holds channels in its SIMD lanes (fk._depthwise3x3_nhwc, 2.4-4.7x quicker on
    14x14 and 7x7 planes), and a 1x1 convolution that reads and writes channels last is the
    plain GEMM X (P, C) @ W.T (C, M), as quick as the NCHW one. Reading channels last and writing
    NCHW is a transposed-B GEMM (up to 1.7x slower), and a residual must come in its output's
    layout, so the layout is given to whole regions: start from every 1x1 (stride 1, no pads) and
    3x3 depthwise (>= CHANNELS_LAST_MIN channels, no dilation) convolution run by the engine's own
    kernels, then drop any whose output is a graph output or is read by anything else than such a
    convolution (as X, or as the residual Z of one that stays channels last) or a global pooling,
    and any depthwise one whose input is not channels last (its output follows its input), until
    nothing changes."""
    kind = {id(n): _layout_kind(n, custom_kernels) for n in graph.nodes}
    outputs = {id(v) for v in graph.outputs}
    last = {id(n.outputs[0]) for n in graph.nodes if kind[id(n)] and id(n.outputs[0]) not in outputs}
    changed = True
    while changed:
        changed = False
        for node in graph.nodes:
            y = node.outputs[0]
            if id(y) not in last:
                continue
            z = node.inputs[3] if len(node.inputs) > 3 else None
            keep = ((kind[id(node)] != "depthwise" or id(node.inputs[0]) in last)
                    and (z is None or id(z) in last)
                    and all((kind[id(r)] and (i == 0 or (i == 3 and id(r.outputs[0]) in last))
                             and (kind[id(r)] != "depthwise" or id(r.outputs[0]) in last))
                            or _pools_any_layout(r, custom_kernels)
                            for r, i in y.uses()))
            if not keep:
                last.discard(id(y))
                changed = True
    return {id(n): {"_channels_last": True} for n in graph.nodes if kind[id(n)] and id(n.outputs[0]) in last}


def _pools_any_layout(node, custom_kernels) -> bool:
    """A global pooling reduces a channels-last input as fast (quicker: 1280x7x7, 10 vs 38 us)."""
    return (node.op_type in ("GlobalAveragePool", "GlobalMaxPool") and not node.domain
            and node.op_type not in custom_kernels)


def _layout_kind(node, custom_kernels):
    """"pointwise" or "depthwise" for the convolutions channels_last_hints may lay out, else None."""
    if (node.op_type, node.domain) not in (("Conv", ""), ("FusedConv", "course")) or node.op_type in custom_kernels:
        return None
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    if any(v is None or v.type is None for v in (x, w, y)) or y.type.dtype != np.float32:
        return None
    ws, attrs = w.type.shape, node.attrs
    if ws is None or len(ws) != 4 or not all(isinstance(d, int) for d in ws):
        return None
    ones = lambda key: all(v == 1 for v in attrs.get(key) or (1, 1))  # noqa: E731
    if (tuple(ws[2:]) == (1, 1) and attrs.get("group", 1) == 1 and ones("strides") and ones("dilations")
            and not any(attrs.get("pads") or ()) and attrs.get("auto_pad", "NOTSET") in ("NOTSET", "VALID")):
        return "pointwise"
    if tuple(ws[1:]) == (1, 3, 3) and attrs.get("group", 1) == ws[0] >= CHANNELS_LAST_MIN and ones("dilations"):
        return "depthwise"
    return None


def supports_depthwise(x: np.ndarray, w: np.ndarray, group: int) -> bool:
    """True for a 2-D 3x3 depthwise convolution (group == C == M) in float32 or float64: the
    cases the compiled kernel of _fused_kernels.py runs (for Conv and FusedConv alike)."""
    return (x.ndim == 4 and w.shape[1:] == (1, 3, 3) and group == x.shape[1] == w.shape[0]
            and x.dtype == w.dtype and x.dtype in (np.float32, np.float64))


def _pooled(x, w) -> bool:
    """float32 GEMMs go through course/ops/_parallel.py (shared with its helper thread in a run)."""
    return x.dtype == w.dtype == np.float32 and _blas.available()


def _parallel():
    from course.ops import _parallel  # imports numba: only once a float32 GEMM conv runs

    return _parallel


def _use_tap_gemms(x, w, out) -> bool:
    """Shifted GEMMs beat im2col when each tap's GEMM is big enough to run BLAS at speed (measured
    on ResNet's 3x3 convolutions: 56x56 and 28x28 planes gain, 7x7 loses to the single GEMM)."""
    return (x.dtype in (np.float32, np.float64) and w.dtype == x.dtype and x.shape[1] >= 16
            and out[0] * out[1] >= 196 and _blas.available())


def _use_im2col_gemm(x, w, s, out) -> bool:
    """The im2col job (_parallel.im2col_gemm) splits the output pixels between the threads when
    there are at least twice as many as output channels, else the output channels. Measured
    against the other routes (docs/benchmarks.md): split by pixels it wins on strided
    convolutions (the shifted GEMMs then read stride phases copied out first) and on few input
    channels (a stem's K = 27 or 147 im2col made in one numpy pass, then read back), and on a
    stride-1 convolution with >= 16 channels the shifted GEMMs are as quick, and stay; split by
    channels it wins wherever it applies (ResNet's 7x7 stage: 2.05 -> 1.82 ms per 3x3 conv, its
    14x14 one 1.64 -> 1.51 ms: the numpy im2col, or the shifted GEMMs' N = 224 per tap, lose)."""
    return out[0] * out[1] < 2 * w.shape[0] or any(v > 1 for v in s) or not _use_tap_gemms(x, w, out)


WINOGRAD_MIN_PIXELS = 196
WINOGRAD_MAX_SCRATCH = 64 << 20  # bytes of transformed tiles; beyond, the shifted GEMMs need none


def _use_winograd(x, w, out) -> bool:
    """Winograd F(2x2, 3x3) (_parallel.winograd3x3) for a stride-1 3x3 convolution with at least
    WINOGRAD_MIN_PIXELS output pixels per plane. A/B in whole models (docs/benchmarks.md): ResNet's
    56x56 convolutions 1.50 -> 1.18 ms, 28x28 1.49 -> 0.97, 14x14 1.55 -> 1.07 (the model 27.1 ->
    22.8 ms), SqueezeNet's and Inception's 3x3s alike; on 7x7 planes its 16 GEMMs have 16 columns
    and its weights are 16/9 as big: ResNet's 512-channel ones lose (1.82 -> 1.98 ms). Its scratch,
    16 transformed tiles per input and output channel (ResNet's 56x56: 6.4 MB), grows with the
    image: a big one takes the other routes."""
    tiles = -(-out[0] // 2) * -(-out[1] // 2)
    return (out[0] * out[1] >= WINOGRAD_MIN_PIXELS
            and 16 * tiles * (x.shape[1] + w.shape[0]) * x.itemsize <= WINOGRAD_MAX_SCRATCH)


def _winograd(x, w, pb, out, post):
    """A float32 stride-1 3x3 convolution (group 1) by Winograd F(2x2, 3x3) per image
    (_parallel.winograd3x3), the weights transformed once, ``post`` fused."""
    n, m = x.shape[0], w.shape[0]
    y = np.empty((n, m, out[0] * out[1]), dtype=x.dtype)
    bias, z, act = _epilogue_operands(post, y.shape, y.dtype)
    par = _parallel()
    u = _derived(w, "winograd", par.winograd_weights)
    for i in range(n):
        par.winograd3x3(np.ascontiguousarray(x[i]), u, pb, out, y[i], bias=bias, z=None if z is None else z[i],
                        act=act)
    return y.reshape((n, m) + tuple(out))


def _im2col_gemms(x, w, k, s, d, pb, out, post):
    """A float32 2-D convolution (group 1) as W (M, C*KH*KW) @ im2col(x) per image, the im2col
    matrix made inside the job (_parallel.im2col_gemm: a cached block at a time, or once for
    both threads when the pixels are few), ``post`` fused."""
    n, m = x.shape[0], w.shape[0]
    p = out[0] * out[1]
    y = np.empty((n, m, p), dtype=x.dtype)
    bias, z, act = _epilogue_operands(post, y.shape, y.dtype)
    wm = _derived(w, "rows", lambda w: np.ascontiguousarray(w.reshape(w.shape[0], -1)))
    par = _parallel()
    for i in range(n):
        par.im2col_gemm(np.ascontiguousarray(x[i]), wm, k, s, d, pb, out, y[i], bias=bias,
                        z=None if z is None else z[i], act=act)
    return y.reshape((n, m) + tuple(out))


def _tap_gemms(taps, w, n, m, out, width, post=None):
    """Convolution as one accumulating GEMM per kernel tap, no im2col: Y_grid += W[:, :, i, j] @
    tap(i, j), where tap(i, j) is a (C, OH*PW) window of the (phase of the) padded input with
    leading dimension PH*PW (_window.flat_taps). The im2col buffer (C*KH*KW x OH*OW, written then
    read back) never exists; the price is a grid PW/OW wider than the output, cropped at the end.
    ``post`` runs inside the GEMM's bands unless a residual would need the cropped layout."""
    wt = _tap_major(w)
    grid = np.empty((n, m, out[0] * width), dtype=w.dtype)
    if w.dtype == np.float32:  # one job per image: each thread makes all the taps of its band
        fused = post is not None and (post[1] is None or width == out[1])
        _pooled_gemms(wt, taps, grid, post if fused else None)
        post = None if fused else post
    else:
        for i in range(n):
            for t, view in enumerate(taps):
                _blas.gemm(wt[t], view[i], grid[i], beta=0.0 if t == 0 else 1.0)
    y = grid.reshape((n, m, out[0], width))
    return _finish(y if width == out[1] else np.ascontiguousarray(y[..., :out[1]]), post)


_DERIVED: dict[tuple[int, str], tuple] = {}


def _derived(w: np.ndarray, kind: str, make) -> np.ndarray:
    """``make(w)``, a rearranged copy of a weight. A session's weights are read-only snapshots,
    so each copy is made once and kept while W lives."""
    key = (id(w), kind)
    hit = _DERIVED.get(key)
    if hit is not None and hit[0]() is w:
        return hit[1]
    out = make(w)
    if not w.flags.writeable:
        # the dict bound here: at interpreter exit the module's globals may be gone before W
        _DERIVED[key] = (weakref.ref(w, lambda _, key=key, cache=_DERIVED: cache.pop(key, None)), out)
    return out


def _tap_major(w: np.ndarray) -> np.ndarray:
    """W (M, C, KH, KW) as (KH*KW, M, C), each tap's matrix contiguous (a depthwise W (C, 1, 3, 3)
    gives (9, C, 1): tap t's weight for every channel)."""
    return _derived(w, "tap_major",
                    lambda w: np.ascontiguousarray(w.reshape(w.shape[0], w.shape[1], -1).transpose(2, 0, 1)))


def _channel_major(w: np.ndarray) -> np.ndarray:
    """A 1x1 W (M, C, 1, 1) as W.T (C, M), contiguous: the B operand of a channels-last GEMM."""
    return _derived(w, "channel_major", lambda w: np.ascontiguousarray(w.reshape(w.shape[0], -1).T))


def _key(v):
    return None if v is None else tuple(int(i) for i in v)


@lru_cache(maxsize=512)
def _setup(in_dims, kernel, strides, pads, dilations, auto_pad):
    """(kernel, strides, dilations, out_dims, pads_begin, pads_end) as tuples, worked out once per
    geometry: a model runs the same few shapes over and over."""
    k, s, p, d = win.spatial_attrs(len(in_dims), kernel, strides, pads, dilations, auto_pad)
    out, pb, pe = win.geometry(in_dims, k, s, p, d, auto_pad)
    return tuple(k), tuple(s), tuple(d), tuple(out), tuple(pb), tuple(pe)


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
    k, s, p, d = win.spatial_attrs(nsp, kernel, a.get("strides"), a.get("pads"), a.get("dilations"),
                                   a.get("auto_pad", "NOTSET"))
    out, _, _ = win.geometry(x_shape[2:], k, s, p, d, a.get("auto_pad", "NOTSET"))
    return (x_shape[0], m) + tuple(out)


CONV_ATTRS = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None,
              "pads": None, "strides": None}


@register("Conv", since=1)
class Conv(Op):
    attrs = CONV_ATTRS
    num_inputs = (2, 3)

    def infer_shape(self, ctx: InferContext):
        return [conv_infer_shape(ctx, ctx.shape(0), ctx.shape(1))]

    def plan_hints(self, graph, custom_kernels):
        return channels_last_hints(graph, custom_kernels)

    def prepare(self, node, attrs):
        return prepare(self.compute, node, attrs)

    def compute(self, x, w, b=None, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                pads=None, strides=None, _channels_last=False):
        if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
            raise ShapeError(f"kernel_shape {list(kernel_shape)} does not match W {w.shape}")
        if supports_depthwise(x, w, group) and (b is None or b.dtype == x.dtype):
            from course.ops import _fused_kernels as fk  # imports numba: only for depthwise convs

            # the compiled 3x3 depthwise kernel (ShuffleNet's unactivated ones): same sums in the
            # same order as conv_core's numpy route, bias last, so the same bits
            return fk.depthwise_conv2d(x, w, b, strides, pads, dilations, auto_pad, "Identity")
        if b is not None and _pooled(x, w) and b.dtype == x.dtype:  # the bias add inside the GEMM's bands
            return conv_core(x, w, group, strides, pads, dilations, auto_pad, post=(b, None, "Identity", ()),
                             channels_last=_channels_last)
        y = conv_core(x, w, group, strides, pads, dilations, auto_pad, channels_last=_channels_last)
        if b is not None:
            y += b.reshape((-1,) + (1,) * (y.ndim - 2))
        return y


def prepare(compute, node, attrs) -> Optional[PreparedConv]:
    """Conv's and FusedConv's ``Op.prepare``: a PreparedConv for a float32 2-D convolution."""
    y = node.outputs[0] if node.outputs else None
    if y is None or y.type is None or y.type.dtype != np.float32 or y.type.shape is None or len(y.type.shape) != 4:
        return None
    return PreparedConv(compute, attrs)
