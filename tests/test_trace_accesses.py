"""kernels.trace.accesses: per-thread records of a traced launch, grouped into warp requests."""
import numpy as np
from numba import cuda

from kernels import trace
from kernels.trace.analysis import bank_cost, sector_count


@cuda.jit
def gather(out, a, stride):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = a[i * stride]


@cuda.jit
def column_read(out, n):
    tile = cuda.shared.array((32, 32), np.float32)
    t = cuda.threadIdx.x
    for r in range(32):
        tile[r, t] = r
    cuda.syncthreads()  # the tile is written before the column reads
    out[t] = tile[t, n]


def test_records_name_arrays_indices_lanes_and_warps():
    a = np.arange(200, dtype=np.float32)
    recs = trace.accesses(gather, 2, 48, np.zeros(70, np.float32), a, 2)
    loads = [r for r in recs if r.array == "a"]
    assert len(loads) == 70 and {r.kind for r in loads} == {"load"}
    r = next(r for r in loads if r.block == (0, 0, 0) and r.thread == (40, 0, 0))
    assert r.index == (80,) and (r.warp, r.lane) == (1, 8) and r.space == "global"
    r = next(r for r in loads if r.block == (1, 0, 0) and r.thread == (20, 0, 0))
    assert r.index == ((48 + 20) * 2,) and (r.warp, r.lane) == (0, 20)
    assert r.address % 4 == 0 and r.size == 4


def test_warp_requests_cost_what_the_report_counts():
    a = np.arange(400, dtype=np.float32)
    args = (np.zeros(100, np.float32), a, 3)
    recs = trace.accesses(gather, 2, 64, *args)
    rep = trace.run(gather, 2, 64, np.zeros(100, np.float32), a, 3)
    reqs = trace.warp_requests(recs, array="a")
    assert len(reqs) == 4  # warps of 32, 32, 32 and 4 live lanes
    assert [len(q) for q in reqs] == [32, 32, 32, 4]
    assert sum(sector_count([(r.lane, r.address, r.size) for r in q]) for q in reqs) == rep.global_load_sectors
    assert [q[0].lane for q in reqs] == [0, 0, 0, 0]


def test_shared_requests_and_out_of_bounds():
    recs = trace.accesses(column_read, 1, 32, np.zeros(32, np.float32), 5)
    reads = trace.warp_requests(recs, array="tile", kind="load")
    assert len(reads) == 1 and [r.index for r in reads[0]] == [(t, 5) for t in range(32)]
    assert bank_cost([(r.lane, r.address, r.size) for r in reads[0]]) == (31, 32)
    writes = trace.warp_requests(recs, array="tile", kind="store", warp=0, block=0)
    assert len(writes) == 32 and all(len(q) == 32 for q in writes)
    oob = trace.accesses(gather, 1, 32, np.zeros(32, np.float32), np.zeros(10, np.float32), 1)
    assert sum(r.address is None for r in oob) == 22
