"""Every memory access of a traced launch, one record per thread per access: for pictures.

``kernels.trace.run`` keeps counts; ``accesses`` keeps the accesses themselves, so a lesson can
draw what one warp does at one instruction (GPU-Puzzles style: which lane touches which element,
and which 32-byte sectors or shared-memory banks that costs):

    recs = kernels.trace.accesses(kernel, grid, block, *args)
    for req in warp_requests(recs, array="out"):     # one list of lanes per warp instruction
        ...

Same execution as :func:`kernels.trace.run` (same instrumented body, same argument wrapping);
local arrays are left out, out-of-bounds accesses are kept with ``address = None``. Keep
launches small: a record is a Python object per access.
"""
from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple, Optional

import numpy as np


class Access(NamedTuple):
    """One element access by one thread."""

    block: tuple            # blockIdx (x, y, z)
    thread: tuple           # threadIdx (x, y, z)
    warp: int               # warp of the thread within its block
    lane: int               # lane of the thread within its warp
    space: str              # "global" or "shared"
    array: str              # the kernel's parameter name, or the shared array's variable name
    index: tuple            # the element's index
    address: Optional[int]  # virtual byte address (None: out of bounds, not performed)
    size: int               # bytes of the element
    kind: str               # "load", "store" or "atomic"
    line: int               # source line of the access
    request: tuple          # (site, occurrence): equal for the lanes of one warp instruction
    epoch: int              # barriers this thread had passed
    seq: int                # position in the thread's own sequence of accesses


def accesses(kernel, grid, block, *args, timeout: float | None = 60.0, max_steps: int | None = None) -> list[Access]:
    """Trace ``kernel[grid, block](*args)`` and return its accesses in block, thread, program order."""
    from kernels.trace import _dims, _Instrumenter, _python_body, _wrap_args
    from kernels.trace.errors import TraceError
    from kernels.trace.fake_cuda import FakeCuda
    from kernels.trace.scheduler import RunState, block_indices, run_block
    from numba import cuda as real_cuda

    fn = _python_body(kernel)
    grid3, block3 = _dims(grid, "grid"), _dims(block, "block")
    if int(np.prod(block3)) > 1024:
        raise TraceError(f"block {block!r} has more than 1024 threads")
    rs = RunState(grid3, block3, timeout, max_steps)
    body = _Instrumenter(FakeCuda(real_cuda, rs)).function(fn)
    wrapped, arrays, writebacks = _wrap_args(fn, args, rs)
    out: list[Access] = []
    for b in block_indices(grid3):
        threads, blk = run_block(body, wrapped, rs, b)
        names = dict(arrays)
        names.update({a.uid: a for a in blk.shared_arrays})
        for t in threads:
            out.extend(_records(b, t, names))
    for dev, host in writebacks:
        dev.copy_to_device(host)
    return out


def _records(block_idx, t, arrays) -> list[Access]:
    recs = []
    for seq, (space, uid, addr, size, kind, site, occ, epoch, line) in enumerate(t.log):
        arr = arrays[uid]
        flat = (addr - arr.base) // arr.itemsize
        index = tuple(int(i) for i in np.unravel_index(flat, arr.shape))
        recs.append(Access(block_idx, t.threadIdx_t, t.warp, t.lane, space, arr.name, index, addr, size,
                           kind, line, (site, occ), epoch, seq))
    for space, name, parts, kind, line in t.oob:
        recs.append(Access(block_idx, t.threadIdx_t, t.warp, t.lane, space, name, tuple(parts), None, 0,
                           kind, line, (None, line), t.epoch, -1))
    return recs


def warp_requests(records, array: str | None = None, block=None, warp: int | None = None,
                  kind: str | None = None) -> list[list[Access]]:
    """The records grouped into warp requests (the lanes of one warp at one instruction), in
    program order, optionally only those of one array, block, warp or kind; lanes sorted."""
    groups: dict = defaultdict(list)
    order = []
    for r in records:
        if r.address is None or (array is not None and r.array != array) or (kind is not None and r.kind != kind):
            continue
        if (block is not None and tuple(r.block) != _dim3(block)) or (warp is not None and r.warp != warp):
            continue
        key = (r.block, r.warp, r.request)
        if key not in groups:
            order.append(key)
        groups[key].append(r)
    # program order within each warp: barrier interval first, then the lanes' own access order
    order.sort(key=lambda k: (k[0][::-1], k[1], min(r.epoch for r in groups[k]), min(r.seq for r in groups[k])))
    return [sorted(groups[k], key=lambda r: r.lane) for k in order]


def _dim3(b) -> tuple:
    parts = tuple(b) if isinstance(b, (tuple, list)) else (b,)
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))
