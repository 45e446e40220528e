"""kernels.trace on hand-written kernels whose counts are known exactly."""
import math

import numpy as np
import pytest
from numba import cuda, float32, float64

import course
import kernels.trace as kt


@cuda.jit
def load_stride(out, a, stride):
    i = cuda.grid(1)
    out[i] = a[i * stride]


def test_coalesced_float32_warp_load_is_four_sectors():
    a = np.arange(64, dtype=np.float32)
    out = np.zeros(32, np.float32)
    r = kt.run(load_stride, 1, 32, out, a, 1)
    d = r.as_dict()
    assert d["global_loads"] == 32 and d["global_stores"] == 32
    assert r.global_load_sectors == 4  # 32 lanes x 4 B = 128 B = 4 sectors
    assert d["global_sectors"] == 8  # plus 4 for the coalesced store
    assert np.array_equal(out, a[:32])
    assert r.coalescing_efficiency == 1.0


def test_stride_32_load_touches_one_sector_per_lane():
    a = np.arange(32 * 32, dtype=np.float32)
    out = np.zeros(32, np.float32)
    r = kt.run(load_stride, 1, 32, out, a, 32)
    assert r.global_load_sectors == 32
    assert np.array_equal(out, a[::32])


def test_float64_coalesced_load_is_eight_sectors():
    a = np.arange(32, dtype=np.float64)
    out = np.zeros(32, np.float64)
    r = kt.run(load_stride, 1, 32, out, a, 1)
    assert r.global_load_sectors == 8


def test_two_warps_are_two_requests():
    a = np.arange(64, dtype=np.float32)
    out = np.zeros(64, np.float32)
    r = kt.run(load_stride, 1, 64, out, a, 1)
    assert r.global_requests == 4 and r.global_sectors == 16


@cuda.jit
def shared_column(out, stride):
    buf = cuda.shared.array((32, 33), float32)
    t = cuda.threadIdx.x
    buf[t, 0] = t  # row t: 33-word rows -> bank (33 t) % 32 = t: no conflict
    cuda.syncthreads()  # the writes are visible before the reads below
    out[t] = buf[(t * stride) % 32, 0]


@cuda.jit
def shared_stride(out, stride):
    buf = cuda.shared.array(1024, float32)
    t = cuda.threadIdx.x
    buf[(t * stride) % 1024] = t
    cuda.syncthreads()  # the store is complete before the read
    out[t] = buf[(t * stride) % 1024]


def test_stride_32_shared_access_is_a_32_way_conflict():
    out = np.zeros(32, np.float32)
    r = kt.run(shared_stride, 1, 32, out, 32)
    d = r.as_dict()
    assert d["max_conflict_degree"] == 32
    assert d["bank_conflicts"] == 2 * 31  # one store request + one load request, 31 extra each
    assert d["shared_loads"] == 32 and d["shared_stores"] == 32
    assert np.array_equal(out, np.arange(32, dtype=np.float32))


@pytest.mark.parametrize("stride,degree", [(1, 1), (2, 2), (3, 1), (4, 4), (8, 8), (16, 16)])
def test_shared_stride_degrees(stride, degree):
    r = kt.run(shared_stride, 1, 32, np.zeros(32, np.float32), stride)
    assert r.max_conflict_degree == degree
    assert r.bank_conflicts == 2 * (degree - 1)


def test_padded_column_access_is_conflict_free():
    r = kt.run(shared_column, 1, 32, np.zeros(32, np.float32), 1)
    assert r.max_conflict_degree == 1 and r.bank_conflicts == 0


@cuda.jit
def shared_broadcast(out):
    buf = cuda.shared.array(32, float32)
    t = cuda.threadIdx.x
    if t == 0:
        buf[5] = 7.0
    cuda.syncthreads()  # buf[5] is written before everyone reads it
    out[t] = buf[5]


def test_broadcast_is_not_a_conflict():
    out = np.zeros(32, np.float32)
    r = kt.run(shared_broadcast, 1, 32, out)
    assert r.max_conflict_degree == 1 and r.bank_conflicts == 0
    assert r.races == [] and np.all(out == 7.0)


@cuda.jit
def shared_f64(out, stride):
    buf = cuda.shared.array(2048, float64)
    t = cuda.threadIdx.x
    buf[t * stride] = 1.0


def test_float64_shared_model_half_warps():
    # Consecutive doubles: each half-warp covers 32 banks once -> conflict-free.
    r = kt.run(shared_f64, 1, 32, np.zeros(1), 1)
    assert r.max_conflict_degree == 1 and r.bank_conflicts == 0
    # Stride 2 doubles (16 B): lanes l and l+8 of a half-warp share a bank -> 2-way per half-warp.
    r = kt.run(shared_f64, 1, 32, np.zeros(1), 2)
    assert r.max_conflict_degree == 2 and r.bank_conflicts == 2


def test_bank_cost_and_sector_count_helpers():
    assert kt.bank_cost([(l, 4 * l, 4) for l in range(32)]) == (0, 1)
    assert kt.bank_cost([(l, 128 * l, 4) for l in range(32)]) == (31, 32)
    assert kt.bank_cost([(l, 0, 4) for l in range(32)]) == (0, 1)
    assert kt.sector_count([(l, 4 * l, 4) for l in range(32)]) == 4
    assert kt.sector_count([(0, 30, 4)]) == 2  # straddles a sector boundary


@cuda.jit
def shift_left(out, a, sync):
    buf = cuda.shared.array(64, float32)
    t = cuda.threadIdx.x
    buf[t] = a[t]
    if sync:
        cuda.syncthreads()  # neighbours' stores land before the shifted read
    out[t] = buf[(t + 1) % cuda.blockDim.x]


def test_missing_syncthreads_is_a_race():
    a = np.arange(64, dtype=np.float32)
    r = kt.run(shift_left, 1, 64, np.zeros(64, np.float32), a, False)
    d = r.as_dict()
    assert len(d["races"]) == 64 and r.race_count == 64
    rec = d["races"][0]
    assert rec["array"] == "buf" and rec["kind"] == "read-write"
    assert rec["thread"] != rec["other_thread"]
    assert "race on buf" in str(r.races[0])


def test_with_syncthreads_there_is_no_race():
    a = np.arange(64, dtype=np.float32)
    out = np.zeros(64, np.float32)
    r = kt.run(shift_left, 1, 64, out, a, True)
    assert r.as_dict()["races"] == [] and r.barriers == 1
    assert np.array_equal(out, np.roll(a, -1))


@cuda.jit
def same_slot(out):
    buf = cuda.shared.array(1, float32)
    buf[0] = cuda.threadIdx.x
    cuda.syncthreads()  # the last write is visible to all
    out[cuda.threadIdx.x] = buf[0]


def test_write_write_race():
    r = kt.run(same_slot, 1, 4, np.zeros(4, np.float32))
    assert r.race_count == 1 and r.races[0].kind == "write-write"


@cuda.jit
def prev_element(out, a):
    i = cuda.grid(1)
    if i < a.shape[0]:
        out[i] = a[i - 1]


def test_negative_index_is_out_of_bounds():
    a = np.arange(10, dtype=np.float32)
    out = np.full(10, -1, np.float32)
    r = kt.run(prev_element, 1, 32, out, a)
    oob = r.as_dict()["out_of_bounds"]
    assert len(oob) == 1
    assert oob[0]["thread"] == (0, 0, 0) and oob[0]["array"] == "a"
    assert oob[0]["index"] == (-1,) and oob[0]["kind"] == "load"
    assert out[0] == 0 and np.array_equal(out[1:], a[:-1])  # the bad load read 0, not a[9]
    assert r.global_loads == 9  # out-of-bounds accesses are not counted as traffic


@cuda.jit
def unguarded_store(out):
    i = cuda.grid(1)
    out[i] = 1.0


def test_store_past_the_end_is_recorded_and_dropped():
    out = np.zeros(40, np.float32)
    r = kt.run(unguarded_store, 2, 32, out)
    assert r.out_of_bounds_count == 24 and r.global_stores == 40
    assert {x.kind for x in r.out_of_bounds} == {"store"}
    assert np.all(out == 1.0)


@cuda.jit
def early_return(out, n):
    buf = cuda.shared.array(32, float32)
    t = cuda.threadIdx.x
    if t >= n:
        return
    buf[t] = t
    cuda.syncthreads()  # (unreachable for the threads that returned: the bug under test)
    out[t] = buf[n - 1 - t]


def test_barrier_divergence_is_reported_not_a_deadlock():
    with pytest.raises(kt.BarrierDivergenceError, match="finished without reaching"):
        kt.run(early_return, 1, 32, np.zeros(32, np.float32), 20)
    assert issubclass(kt.BarrierDivergenceError, course.EngineError)


def test_no_divergence_when_every_thread_syncs():
    out = np.zeros(32, np.float32)
    kt.run(early_return, 1, 32, out, 32)
    assert np.array_equal(out, np.arange(31, -1, -1, dtype=np.float32))


@cuda.jit
def endless(out):
    i = 0
    while True:
        out[0] = i


@cuda.jit
def endless_compute(out):
    x = 0
    while x >= 0:
        x = (x + 1) % 7


def test_endless_loop_stops_with_max_steps():
    with pytest.raises(kt.TraceTimeout, match="max_steps"):
        kt.run(endless, 1, 4, np.zeros(1, np.float32), max_steps=1000)


def test_endless_pure_compute_stops_with_timeout():
    with pytest.raises(kt.TraceTimeout, match="timeout"):
        kt.run(endless_compute, 1, 2, np.zeros(1, np.float32), timeout=0.5)


@cuda.jit
def crashes(out):
    out[0] = 1 // (cuda.threadIdx.x - 3)


def test_python_error_names_the_thread():
    with pytest.raises(kt.KernelFault, match=r"thread \(3, 0, 0\).*ZeroDivisionError"):
        kt.run(crashes, 1, 8, np.zeros(1, np.int64))


@cuda.jit
def ids3d(out):
    x, y, z = cuda.grid(3)
    sx, sy, sz = cuda.gridsize(3)
    out[z, y, x] = x + sx * (y + sy * z)


def test_3d_grid_and_indices():
    out = np.zeros((4, 6, 10), np.int64)
    r = kt.run(ids3d, (2, 3, 2), (5, 2, 2), out)
    assert np.array_equal(out.ravel(), np.arange(out.size))
    assert r.threads == 240 and r.global_stores == 240
    pt = r.per_thread("global_stores")
    assert pt.shape == (2, 3, 2, 2, 2, 5) and pt.sum() == 240
    assert r.per_thread_global_stores[((1, 2, 1), (4, 1, 1))] == 1


@cuda.jit(device=True)
def twice(v):
    return 2 * v


@cuda.jit
def atomics_and_device(out, total, a):
    i = cuda.grid(1)
    if i < a.shape[0]:
        out[i] = twice(a[i])
        cuda.atomic.add(total, 0, a[i])


def test_device_functions_and_atomics():
    a = np.arange(50, dtype=np.float32)
    out = np.zeros(50, np.float32)
    total = np.zeros(1, np.float32)
    r = kt.run(atomics_and_device, 2, 32, out, total, a)
    assert np.array_equal(out, 2 * a) and total[0] == a.sum()
    assert r.global_atomics == 50 and r.races == []
    assert r.global_loads == 100  # a[i] twice per active thread


def plain_kernel(out, a):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = math.sqrt(a[i])


def test_plain_python_function_and_device_arrays():
    a = np.arange(20, dtype=np.float32)
    d_out = cuda.to_device(np.zeros(20, np.float32))
    r = kt.run(plain_kernel, 1, 32, d_out, a)
    assert np.allclose(d_out.copy_to_host(), np.sqrt(a))
    assert r.global_loads == 20


def test_report_views_and_bad_launches():
    r = kt.run(load_stride, 1, 32, np.zeros(32, np.float32), np.zeros(64, np.float32), 1)
    text = str(r)
    assert "global sectors" in text and "load_stride" in text
    assert "<table>" in r._repr_html_()
    with pytest.raises(kt.TraceError):
        kt.run(load_stride, 1, 2048, np.zeros(1), np.zeros(1), 1)
    with pytest.raises(kt.TraceError):
        kt.run(42, 1, 1)


def test_closure_device_function_kernel_and_lazy_submodule():
    import kernels
    from kernels import elementwise

    a = np.linspace(-1, 1, 40).astype(np.float32)
    out = np.zeros_like(a)
    r = kernels.trace.run(elementwise.relu_kernel, 2, 32, out, a)
    assert np.array_equal(out, np.maximum(a, 0)) and r.global_loads == 40


def test_warp_primitives_are_refused_clearly():
    @cuda.jit
    def uses_shuffle(out):
        out[0] = cuda.shfl_down_sync(0xFFFFFFFF, 1, 1)

    with pytest.raises(kt.KernelFault, match="warp-level primitive"):
        kt.run(uses_shuffle, 1, 32, np.zeros(1, np.int32))


@cuda.jit
def two_barriers(out):
    if cuda.threadIdx.x < 16:
        cuda.syncthreads()  # (one branch's barrier: the bug under test)
    else:
        cuda.syncthreads()  # (the other branch's barrier)
    out[cuda.threadIdx.x] = 1


def test_threads_at_different_barriers_is_divergence():
    with pytest.raises(kt.BarrierDivergenceError, match="different syncthreads"):
        kt.run(two_barriers, 1, 32, np.zeros(32, np.int32))


@cuda.jit
def count_positive(out, a):
    t = cuda.threadIdx.x
    out[t] = cuda.syncthreads_count(a[t] > 0) + 100 * cuda.syncthreads_or(a[t] > 5)


def test_syncthreads_count_and_or():
    a = np.array([1, -1, 3, 0, 7, 2, -5, 4], np.float32)
    out = np.zeros(8, np.int64)
    r = kt.run(count_positive, 1, 8, out, a)
    assert np.all(out == 5 + 100) and r.barriers == 2


@cuda.jit
def row_then_column(out, a):
    i = cuda.grid(1)
    if i < a.shape[1]:
        out[i] = a[1][i] + a[0][i - 1]


def test_chained_indexing_uses_the_same_addresses():
    a = np.arange(64, dtype=np.float32).reshape(2, 32)
    out = np.zeros(32, np.float32)
    r = kt.run(row_then_column, 1, 32, out, a)
    assert r.global_loads == 63 and r.global_load_sectors == 4 + 4  # a[0][-1] is dropped, not a sector
    assert [x.index for x in r.out_of_bounds] == [(-1,)]
    assert np.array_equal(out[1:], a[1, 1:] + a[0, :-1])
