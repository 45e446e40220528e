"""CPU kernels, one op (family) per module, each registered explicitly in course.ops.registry.

Importing this package imports every op module below (nothing is discovered by scanning).
"""
from course.ops import (  # noqa: F401
    activations,
    batchnorm,
    binary,
    cast,
    clip,
    concat,
    constant,
    constant_of_shape,
    conv,
    flatten,
    fused_conv,
    gather,
    gemm,
    global_pool,
    identity,
    lrn,
    matmul,
    maxpool,
    pad,
    pool,
    quant_dequantize,
    quant_integer,
    quant_linear,
    quant_qlinear,
    reshape,
    shape,
    slice,
    softmax,
    split,
    squeeze,
    transpose,
    unary,
)
from course.ops.registry import lookup, register, supported_ops  # noqa: F401
