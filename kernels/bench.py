"""``python -m kernels.bench``: GFLOP/s of the matmul kernels and bandwidth of the transposes.

On a GPU it reports each matmul variant's GFLOP/s and its ratio to cuBLAS (through CuPy, when
installed; CuPy is optional, not a dependency), and each transpose's bandwidth as a fraction of
a device-to-device copy, then checks the course's goals: tiled >= 5x naive, register-blocked
>= 40% of cuBLAS at 4096^2, padded transpose >= 80% of copy bandwidth (``--check`` exits 1 when
one is missed). On the simulator it says so and exits 0, or with ``--sim`` runs a tiny smoke
size (timings meaningless, results still verified).
"""
from __future__ import annotations

import argparse
import sys
import time

import kernels  # noqa: F401  (decides GPU vs simulator first)
import course
import numpy as np
from numba import cuda

from kernels.launch import ceil_div
from kernels import matmul_naive, matmul_padded, matmul_regblock, matmul_tiled, transpose

GOALS = {"tiled_vs_naive": 5.0, "regblock_vs_cublas": 0.40, "padded_vs_copy": 0.80}


def _timer(fn, repeat: int) -> float:
    """Median seconds per call of ``fn`` (CUDA events on a GPU, wall clock on the simulator)."""
    fn()  # warm-up: JIT compilation and caches
    cuda.synchronize()
    times = []
    for _ in range(repeat):
        if course.CUDA_MODE == "gpu":
            start, end = cuda.event(), cuda.event()
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(cuda.event_elapsed_time(start, end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_variants():
    """(name, kernel, block, tile_m, tile_n) for each matmul the course builds."""
    return [
        ("naive", matmul_naive.matmul_naive_kernel, (16, 16), 16, 16),
        ("tiled", matmul_tiled.matmul_tiled_kernel, (matmul_tiled.TILE,) * 2, matmul_tiled.TILE, matmul_tiled.TILE),
        ("padded", matmul_padded.matmul_padded_kernel, (matmul_padded.TILE,) * 2, matmul_padded.TILE, matmul_padded.TILE),
        ("regblock", matmul_regblock.matmul_regblock_kernel,
         (matmul_regblock.BN // matmul_regblock.TN, matmul_regblock.BM // matmul_regblock.TM),
         matmul_regblock.BM, matmul_regblock.BN),
    ]


def _cublas_seconds(A, B, repeat):
    try:
        import cupy
    except ImportError:
        return None
    a, b = cupy.asarray(A), cupy.asarray(B)
    cupy.matmul(a, b)
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(repeat):
        s, e = cupy.cuda.Event(), cupy.cuda.Event()
        s.record()
        cupy.matmul(a, b)
        e.record()
        e.synchronize()
        times.append(cupy.cuda.get_elapsed_time(s, e) / 1e3)
    return float(np.median(times))


def bench_matmul(n: int, repeat: int) -> dict:
    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    B = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    dA, dB = cuda.to_device(A), cuda.to_device(B)
    dC = cuda.device_array((n, n), np.float32)
    flops = 2.0 * n ** 3
    rows = 64 if n > 64 else n  # verify a band of rows against numpy
    want = A[:rows].astype(np.float64) @ B.astype(np.float64)
    out = {}
    for name, kernel, block, tm, tn in matmul_variants():
        grid = (ceil_div(n, tn), ceil_div(n, tm))
        secs = _timer(lambda: kernel[grid, block](dA, dB, dC), repeat)
        got = dC.copy_to_host()[:rows]
        err = float(np.abs(got - want).max())
        if err > 1e-3 * n:
            raise AssertionError(f"matmul {name} at n={n}: max error {err:.3g}")
        out[name] = flops / secs / 1e9
    secs = _cublas_seconds(A, B, repeat) if course.CUDA_MODE == "gpu" else None
    out["cublas"] = flops / secs / 1e9 if secs else None
    return out


def bench_transpose(n: int, repeat: int) -> dict:
    a = np.random.default_rng(1).uniform(-1, 1, (n, n)).astype(np.float32)
    d_a = cuda.to_device(a)
    d_out = cuda.device_array((n, n), np.float32)
    nbytes = 2.0 * a.nbytes  # read once, write once
    out = {"copy": nbytes / _timer(lambda: d_out.copy_to_device(d_a), repeat) / 1e9}
    kernels_ = {"naive": transpose.transpose_naive_kernel, "shared": transpose.transpose_shared_kernel,
                "padded": transpose.transpose_padded_kernel}
    for name, kernel in kernels_.items():
        tile, rows = kernel.tiling
        grid = (ceil_div(n, tile), ceil_div(n, tile))
        secs = _timer(lambda: kernel[grid, (tile, rows)](d_out, d_a), repeat)
        if not np.array_equal(d_out.copy_to_host(), a.T):
            raise AssertionError(f"transpose {name} at n={n} is wrong")
        out[name] = nbytes / secs / 1e9
    return out


def report(mm: dict, tr: dict, n_mm: int, n_tr: int) -> list[str]:
    """Print the tables; return the goals that were missed."""
    print(f"matmul {n_mm}x{n_mm} float32 (GFLOP/s)")
    base = mm.get("cublas")
    for name, g in mm.items():
        if g is None:
            print(f"  {name:<9} n/a (install CuPy to compare with cuBLAS)")
            continue
        ratio = f"  {g / base:6.1%} of cuBLAS" if base else ""
        print(f"  {name:<9} {g:10.1f}{ratio}")
    print(f"transpose {n_tr}x{n_tr} float32 (GB/s, read + write)")
    for name, bw in tr.items():
        print(f"  {name:<9} {bw:10.1f}  {bw / tr['copy']:6.1%} of device-to-device copy")
    missed = []
    checks = [("tiled_vs_naive", mm["tiled"] / mm["naive"], "tiled / naive")]
    if base:
        checks.append(("regblock_vs_cublas", mm["regblock"] / base, "regblock / cuBLAS"))
    checks.append(("padded_vs_copy", tr["padded"] / tr["copy"], "padded transpose / copy"))
    for key, value, label in checks:
        ok = value >= GOALS[key]
        print(f"goal {label}: {value:.2f} (want >= {GOALS[key]}) {'ok' if ok else 'MISSED'}")
        if not ok:
            missed.append(key)
    return missed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4096, help="matmul size n (n x n), default 4096")
    p.add_argument("--transpose-size", type=int, default=8192, help="transpose size, default 8192")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--sim", action="store_true", help="on the simulator: run a tiny smoke size")
    p.add_argument("--check", action="store_true", help="exit 1 when a performance goal is missed")
    args = p.parse_args(argv)
    if course.CUDA_MODE != "gpu":
        if not args.sim:
            print("kernels.bench: no CUDA GPU (running on Numba's CUDA simulator); timings would be "
                  "meaningless. Run on a GPU, or pass --sim for a tiny smoke run.")
            return 0
        mm, tr = bench_matmul(40, 1), bench_transpose(40, 1)
        report(mm, tr, 40, 40)
        print("(simulator smoke run: results verified, timings meaningless)")
        return 0
    mm = bench_matmul(args.size, args.repeat)
    tr = bench_transpose(args.transpose_size, args.repeat)
    missed = report(mm, tr, args.size, args.transpose_size)
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
