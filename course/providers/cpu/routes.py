"""Which kernel runs a node: the CPU provider's claims and its convolution routes, as tables.

Plain Python (no numba): the session asks ``claims`` while it partitions, before any kernel is
made. A convolution's route depends on its geometry only, so it is one small table read top to
bottom, the first route whose condition holds wins; why each condition is what it is is said
beside it, and the measurements behind the thresholds are in docs/benchmarks.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course.providers.cpu.geometry import Window

WINOGRAD_MIN_PIXELS = 196  # output pixels per plane; on 7x7 planes its 16 GEMMs are too thin
WINOGRAD_MAX_SCRATCH = 64 << 20  # bytes of transformed tiles; beyond, routes that need none win
TAPS_MIN_CHANNELS = 16  # the shifted GEMMs need this many input channels to run BLAS at speed
TAPS_MIN_PIXELS = 196  # ... and this many output pixels per tap
GEMM_MIN_MACS = 1 << 18  # a Gemm node below this costs more as a job than the second thread saves
# Per-image multiply-adds below which a batch of images goes to the reference: the routes post a
# job per image (tens of microseconds each), the reference makes one im2col for the whole batch
# and calls BLAS once (the digits CNN at batch 450: 8x8 planes, a few hundred thousand MACs each).
BATCHED_MIN_MACS = 1 << 22


@dataclass(frozen=True)
class ConvCase:
    """What the route of a 2-D convolution depends on."""

    c: int  # input channels
    m: int  # output channels
    group: int
    w_shape: tuple
    win: Window
    blas: bool  # numpy's BLAS can be called directly (blas.available())
    n: int = 1  # images in the batch

    @property
    def macs(self) -> int:
        """Multiply-adds per image."""
        return self.m * (self.c // self.group) * int(np.prod(self.w_shape[2:])) * self.win.pixels

    @property
    def depthwise(self) -> bool:
        return self.group == self.c == self.m and tuple(self.w_shape[1:]) == (1, 3, 3)

    @property
    def taps_fit(self) -> bool:
        return self.c >= TAPS_MIN_CHANNELS and self.win.pixels >= TAPS_MIN_PIXELS


def winograd_fits(case: ConvCase) -> bool:
    """Winograd F(2x2, 3x3) pays from WINOGRAD_MIN_PIXELS output pixels per plane, while its 16
    transformed tiles per input and output channel stay within WINOGRAD_MAX_SCRATCH."""
    return case.win.pixels >= WINOGRAD_MIN_PIXELS and winograd_scratch(case) <= WINOGRAD_MAX_SCRATCH


def winograd_scratch(case: ConvCase) -> int:
    """Bytes of Winograd's transformed tiles: 16 per 2x2 output tile, per input and output channel."""
    out = case.win.out
    return 16 * (-(-out[0] // 2) * -(-out[1] // 2)) * (case.c + case.m) * 4


CONV_ROUTES = (  # (route, condition): the first that holds wins
    # group == C == M, 3x3: the compiled depthwise kernel, NCHW or channels last
    ("depthwise", lambda g: g.depthwise),
    # other grouped convolutions, no BLAS to call, or a batch of small images: the reference's
    ("reference", lambda g: g.group != 1 or not g.blas or (g.n > 1 and g.macs < BATCHED_MIN_MACS)),
    # stride 1, 3x3, undilated, big enough planes: Winograd, 2.25x fewer multiplications
    ("winograd", lambda g: g.win.kernel == (3, 3) and not g.win.strided and g.win.dilations == (1, 1)
     and winograd_fits(g)),
    # 1x1, stride 1: one plain GEMM per image (a padded one only where shifted GEMMs would run)
    ("pointwise", lambda g: g.win.kernel == (1, 1) and not g.win.strided
     and (not g.win.padded or (g.taps_fit and g.win.pixels >= 2 * g.m))),
    # strided (the shifted GEMMs would read stride phases copied out first), few pixels for
    # the channels (split by output channels), or too small for the shifted GEMMs: im2col in
    # cache-sized blocks inside the job
    ("im2col", lambda g: g.win.strided or g.win.pixels < 2 * g.m or not g.taps_fit),
    # the rest: one accumulating GEMM per kernel tap over shifted windows, no im2col buffer
    ("taps", lambda g: True),
)


def conv_route(case: ConvCase) -> str:
    """The name of the first route of CONV_ROUTES whose condition holds for ``case``."""
    return next(name for name, applies in CONV_ROUTES if applies(case))


def _winograd_applies(g: ConvCase) -> bool:
    return (g.group == 1 and g.blas and g.win.kernel == (3, 3) and not g.win.strided
            and g.win.dilations == (1, 1) and winograd_scratch(g) <= WINOGRAD_MAX_SCRATCH)


ROUTE_APPLIES = {  # route -> whether it can compute this case at all (CONV_ROUTES: whether it should)
    "depthwise": lambda g: g.depthwise,
    "reference": lambda g: True,
    "winograd": _winograd_applies,
    "pointwise": lambda g: g.group == 1 and g.blas and g.win.kernel == (1, 1) and not g.win.strided,
    "im2col": lambda g: g.group == 1 and g.blas,
    "taps": lambda g: g.group == 1 and g.blas,
}


def route_applies(route: str, case: ConvCase) -> bool:
    """Whether ``route`` computes ``case`` (any route, however slow there; unknown names: False)."""
    applies = ROUTE_APPLIES.get(route)
    return applies is not None and applies(case)


def conv_tactics(case: ConvCase) -> list[str]:
    """The routes an engine build may time for ``case``: the heuristic's choice first, then every
    other route that applies, in CONV_ROUTES order."""
    first = conv_route(case)
    return [first] + [name for name, _ in CONV_ROUTES if name != first and route_applies(name, case)]


FUSED_GEMM_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh")  # course/ops/fused_gemm.py's
GEMM_TACTICS = ("bands", "reference")  # gemm_sum split between the threads; numpy's matmul


def gemm_tactics(m: int, k: int, n: int) -> list[str]:
    """A float32 Gemm's kernels, the heuristic's choice first (bands from GEMM_MIN_MACS)."""
    return list(GEMM_TACTICS if m * k * n >= GEMM_MIN_MACS else GEMM_TACTICS[::-1])


def is_static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def claims_conv(spec, blas_ok: bool) -> bool:
    """Conv and FusedConv: float32, 2-D, W's shape known, and a route of our own (depthwise 3x3,
    or group 1 with BLAS); a FusedConv residual must have the output's shape (no broadcasting)."""
    x, w = spec.input_shape(0), spec.input_shape(1)
    dtypes = [spec.input_dtype(i) for i in range(len(spec.inputs)) if spec.inputs[i] is not None]
    if any(d != np.float32 for d in dtypes) or x is None or len(x) != 4 or not is_static(w) or len(w) != 4:
        return False
    if spec.op_type == "FusedConv" and len(spec.inputs) > 3 and spec.inputs[3] is not None:
        out = spec.outputs[0][1] if spec.outputs and spec.outputs[0] is not None else None
        if out is None or tuple(spec.input_shape(3)) != tuple(out):
            return False
    group = spec.attrs.get("group", 1)
    depthwise = isinstance(x[1], int) and group == x[1] == w[0] and tuple(w[1:]) == (1, 3, 3)
    return depthwise or (group == 1 and blas_ok)


def claims_max_pool(spec) -> bool:
    """MaxPool without the Indices output: a 3x3 window over a float32 4-D input (the compiled
    kernel), any other window over a float32 or float64 input (one strided view per tap)."""
    x = spec.input_shape(0)
    outputs = [o for o in spec.outputs if o is not None]
    if spec.attrs.get("_num_outputs", len(outputs)) != 1 or len(outputs) != 1 or x is None:
        return False
    if tuple(spec.attrs.get("kernel_shape") or ()) == (3, 3):
        return spec.input_dtype(0) == np.float32 and len(x) == 4
    return spec.input_dtype(0) in (np.float32, np.float64) and len(x) >= 3


def claims_average_pool(spec) -> bool:
    """AveragePool over a float32 or float64 input of known rank (one strided view per tap)."""
    x = spec.input_shape(0)
    return spec.input_dtype(0) in (np.float32, np.float64) and x is not None and len(x) >= 3


def claims_gemm(spec, blas_ok: bool) -> bool:
    """Gemm, FusedGemm (Gemm then an activation) and MatMul of float32 matrices (2-D both) with
    at least GEMM_MIN_MACS multiply-adds (an unknown batch counted as 1): a classifier head, an
    MLP's layers."""
    a, b = spec.input_shape(0), spec.input_shape(1)
    if (not blas_ok or spec.input_dtype(0) != np.float32 or spec.input_dtype(1) != np.float32
            or a is None or b is None or len(a) != 2 or len(b) != 2):
        return False
    if spec.op_type == "FusedGemm" and spec.attrs.get("activation") not in FUSED_GEMM_ACTIVATIONS:
        return False
    ta, tb = spec.attrs.get("transA", 0), spec.attrs.get("transB", 0)
    m, k = (a[1], a[0]) if ta else (a[0], a[1])
    n = b[0] if tb else b[1]
    known = [d if isinstance(d, int) else 1 for d in (m, k, n)]
    return known[0] * known[1] * known[2] >= GEMM_MIN_MACS


def claims_batch_norm(spec) -> bool:
    """BatchNormalization in inference mode with its one output: X float32 of rank >= 2, the
    four per-channel operands float32 (the compiled scale-and-shift pass)."""
    x = spec.input_shape(0)
    outputs = [o for o in spec.outputs if o is not None]
    return (x is not None and len(x) >= 2 and len(spec.inputs) == 5 and len(outputs) == 1
            and len(spec.outputs) == 1 and not spec.attrs.get("training_mode", 0)
            and all(spec.input_dtype(i) == np.float32 for i in range(5)))


def claims_lrn(spec) -> bool:
    """LRN over float32 X of rank >= 3 (course/providers/cpu/lrn.py)."""
    x = spec.input_shape(0)
    return x is not None and len(x) >= 3 and spec.input_dtype(0) == np.float32


NHWC_DOMAIN = "course.nhwc"  # course/ops/nhwc.py's: X, Z and Y channels last, W still OIHW


def channels_last_route(spec, blas_ok: bool):
    """The route that runs a course.nhwc Conv or FusedConv channels last in and out, or None: a
    float32 2-D convolution with W's shape known that is 1x1 with stride 1 and group 1 and BLAS
    to call ("pointwise"), or 3x3 depthwise, undilated ("depthwise"); a FusedConv's residual of
    the output's shape (the epilogue runs every activation FusedConv has). Other routes write
    NCHW, so those nodes are left to the reference."""
    x, w = spec.input_shape(0), spec.input_shape(1)
    dtypes = [spec.input_dtype(i) for i in range(len(spec.inputs)) if spec.inputs[i] is not None]
    if any(d != np.float32 for d in dtypes) or x is None or len(x) != 4 or not is_static(w) or len(w) != 4:
        return None
    if spec.op_type == "FusedConv" and len(spec.inputs) > 3 and spec.inputs[3] is not None:
        z, out = spec.input_shape(3), spec.outputs[0][1] if spec.outputs and spec.outputs[0] is not None else None
        if z is None or out is None or tuple(z) != tuple(out):
            return None
    attrs = spec.attrs
    group, ones = attrs.get("group", 1), lambda key: all(v == 1 for v in attrs.get(key) or (1, 1))
    if tuple(w[2:]) == (1, 1) and group == 1 and blas_ok and ones("strides"):
        return "pointwise"
    if tuple(w[1:]) == (1, 3, 3) and isinstance(x[3], int) and group == x[3] == w[0] and ones("dilations"):
        return "depthwise"
    return None
