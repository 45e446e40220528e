"""Numba intrinsics the jobs are made of: atomics with explicit ordering, raw pointers, and calls
to C functions by address (``cblas_sgemm``, ``sched_yield``, ``usleep``).

The jobs hand operands over as int64 addresses (CPython keeps the arrays alive meanwhile);
``f32_ptr``/``i64_ptr`` turn an address into a pointer for ``numba.carray``, which unlike a view
has no reference count to update in the inner loops. The two threads of a job agree on who
runs which part through ``load``/``store``/``add``/``cas`` on shared int64 words.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _pointer_from(element):
    """An intrinsic turning an int64 address into a pointer to ``element``."""
    @intrinsic
    def cast(typingctx, addr):
        sig = types.CPointer(element)(types.int64)

        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(sig.return_type))
        return sig, codegen
    return cast


f32_ptr = _pointer_from(types.float32)
i64_ptr = _pointer_from(types.int64)


def _item_pointer(context, builder, arrty, arr, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arrty, ary, [idx], wraparound=False)


@intrinsic
def load(typingctx, arr, idx):
    """arr[idx] with acquire ordering: what another thread stored before its release is visible."""
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_item_pointer(context, builder, sig.args[0], *args), "acquire", 8)
    return sig, codegen


@intrinsic
def store(typingctx, arr, idx, val):
    """arr[idx] = val with release ordering."""
    sig = types.void(arr, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        builder.store_atomic(args[2], _item_pointer(context, builder, sig.args[0], args[0], args[1]),
                             "release", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def add(typingctx, arr, idx, val):
    """Atomic arr[idx] += val."""
    sig = types.void(arr, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        builder.atomic_rmw("add", _item_pointer(context, builder, sig.args[0], args[0], args[1]), args[2],
                           "seq_cst")
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def cas(typingctx, arr, idx, expected, new):
    """Atomically: if arr[idx] == expected, set it to new and return True."""
    sig = types.boolean(arr, types.intp, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.extract_value(builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst"), 1)
    return sig, codegen


@lru_cache(maxsize=None)
def libc_address(name: str) -> int:
    """The address of libc's ``name`` (sched_yield, usleep), 0 where there is none: the calls
    below then do nothing (a busy wait instead of a yield)."""
    try:
        return ctypes.cast(getattr(ctypes.CDLL(None), name), ctypes.c_void_p).value or 0
    except (OSError, AttributeError, TypeError):  # pragma: no cover - no libc by that name
        return 0


def libc_yield() -> int:
    return libc_address("sched_yield")


def libc_sleep() -> int:
    return libc_address("usleep")


@intrinsic
def call_sleep(typingctx, fn, usec):
    """Call ``int fn(unsigned usec)`` at address fn (usleep) when fn != 0."""
    sig = types.void(types.int64, types.int64)

    def codegen(context, builder, sig, args):
        with builder.if_then(builder.icmp_unsigned("!=", args[0], args[0].type(0))):
            fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32)])
            builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [builder.trunc(args[1], ir.IntType(32))])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def call_yield(typingctx, fn):
    """Call ``int fn(void)`` at address fn (sched_yield) when fn != 0."""
    sig = types.void(types.int64)

    def codegen(context, builder, sig, args):
        with builder.if_then(builder.icmp_unsigned("!=", args[0], args[0].type(0))):
            fnty = ir.FunctionType(ir.IntType(32), [])
            builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])
        return context.get_dummy_value()
    return sig, codegen


def _sgemm_caller(int_bits):
    """An intrinsic calling cblas_sgemm (row-major, A transposed when trans_a, B when trans_b,
    alpha 1) at a raw address; the BLAS integer is int_bits wide (64 for numpy's ILP64 OpenBLAS)."""
    @intrinsic
    def call(typingctx, fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc):
        i64 = types.int64
        sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, types.float32, i64, i64)

        def codegen(context, builder, sig, args):
            fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc = args
            i32, bi, f32, vp = ir.IntType(32), ir.IntType(int_bits), ir.FloatType(), ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, bi, bi, bi, f32, vp, bi, vp, bi, f32, vp, bi])
            blasint = (lambda v: v) if int_bits == 64 else (lambda v: builder.trunc(v, bi))
            ptr = lambda v: builder.inttoptr(v, vp)  # noqa: E731
            flag = lambda v: builder.select(builder.icmp_unsigned("!=", v, v.type(0)), i32(112), i32(111))  # noqa: E731
            builder.call(builder.inttoptr(fn, fnty.as_pointer()),
                         [i32(101), flag(trans_a), flag(trans_b), blasint(m), blasint(n), blasint(k), f32(1.0),
                          ptr(a), blasint(lda), ptr(b), blasint(ldb), beta, ptr(c), blasint(ldc)])
            return context.get_dummy_value()
        return sig, codegen
    return call


_sgemm64 = _sgemm_caller(64)
_sgemm32 = _sgemm_caller(32)


@njit(inline="always")
def sgemm(fn, ilp64, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """C (m, n; ldc) = op(A) (m, k; lda) @ op(B) (k, n; ldb) + beta * C by the cblas_sgemm at
    address ``fn`` (64-bit integers when ``ilp64``), operands given as addresses."""
    if ilp64:
        _sgemm64(fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
    else:
        _sgemm32(fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)


@njit(inline="always")
def claim(sync, slot, parts):
    """The next unclaimed part on the counter sync[slot] (atomically taken), or -1 if none is left."""
    while True:
        t = load(sync, slot)
        if t >= parts:
            return -1
        if cas(sync, slot, t, t + 1):
            return t


@njit(inline="always")
def wait_for(sync, slot, parts, yield_fn):
    """Until sync[slot] counts ``parts`` parts made (the last ones maybe by the other thread)."""
    while load(sync, slot) < parts:
        call_yield(yield_fn)
