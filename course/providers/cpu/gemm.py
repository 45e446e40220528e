"""A sum of GEMMs into one output, split between the threads by bands: ``gemm_sum``.

It is a 1x1 convolution (one GEMM per image), a convolution as one accumulating GEMM per kernel
tap over shifted windows of the input (conv.py's "taps" route), or a big Gemm node. Why not
OpenBLAS's own threads: on the small GEMMs a MobileNet is made of, two single-threaded calls on
the two halves of the output, run at once, are much quicker than one two-threaded call (see
docs/benchmarks.md). With an epilogue (FusedConv's bias, residual and activation) each band is
made a cache-sized block at a time and the epilogue follows on the block while it is in cache.
"""
from __future__ import annotations

import numpy as np
from numba import carray, njit

from course.providers.cpu import blas
from course.providers.cpu.epilogue import ACT_CODES, activate_inplace, epilogue_block
from course.providers.cpu.intrinsics import f32_ptr, i64_ptr, sgemm
from course.providers.cpu.routes import GEMM_MIN_MACS
from course.providers.cpu.job import ALIGN, F32, FLOATS, GEMM, address, floats, layout, make_job, split

BLOCK_BYTES = 512 * 1024  # a GEMM block with an epilogue: its output and input columns, in L2
BLOCK_MIN = 256  # columns; narrower blocks pay OpenBLAS's per-call cost too often

# C (m, n; ldc) = beta * C + sum over taps t of A_t (m, k; lda) @ B_t (k, n), A_t = a + t * a_tap,
# B_t at table[t] = (address, leading dimension); chunks are bands of rows (axis 0) or columns.
GEMM_ARGS = layout("GemmArgs", "blas ilp64 m n k a lda a_tap trans_a table ntaps trans_b c ldc axis step block "
                               "epilogue act bias bias_mode z ldz has_z")


@njit(inline="always")
def _band_block(args, q, q1):
    # (r0, r1, s0, s1): the rows and columns of C that block q of a band covers.
    L = GEMM_ARGS
    end = min(q1, q + args[L.block])
    if args[L.axis] == 0:
        return q, end, 0, args[L.n]
    return 0, args[L.m], q, end


@njit(inline="always")
def _multiply_block(args, fl, taps, r0, r1, s0, s1):
    # C[r0:r1, s0:s1] = beta * C + sum_t A_t[r0:r1] @ B_t[:, s0:s1], one sgemm per tap.
    L = GEMM_ARGS
    lda, ldc, trans_a, trans_b = args[L.lda], args[L.ldc], args[L.trans_a], args[L.trans_b]
    for t in range(args[L.ntaps]):
        beta = np.float32(fl[FLOATS.beta]) if t == 0 else np.float32(1.0)
        at = args[L.a] + (r0 * (1 if trans_a else lda) + t * args[L.a_tap]) * F32  # row r0 of A_t
        bt = taps[t, 0] + s0 * (taps[t, 1] if trans_b else 1) * F32  # column s0 of B_t
        ct = args[L.c] + (r0 * ldc + s0) * F32
        sgemm(args[L.blas], args[L.ilp64], trans_a, trans_b, r1 - r0, s1 - s0, args[L.k], at, lda, bt,
              taps[t, 1], beta, ct, ldc)


@njit(inline="always")
def _block_epilogue(args, fl, r0, r1, s0, s1):
    # C[r0:r1, s0:s1] = act(C + bias + Z) on the block just made.
    L = GEMM_ARGS
    m, n, ldc, ldz, mode = args[L.m], args[L.n], args[L.ldc], args[L.ldz], args[L.bias_mode]
    bias_len = 0 if mode == 0 else m if mode == 1 else n
    epilogue_block(carray(f32_ptr(args[L.c]), ((m - 1) * ldc + n,)), ldc, r0, r1, s0, s1,
                   carray(f32_ptr(args[L.bias]), (bias_len,)), mode,
                   carray(f32_ptr(args[L.z]), ((m - 1) * ldz + n if args[L.has_z] else 0,)), ldz,
                   args[L.has_z] != 0, args[L.act], np.float32(fl[FLOATS.lo]), np.float32(fl[FLOATS.hi]),
                   np.float32(fl[FLOATS.alpha]))


@njit(cache=True, nogil=True)
def gemm_chunk(args, fl, i):
    """Chunk i of a GEMM job: one band of C, made ``block`` rows or columns at a time, each block
    followed by the epilogue while it is in cache."""
    L = GEMM_ARGS
    taps = carray(i64_ptr(args[L.table]), (args[L.ntaps], 2))
    q0 = i * args[L.step]
    q1 = min(args[L.n] if args[L.axis] else args[L.m], q0 + args[L.step])
    for q in range(q0, q1, args[L.block]):
        r0, r1, s0, s1 = _band_block(args, q, q1)
        _multiply_block(args, fl, taps, r0, r1, s0, s1)
        if args[L.epilogue]:
            _block_epilogue(args, fl, r0, r1, s0, s1)


def window_ld(v: np.ndarray, what: str) -> tuple[bool, int]:
    """(transposed, leading dimension) of a 2-D operand v: a row-major window, or (transposed
    True) the transpose of one."""
    try:
        return False, blas.ld(v)
    except ValueError:
        pass
    try:
        return True, blas.ld(v.T)
    except ValueError:
        raise ValueError(f"gemm_sum: {what} with strides {v.strides} is not a row-major window "
                         "or its transpose") from None


def ld_or_broadcast(z) -> int:
    """Leading dimension of the residual z; 0 for one row broadcast over all rows (a Gemm's C)."""
    if z is None:
        return 0
    if z.shape[0] > 1 and z.strides[0] == 0:
        blas.ld(z[:1])
        return 0
    return blas.ld(z)


def _check(a, taps, c, bias, z, bias_axis) -> None:
    t, m, k = a.shape
    n = c.shape[1]
    if (c.shape[0] != m or len(taps) != t or any(v.shape != (k, n) for v in taps)
            or (z is not None and z.shape != c.shape)
            or (bias is not None and (bias.shape != ((m,), (n,))[bias_axis] or not bias.flags.c_contiguous))):
        raise ValueError(f"gemm_sum: {a.shape} @ {[v.shape for v in taps]} -> {c.shape} does not fit")


def _tap_table(taps) -> tuple[np.ndarray, bool]:
    """(table of (address, leading dimension) per B operand, whether they are transposed)."""
    table = np.empty((len(taps), 2), dtype=np.int64)
    trans_b = window_ld(taps[0], "taps[t]")[0]
    for i, v in enumerate(taps):
        transposed, ld = window_ld(v, "taps[t]")
        if transposed != trans_b:
            raise ValueError("gemm_sum: taps must all be row-major windows, or all transposed ones")
        table[i] = address(v), ld
    return table, trans_b


def _nothing_to_multiply(c, beta, bias, z, act, bias_axis):
    """c = act(beta * c + bias + z) when K or the number of taps is 0."""
    from course.providers.cpu.epilogue import activate_inplace

    c *= beta
    if act is not None:
        c += 0 if bias is None else (bias if bias_axis == 1 else bias[:, None])
        c += 0 if z is None else z
        activate_inplace(c, *act)
    return c


def gemm_sum(a: np.ndarray, taps: list, c: np.ndarray, beta: float = 0.0, bias=None, z=None,
             act=None, bias_axis: int = 0) -> np.ndarray:
    """``c = beta * c + sum_t a[t] @ taps[t]`` in place, float32: a (T, M, K) whose a[t] are
    row-major 2-D windows (any row stride) or all transposes of such windows, taps[t] (K, N)
    row-major windows or all transposes of such, c (M, N) a row-major window. Cut into two
    bands of rows, or of columns when N is the bigger side, one per thread.

    With ``act`` = (activation, params), the FusedConv epilogue follows on each band while it is
    in cache: ``c = act(c + bias + z)``, bias contiguous or None, one value per row (M,) or with
    ``bias_axis`` 1 per column (N,), z an (M, N) row-major window (or one row broadcast to M
    rows) or None."""
    from course.providers.cpu.epilogue import scalars

    _check(a, taps, c, bias, z, bias_axis)
    t, m, k = a.shape
    n = c.shape[1]
    if m == 0 or n == 0:
        return c
    if k == 0 or t == 0:
        return _nothing_to_multiply(c, beta, bias, z, act, bias_axis)
    trans_a, lda = window_ld(a[0], "a[t]")
    if t > 1 and (a.strides[0] % F32 or a.strides[0] < 0 or window_ld(a[1], "a[t]")[0] != trans_a):
        raise ValueError("gemm_sum: a[t] must be evenly spaced windows of one kind")
    table, trans_b = _tap_table(taps)
    code, lo, hi, alpha = scalars(*act) if act is not None else (0, 0.0, 0.0, 0.0)
    axis = 1 if n >= 2 * m else 0
    step, chunks = split(n if axis else m)
    block = step
    if act is not None:  # a block's output and its input columns (or rows) stay in L2 together
        block = max(BLOCK_MIN, BLOCK_BYTES // (F32 * ((m if axis else n) + k)) // ALIGN * ALIGN)
    fn, ilp64 = blas.sgemm_address()
    make_job(GEMM_ARGS, GEMM, floats(beta, lo, hi, alpha), chunks, (a, *taps, c, bias, z, table), b_table=table,
             blas=fn, ilp64=ilp64, m=m, n=n, k=k, a=address(a), lda=lda, a_tap=a.strides[0] // F32 if t > 1 else 0,
             trans_a=trans_a, table=address(table), ntaps=t, trans_b=trans_b, c=address(c), ldc=blas.ld(c),
             axis=axis, step=step, block=block, epilogue=act is not None, act=code,
             bias=address(bias if bias is not None else c), bias_mode=0 if bias is None else 1 + bias_axis,
             z=address(z if z is not None else c), ldz=ld_or_broadcast(z), has_z=z is not None).post()
    return c


def gemm_node(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0, reference=None, activation=None,
              params=(), out=None):
    """ONNX Gemm, float32: ``alpha * op(A) @ op(B) + beta * C`` with op(B) handed to BLAS as it
    lies (a transB weight transposed, not copied) and C added inside the bands when it is a
    row broadcast or a full matrix; FusedGemm's ``activation`` then follows, inside the bands
    when C allows and it is one of the epilogue's (Relu, Clip, LeakyRelu), else as the reference
    op's pass over the result. MatMul is the case without C. ``out``: a C-contiguous float32
    (M, N) array to write Y into (destination passing); Y is returned. Small or unusual
    products go to ``reference`` (the node's own op, activation included)."""
    a2 = a.T if transA else a
    b2 = b.T if transB else b
    if (a.dtype != np.float32 or b.dtype != np.float32 or a.ndim != 2 or b.ndim != 2
            or a2.shape[1] != b2.shape[0] or a2.shape[0] * a2.shape[1] * b2.shape[1] < GEMM_MIN_MACS):
        return reference(a, b, c)
    m, k, n = a2.shape[0], a2.shape[1], b2.shape[1]
    if not (b2.flags.c_contiguous or b2.T.flags.c_contiguous):
        b2 = np.ascontiguousarray(b2)
    act = None if activation in (None, "Identity") else (activation, tuple(params))
    z = _broadcast_c(c, m, n) if alpha == 1.0 and beta == 1.0 else None
    y = out if _fits(out, (m, n)) else np.empty((m, n), dtype=np.float32)
    in_bands = act if act is not None and act[0] in ACT_CODES else None
    if z is None:
        in_bands = None
    gemm_sum(np.ascontiguousarray(a2).reshape(1, m, k), [b2], y, z=z,
             act=in_bands or (None if z is None else ("Identity", ())))
    if z is None:
        if alpha != 1.0:
            y *= np.float32(alpha)
        if c is not None and beta != 0.0:
            y += c if beta == 1.0 else c * c.dtype.type(beta)
    if act is not None and in_bands is None:
        _activate(y, act)
    return y


def _fits(out, shape) -> bool:
    return (out is not None and out.shape == shape and out.dtype == np.float32 and out.flags.c_contiguous
            and out.flags.writeable)


def _activate(y, act) -> None:
    """y = act(y) in place, as the reference FusedGemm applies it: numpy's in-place ufuncs for the
    epilogue's activations, the reference op of that name (Sigmoid, Tanh) otherwise."""
    from course.ops.fused_elementwise import Step, run_step
    from course.ops.fused_gemm import ACTIVATIONS

    name, params = act
    if name in ACT_CODES:
        activate_inplace(y, name, params)
        return
    step = Step("y", name, ("x0",), dict(zip(ACTIVATIONS[name], params)))
    np.copyto(y, run_step(step, [y]))


def _broadcast_c(c, m: int, n: int):
    """C broadcast to Y's (M, N) as a view, when it is float32 and needs no copy, else None."""
    if c is None or c.dtype != np.float32 or c.ndim > 2:
        return None
    try:
        z = np.broadcast_to(c, (m, n))
    except ValueError:
        return None  # the numpy add afterwards raises numpy's message
    # rows of C along Y's columns: one row for all (strides (0, 4)) or a full (M, N) matrix
    return z if z.strides[1] == z.itemsize and (m == 1 or z.strides[0] in (0, z.itemsize * n)) else None
