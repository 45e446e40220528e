"""Numba CUDA kernels of the course and ``kernels.trace``, the instrumented simulator that grades them.

Importing this package first lets ``course`` decide between a real GPU and the CUDA simulator.

Modules (each kernel has a host wrapper with its launch configuration visible, and a numpy
reference or a formula in its docstring):

* ``launch``           ceil_div, THREADS, host/device copies
* ``elementwise``      grid-stride map / zip (``tensor_add``, ``make_map_kernel``, ``make_zip_kernel``)
* ``reduce``           shared-memory tree reduction (``reduce_sum``: two passes, any n)
* ``scan``             inclusive prefix sum, Hillis–Steele per block + block offsets (``scan``)
* ``histogram``        shared-memory privatised histogram with atomics (``histogram``)
* ``occupancy``        resident blocks and occupancy per SM, NVIDIA's calculator rules (plain Python)
* ``softmax``          row softmax, one block per row (``softmax_rows``; ``softmax_rows_online``: two reads)
* ``matmul_naive``     one thread per output (``matmul_naive``)
* ``matmul_tiled``     shared-memory tiles, any M, N, K (``make_matmul_tiled(tile)``, ``tiled_global_loads``)
* ``matmul_padded``    transposed A tile in a padded ``[T][T+1]`` array (``make_matmul_transposed_tile``)
* ``matmul_regblock``  2D block tiling, TM x TN outputs per thread (``make_matmul_regblock``)
* ``transpose``        naive / shared / padded shared (``make_transpose_naive``, ``make_transpose_shared``)
* ``conv_im2col``      im2col kernel + tiled matmul (``conv2d_im2col``, ``reference_conv2d``)
* ``fused_elementwise`` one generated kernel per fused elementwise region (``generate_source``, ``fused_elementwise``)
* ``trace``            ``kernels.trace.run(kernel, grid, block, *args)`` -> Report
* ``bench``            ``python -m kernels.bench`` (GPU timings; ``--sim`` smoke run)

Submodules load on first use (``kernels.trace`` works after ``import kernels``).
"""
import course  # noqa: F401  (switches the simulator on before numba loads when no GPU exists)

import importlib as _importlib

_SUBMODULES = {"launch", "elementwise", "reduce", "scan", "histogram", "occupancy", "softmax", "matmul_naive", "matmul_tiled",
               "matmul_padded", "matmul_regblock", "transpose", "conv_im2col", "fused_elementwise", "trace", "bench"}


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f"kernels.{name}")
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
