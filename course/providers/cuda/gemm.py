"""Gemm and MatMul on the device with the course's matmul kernels (lesson 05), chosen per shape.

``ROUTES`` is the table: the register-blocked kernel (``kernels/matmul_regblock.py``, 128x128
tiles, 8x8 outputs per thread) where C is big enough to fill whole tiles, else the shared-memory
tiled kernel (``kernels/matmul_tiled.py``, 16x16 tiles). Both take (A, B, C) and guard every
edge, so any M, N, K works. A constant operand is transposed on the host and uploaded once;
``alpha``, ``beta * C`` (broadcast) are an epilogue (epilogue.py) when they change anything; a
FusedGemm's activation is one more generated elementwise kernel (elementwise.py).
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

from course.providers.base import NodeSpec
from course.providers.cuda import elementwise
from course.providers.cuda.epilogue import gemm_epilogue
from kernels import matmul_regblock, matmul_tiled
from kernels.fused_elementwise import make_kernel
from kernels.launch import ceil_div


class Route(NamedTuple):
    name: str
    applies: Callable[[int, int, int], bool]  # (M, N, K) -> bool
    kernel: object
    block: tuple[int, int]  # threads per block (x, y)
    tile: tuple[int, int]  # (rows, columns) of C per block


_RB = matmul_regblock
ROUTES = (  # the first route that applies wins
    Route("regblock", lambda m, n, k: m >= _RB.BM and n >= _RB.BN, _RB.matmul_regblock_kernel,
          (_RB.BN // _RB.TN, _RB.BM // _RB.TM), (_RB.BM, _RB.BN)),
    Route("tiled", lambda m, n, k: True, matmul_tiled.matmul_tiled_kernel,
          (matmul_tiled.TILE, matmul_tiled.TILE), (matmul_tiled.TILE, matmul_tiled.TILE)),
)


def route(m: int, n: int, k: int) -> Route:
    return next(r for r in ROUTES if r.applies(m, n, k))


def matmul_into(state, a, b, c):
    """c = a @ b on the device (a (M, K), b (K, N), c (M, N) device arrays); returns c."""
    m, n = a.shape[0], b.shape[1]
    r = route(m, n, a.shape[1])
    if m and n:
        # Launch configuration: r.block threads per block, one block per r.tile tile of C.
        grid = (ceil_div(n, r.tile[1]), ceil_div(m, r.tile[0]))  # x over columns, y over rows
        state.launch(r.kernel, grid, r.block, a, b, c)
    return c


def _as_matrix(c):
    """C as 2-D for the epilogue's broadcast: () -> (1, 1), (N,) -> (1, N)."""
    shape = tuple(c.shape)
    return c.reshape(((1,) * (2 - len(shape)) + shape) if len(shape) < 2 else shape)


def gemm(state, a, b, c=None, *, alpha: float = 1.0, beta: float = 1.0, trans_a: int = 0, trans_b: int = 0):
    """Y = alpha * A' @ B' + beta * C; a transposed operand is a constant (claims.py checks)."""
    a = state.on_device(a, "A", (lambda x: x.T) if trans_a else None)
    b = state.on_device(b, "B", (lambda x: x.T) if trans_b else None)
    y = matmul_into(state, a, b, state.empty((a.shape[0], b.shape[1])))
    if c is not None:
        c = _as_matrix(state.on_device(c, "C", _as_matrix))
    if alpha != 1.0 or c is not None:
        gemm_epilogue(state, y, c, alpha, beta)
    return y


def fused_gemm(state, *inputs, gemm_kernel, activation):
    """FusedGemm: the Gemm, then its activation as a one-step generated elementwise kernel."""
    return elementwise.run_program(state, gemm_kernel(*inputs), kernel=activation, shape=None)


def make_gemm(state, spec: NodeSpec):
    if spec.op_type == "MatMul":
        return functools.partial(gemm, state)
    a = spec.attrs
    plain = functools.partial(gemm, state, alpha=float(a.get("alpha", 1.0)), beta=float(a.get("beta", 1.0)),
                              trans_a=int(a.get("transA", 0)), trans_b=int(a.get("transB", 0)))
    if spec.op_type != "FusedGemm":
        return plain
    program = elementwise.activation_program(a["activation"], a.get("activation_params") or ())
    return functools.partial(fused_gemm, state, gemm_kernel=plain, activation=make_kernel(program, "cuda"))
