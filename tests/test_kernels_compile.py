"""Every course kernel passes Numba's CUDA typing and lowering to LLVM IR (GPU-correctness without a GPU).

The simulator runs kernels as Python, so it accepts code a real GPU compile rejects (for example
a shared-array shape computed as ``tile + pad``, which is not a compile-time literal). This test
compiles each kernel for compute capability 9.0 in a fresh process with the simulator off; it
needs neither a GPU nor the CUDA toolkit (NVVM is not reached).
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    from numba import types
    from numba.cuda.compiler import compile_cuda
    from kernels import elementwise as E, reduce as R, softmax as S, matmul_naive as MN
    from kernels import matmul_tiled as MT, matmul_padded as MP, matmul_regblock as MR
    from kernels import transpose as T, conv_im2col as C, scan as SC, histogram as H
    f1, f2, i1 = types.float32[:], types.float32[:, :], types.int32[:]
    kernels = [
        (E.tensor_add_kernel, (f1, f1, f1)), (R.block_sum_kernel, (f1, f1)),
        (MN.matmul_naive_kernel, (f2,) * 3), (MT.matmul_tiled_kernel, (f2,) * 3),
        (MT.make_matmul_tiled(8), (f2,) * 3), (MP.matmul_padded_kernel, (f2,) * 3),
        (MP.make_matmul_transposed_tile(32, 0), (f2,) * 3), (MR.matmul_regblock_kernel, (f2,) * 3),
        (MR.make_matmul_regblock(16, 16, 4, 4, 4), (f2,) * 3),
        (T.transpose_naive_kernel, (f2, f2)), (T.transpose_shared_kernel, (f2, f2)),
        (T.transpose_padded_kernel, (f2, f2)),
        (C.im2col_kernel, (f2, types.float32[:, :, :, :]) + (types.int64,) * 7),
        (SC.scan_block_kernel, (i1, i1, i1)), (SC.add_offsets_kernel, (i1, i1)),
        (H.histogram_kernel, (i1, i1)),
    ]
    for k, sig in kernels:
        compile_cuda(k.py_func, types.void, sig, cc=(9, 0))
    # Kernels that call device functions need a driver to type the call; check the device
    # functions on their own (the kernels around them are the grid-stride loop above).
    compile_cuda(E._relu, types.float32, (types.float32,), cc=(9, 0))
    compile_cuda(E._mul, types.float32, (types.float32, types.float32), cc=(9, 0))
    compile_cuda(S._block_reduce.py_func, types.void, (f1, types.int64, types.boolean), cc=(9, 0))
    f32, pair = types.float32, types.UniTuple(types.float32, 2)
    compile_cuda(S._online_step.py_func, pair, (f32, f32, f32), cc=(9, 0))
    compile_cuda(S._online_combine.py_func, pair, (f32,) * 4, cc=(9, 0))
    print("compiled", len(kernels) + 5)
""")


def test_all_kernels_type_and_lower_for_a_real_gpu():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "compiled 21" in out.stdout
