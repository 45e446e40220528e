"""The one compiled entry point the pool calls: run chunk i of the job whose record is args."""
from __future__ import annotations

from numba import njit

from course.providers.cpu.batchnorm import scale_shift_chunk
from course.providers.cpu.depthwise import depthwise_chunk, depthwise_nhwc_chunk
from course.providers.cpu.epilogue import epilogue_chunk
from course.providers.cpu.gemm import gemm_chunk
from course.providers.cpu.im2col import im2col_chunk
from course.providers.cpu.job import (DEPTHWISE, DEPTHWISE_NHWC, EPILOGUE, GEMM, IM2COL_GEMM, MAX_POOL, SCALE_SHIFT,
                                     WINOGRAD)
from course.providers.cpu.maxpool import max_pool_chunk
from course.providers.cpu.winograd import winograd_chunk


@njit(cache=True, nogil=True)
def run_chunk(args, fl, i):
    """Chunk i of the job ``args`` (its kind first), float scalars ``fl``."""
    kind = args[0]
    if kind == GEMM:
        gemm_chunk(args, fl, i)
    elif kind == IM2COL_GEMM:
        im2col_chunk(args, fl, i)
    elif kind == WINOGRAD:
        winograd_chunk(args, fl, i)
    elif kind == DEPTHWISE:
        depthwise_chunk(args, fl, i)
    elif kind == DEPTHWISE_NHWC:
        depthwise_nhwc_chunk(args, fl, i)
    elif kind == MAX_POOL:
        max_pool_chunk(args, fl, i)
    elif kind == EPILOGUE:
        epilogue_chunk(args, fl, i)
    elif kind == SCALE_SHIFT:
        scale_shift_chunk(args, fl, i)
