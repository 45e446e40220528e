"""Conv and FusedConv, float32, 2-D: the general path of the CPU provider's convolution kernel.

``conv2d`` checks what it is given, picks a route from routes.CONV_ROUTES and runs it; anything
it does not take (another dtype, a broadcast residual, a geometry that does not fit) goes to the
reference op, which also raises the reference's errors. The routes run per image as one job
each, with FusedConv's epilogue (bias, residual, activation) inside the job's bands where the
route allows, else as one pass afterwards. ``channels_last`` (a node marked NHWC by the
MarkChannelsLast pass): a 1x1 convolution then writes its output as an (N, C, H, W) view of an
(N, H, W, C) array, what the channels-last depthwise kernel reads; a depthwise output follows
its input's layout; other routes write NCHW. ``workspace`` (the session's arena bytes for the
step, as many as ``route_scratch`` declares) holds a route's scratch: Winograd's tiles, the
shared im2col matrix, the shifted GEMMs' padded phases and grid, a padded 1x1's input copy.
"""
from __future__ import annotations

import numpy as np

from course.providers.cpu import blas
from course.providers.cpu.depthwise import depthwise_conv2d
from course.providers.cpu.epilogue import ACT_PARAMS, activate_inplace, epilogue
from course.providers.cpu.gemm import gemm_sum
from course.providers.cpu import im2col, winograd as wino
from course.providers.cpu.geometry import Window, flat_taps, phase_grid, window_of
from course.providers.cpu.im2col import im2col_gemm
from course.providers.cpu.job import scratch_pieces
from course.providers.cpu.routes import ConvCase, conv_route, route_applies
from course.providers.cpu.scratch import carve, scratch_bytes
from course.providers.cpu.weights import channel_major, rows, tap_major, winograd
from course.providers.cpu.winograd import winograd3x3


def _takes(x, w, b, z, attrs, activation, params) -> bool:
    """Whether the routes take these operands (else the reference runs them)."""
    group = attrs.get("group", 1)
    ks = attrs.get("kernel_shape")
    return (x.dtype == w.dtype == np.float32 and x.ndim == w.ndim == 4 and x.shape[1] == w.shape[1] * group
            and w.shape[0] % group == 0 and (ks is None or tuple(ks) == w.shape[2:])
            and (b is None or (b.dtype == np.float32 and b.shape == (w.shape[0],)))
            and (z is None or z.dtype == np.float32) and ACT_PARAMS.get(activation) == len(params or ()))


def conv2d(x, w, b=None, z=None, *, attrs: dict, activation="Identity", params=(), channels_last=False,
           reference=None, tactic=None, out=None, workspace=None):
    """``activation(Conv(x, w, b) + z)``, what FusedConv's (and with no z, Identity, Conv's)
    reference returns; ``attrs`` the node's convolution attributes. ``tactic`` names the route
    to take (an engine's timed choice) where it applies to the call, else routes.conv_route picks.
    ``out`` (destination passing): a C-contiguous NCHW float32 array the routes that write NCHW
    fill and return; the others (the reference, channels last) return their own array.
    ``workspace``: uint8 bytes the route's scratch is carved from (else allocated)."""
    if not _takes(x, w, b, z, attrs, activation, params):
        return reference(x, w, b, z)
    win = window_of(x.shape[2:], w.shape[2:], attrs)
    out_shape = (x.shape[0], w.shape[0]) + win.out
    if min(win.out) < 1 or (z is not None and z.shape != out_shape):
        return reference(x, w, b, z)  # the reference raises, or broadcasts the residual
    case = ConvCase(x.shape[1], w.shape[0], attrs.get("group", 1), w.shape, win, blas.available(), n=x.shape[0])
    route = tactic if tactic is not None and route_applies(tactic, case) else conv_route(case)
    if route == "reference":
        return reference(x, w, b, z)
    post = None if b is None and z is None and activation == "Identity" else (b, z, activation, tuple(params))
    return ROUTES[route](x, w, win, post, channels_last, out, workspace)


def output(out, shape) -> np.ndarray:
    """``out`` when it is a writable C-contiguous float32 array of ``shape``, else a new one."""
    if (out is not None and out.shape == shape and out.dtype == np.float32 and out.flags.c_contiguous
            and out.flags.writeable):
        return out
    return np.empty(shape, dtype=np.float32)


def _depthwise(x, w, win: Window, post, channels_last, out=None, workspace=None):
    """The compiled 3x3 depthwise kernel, bias and activation in its inner loop; a residual
    afterwards (in one pass on an NCHW output)."""
    b, z, activation, params = post if post is not None else (None, None, "Identity", ())
    if z is None:
        return depthwise_conv2d(x, w, b, win, activation, params, out=out)
    y = depthwise_conv2d(x, w, b, win, out=out)
    if y.flags.c_contiguous:
        return epilogue(y, None, activation, params, z)
    return activate_inplace(np.add(y, z), activation, params)


def _winograd(x, w, win: Window, post, channels_last, out=None, workspace=None):
    """Winograd F(2x2, 3x3) per image, the weights transformed once; one image's scratch at a time
    (each job is done before the next is posted)."""
    n, m = x.shape[0], w.shape[0]
    result = output(out, (n, m) + win.out)
    y = result.reshape(n, m, win.pixels)
    bias, z, act = epilogue_operands(post, y.shape)
    u = winograd(w)
    for i in range(n):
        winograd3x3(np.ascontiguousarray(x[i]), u, win, y[i], bias=bias, z=None if z is None else z[i], act=act,
                    workspace=workspace)
    return result


def _im2col(x, w, win: Window, post, channels_last, out=None, workspace=None):
    """W (M, C*KH*KW) @ im2col(x) per image, the im2col matrix made inside the job."""
    n, m = x.shape[0], w.shape[0]
    result = output(out, (n, m) + win.out)
    y = result.reshape(n, m, win.pixels)
    bias, z, act = epilogue_operands(post, y.shape)
    wm = rows(w)
    for i in range(n):
        im2col_gemm(np.ascontiguousarray(x[i]), wm, win, y[i], bias=bias, z=None if z is None else z[i], act=act,
                    workspace=workspace)
    return result


def _pointwise(x, w, win: Window, post, channels_last, out=None, workspace=None):
    """A 1x1 convolution: W (M, C) @ X (C, P) per image, X read in either layout (a transposed
    GEMM operand when channels last); channels last out when the node is marked so."""
    if win.padded:  # a zero-padded copy of X, in the workspace when there is one
        pt, pl = win.pads_begin
        (xp,) = carve(workspace, _pointwise_scratch(x.shape[:2], win))
        xp.fill(0.0)
        xp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]] = x
        x = xp
    n, c = x.shape[:2]
    xs = x.reshape(n, c, win.pixels)
    if xs.strides[2] != xs.itemsize and xs.strides[1] != xs.itemsize:  # neither NCHW nor NHWC rows
        xs = np.ascontiguousarray(xs)
    if channels_last:
        return _pointwise_channels_last(xs, w, win, post)
    m = w.shape[0]
    result = output(out, (n, m) + win.out)
    pooled_gemms(np.ascontiguousarray(w.reshape(1, m, c)), [xs], result.reshape(n, m, win.pixels), post)
    return result


def _pointwise_channels_last(xs, w, win: Window, post):
    """Y.T (P, M) = X.T (P, C) @ W.T (C, M) per image: the bias one per column, a residual read
    channels last (copied to that layout if it is not). Returns (N, M, OH, OW), a view."""
    n, c, p = xs.shape
    m = w.shape[0]
    y = np.empty((n,) + win.out + (m,), dtype=np.float32)
    yt = y.reshape(n, p, m)
    bias, z, act = epilogue_operands(post, yt.shape, channels_last=True)
    wt = channel_major(w)
    for i in range(n):
        gemm_sum(xs[i].T[None], [wt], yt[i], bias=bias, z=None if z is None else z[i], act=act, bias_axis=1)
    return y.transpose(0, 3, 1, 2)


def _taps(x, w, win: Window, post, channels_last, out=None, workspace=None):
    """One accumulating GEMM per kernel tap over shifted windows of the padded input, no im2col
    buffer: Y_grid += W[:, :, i, j] @ tap(i, j) on an (OH, PW) grid, cropped at the end. The
    epilogue runs in the GEMM's bands unless a residual would need the cropped layout."""
    n, m = x.shape[0], w.shape[0]
    (oh, ow) = win.out
    scratch = carve(workspace, _taps_scratch(x.shape[:2], m, win))  # the phases, then the grid if cropped
    taps, width = flat_taps(x, win, planes=scratch)
    result = output(out, (n, m, oh, ow))
    grid = result.reshape(n, m, oh * ow) if width == ow else scratch[-1].reshape(n, m, oh * width)
    fused = post is not None and (post[1] is None or width == ow)
    pooled_gemms(tap_major(w), taps, grid, post if fused else None)
    y = result
    if width != ow:  # the crop, into the output
        np.copyto(result, grid.reshape((n, m, oh, width))[..., :ow])
    if post is None or fused:
        return y
    b, z, activation, params = post
    return epilogue(y, b, activation, params, z)


ROUTES = {"depthwise": _depthwise, "winograd": _winograd, "im2col": _im2col, "pointwise": _pointwise,
          "taps": _taps}


def _pointwise_scratch(nc: tuple, win: Window) -> list:
    """A padded 1x1 convolution's zero-padded input, (N, C) + the output plane (stride 1)."""
    return [(np.float32, tuple(nc) + tuple(win.out))] if win.padded else []


def _taps_scratch(nc: tuple, m: int, win: Window) -> list:
    """The shifted GEMMs' phase planes (N, C, PH, PW) and, when PW > OW, their (N, M, OH*PW) grid."""
    phases, ph, pw = phase_grid(win)
    grid = [(np.float32, (nc[0], m, win.out[0] * pw))] if pw != win.out[1] else []
    return [(np.float32, tuple(nc) + (ph, pw))] * phases + grid


SCRATCH = {  # route -> the scratch pieces it carves for a ConvCase (the others: none)
    "winograd": lambda g: scratch_pieces(wino.scratch(g.c, g.m, g.win.out)),
    "im2col": lambda g: scratch_pieces(im2col.scratch(g.m, g.c * int(np.prod(g.w_shape[2:])), g.win.pixels,
                                                      im2col.pick_axis(g.m, g.win.pixels))),
    "pointwise": lambda g: _pointwise_scratch((g.n, g.c), g.win),
    "taps": lambda g: _taps_scratch((g.n, g.c), g.m, g.win),
}


def route_scratch(case: ConvCase, tactic=None) -> int:
    """Workspace bytes conv2d's route for ``case`` carves its scratch from (as conv2d picks it:
    ``tactic`` where it applies); 0 for routes that need none."""
    route = tactic if tactic is not None and route_applies(tactic, case) else conv_route(case)
    return scratch_bytes(SCRATCH[route](case)) if route in SCRATCH else 0


def pooled_gemms(wt, taps, y, post):
    """y[i] = sum_t wt[t] @ taps[t][i] per image by gemm_sum, ``post`` fused in; wt (T, M, K),
    taps[t] (N, K, P) with row-major images, y (N, M, P) contiguous."""
    bias, z, act = epilogue_operands(post, y.shape)
    for i in range(y.shape[0]):
        gemm_sum(wt, [view[i] for view in taps], y[i], bias=bias, z=None if z is None else z[i], act=act)


def epilogue_operands(post, shape, channels_last=False):
    """(bias, z, act) for the jobs from ``post`` = (b, z, activation, params), for an output of
    ``shape`` (N, M, P), or (N, P, M) with ``channels_last`` (z then read channels last: a view
    if it is laid out that way, else a copy); all None without a post."""
    if post is None:
        return None, None, None
    b, z, activation, params = post
    m = shape[2] if channels_last else shape[1]
    bias = None if b is None else np.ascontiguousarray(b, dtype=np.float32).reshape(m)
    if z is not None:
        z = np.ascontiguousarray(np.moveaxis(z, 1, -1) if channels_last else z, dtype=np.float32).reshape(shape)
    return bias, z, (activation, params)
