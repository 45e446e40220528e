"""Turn per-thread access logs into counts, warp requests, sectors, bank conflicts and races.

Warp requests: the accesses of the lanes of one warp that come from the same dynamic
instruction, i.e. the same bytecode position (``site``) reached for the same n-th time by each
lane, form one request, as a GPU issues one load/store instruction for the whole warp.

* Global memory: a request costs one transaction per distinct 32-byte sector it touches.
  32 lanes reading 32 consecutive float32 = 128 bytes = 4 sectors; a stride of 32 floats puts
  every lane in its own sector = 32 sectors.
* Shared memory: 32 banks of 4-byte words, bank = (byte address // 4) % 32. A request needs
  as many wavefronts as the largest number of *distinct* words any one bank must deliver (lanes
  reading the same word are served by one broadcast). 8-byte elements: each lane touches two
  consecutive words and the hardware serves the warp as two half-warps (16-byte: four
  quarter-warps), so conflicts are counted within each group; the minimum is one wavefront per
  group and only wavefronts beyond it count as conflicts.
* Races (shared memory only): two different threads of a block touch the same address between
  the same pair of barriers and at least one of them writes (atomics are exempt).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from kernels.trace.memory import ATOMIC, GLOBAL, LOAD, STORE

MAX_RECORDS = 1000  # readable records kept per list (counts stay exact beyond it)


def _lanes_groups(size: int) -> int:
    """How many lane groups the hardware splits a shared request of this element size into."""
    return max(1, size // 4)


def bank_cost(accesses) -> tuple[int, int]:
    """(extra wavefronts, max degree) of one shared-memory warp request.

    ``accesses`` are (lane, address, size) tuples of one warp instruction.
    """
    size = max(a[2] for a in accesses)
    groups = _lanes_groups(size)
    per_group = 32 // groups
    words = defaultdict(set)  # (group, bank) -> distinct words
    for lane, addr, sz in accesses:
        g = lane // per_group
        for w in range(addr // 4, (addr + sz - 1) // 4 + 1):
            words[(g, w % 32)].add(w)
    degree = defaultdict(int)
    for (g, _), ws in words.items():
        degree[g] = max(degree[g], len(ws))
    return sum(d - 1 for d in degree.values()), max(degree.values())


def sector_count(accesses) -> int:
    """Distinct 32-byte sectors a global-memory warp request touches."""
    sectors = set()
    for _, addr, sz in accesses:
        sectors.update(range(addr // 32, (addr + sz - 1) // 32 + 1))
    return len(sectors)


class Totals:
    """Everything the report shows, accumulated block by block."""

    COUNTERS = ("global_loads", "global_stores", "shared_loads", "shared_stores",
                "global_atomics", "shared_atomics")

    def __init__(self, arrays: dict):
        self.arrays = arrays  # uid -> TracedArray (global ones, plus shared ones as they appear)
        self.counts = dict.fromkeys(self.COUNTERS, 0)
        self.per_thread = {c: {} for c in self.COUNTERS}
        self.per_array = defaultdict(lambda: {"loads": 0, "stores": 0, "atomics": 0, "sectors": 0,
                                              "requests": 0})
        self.global_requests = 0
        self.global_sectors = 0
        self.global_load_sectors = 0
        self.global_store_sectors = 0
        self.global_bytes = 0
        self.shared_requests = 0
        self.bank_conflicts = 0
        self.max_conflict_degree = 1
        self.conflict_sites = defaultdict(lambda: [0, 1])  # line -> [extra wavefronts, max degree]
        self.out_of_bounds = []
        self.oob_count = 0
        self.races = []
        self.race_count = 0
        self.barriers = 0

    def add_block(self, block_idx, threads, blk) -> None:
        for arr in blk.shared_arrays:
            self.arrays[arr.uid] = arr
        requests = defaultdict(list)
        shared_touch = defaultdict(lambda: ({}, {}))  # (epoch, addr) -> (writers, readers): tid -> line
        for t in threads:
            self._add_thread(block_idx, t, requests, shared_touch)
        self.barriers = max(self.barriers, max((t.epoch for t in threads), default=0))
        self._add_requests(requests)
        self._add_races(block_idx, blk, shared_touch)

    def _add_thread(self, block_idx, t, requests, shared_touch) -> None:
        n = dict.fromkeys(self.COUNTERS, 0)
        for space, uid, addr, size, kind, site, occ, epoch, line in t.log:
            key = f"{space}_{kind}s" if kind != ATOMIC else f"{space}_atomics"
            n[key] += 1
            pa = self.per_array[uid]
            pa[kind + "s"] += 1
            requests[(space, t.warp, site, occ)].append((t.lane, addr, size, uid, kind))
            if space != GLOBAL and kind != ATOMIC:
                writers, readers = shared_touch[(epoch, addr)]
                (writers if kind == STORE else readers).setdefault(t.threadIdx_t, (line, uid))
        for c in self.COUNTERS:
            self.counts[c] += n[c]
            self.per_thread[c][(block_idx, t.threadIdx_t)] = n[c]
        for space, name, parts, kind, line in t.oob:
            self.oob_count += 1
            if len(self.out_of_bounds) < MAX_RECORDS:
                self.out_of_bounds.append(OutOfBounds(block_idx, t.threadIdx_t, name, parts, kind, space, line))

    def _add_requests(self, requests) -> None:
        for (space, _, site, _), acc in requests.items():
            lanes = [(lane, addr, size) for lane, addr, size, _, _ in acc]
            uid, kind = acc[0][3], acc[0][4]
            if space == GLOBAL:
                s = sector_count(lanes)
                self.global_requests += 1
                self.global_sectors += s
                if kind == LOAD:
                    self.global_load_sectors += s
                elif kind == STORE:
                    self.global_store_sectors += s
                self.global_bytes += len({addr for _, addr, _ in lanes}) * lanes[0][2]
                self.per_array[uid]["sectors"] += s
                self.per_array[uid]["requests"] += 1
            else:
                extra, degree = bank_cost(lanes)
                self.shared_requests += 1
                self.bank_conflicts += extra
                self.max_conflict_degree = max(self.max_conflict_degree, degree)
                self.per_array[uid]["requests"] += 1
                if degree > 1:
                    line = _site_line(site)
                    cs = self.conflict_sites[line]
                    cs[0] += extra
                    cs[1] = max(cs[1], degree)

    def _add_races(self, block_idx, blk, shared_touch) -> None:
        for (epoch, addr), (writers, readers) in shared_touch.items():
            if not writers:
                continue
            others = [r for r in readers if r not in writers]
            if len(writers) < 2 and not others:
                continue
            self.race_count += 1
            if len(self.races) >= MAX_RECORDS:
                continue
            w = list(writers)
            first = w[0]
            if len(w) > 1:
                second, kind = w[1], "write-write"
            else:
                second, kind = others[0], "read-write"
            line1, uid = writers[first]
            line2 = (writers.get(second) or readers[second])[0]
            arr = self.arrays[uid]
            index = tuple(int(i) for i in np.unravel_index((addr - arr.base) // arr.itemsize, arr.shape))
            self.races.append(Race(block_idx, first, second, arr.name, index, kind, epoch, line1, line2))


def _site_line(site) -> int:
    from kernels.trace.scheduler import _line

    return _line(site)


class OutOfBounds(tuple):
    """One out-of-bounds access: block, thread, array, index, kind ('load'/'store'/'atomic'), line."""

    __slots__ = ()
    _fields = ("block", "thread", "array", "index", "kind", "space", "line")

    def __new__(cls, block, thread, array, index, kind, space, line):
        return super().__new__(cls, (block, thread, array, index, kind, space, line))

    block = property(lambda s: s[0])
    thread = property(lambda s: s[1])
    array = property(lambda s: s[2])
    index = property(lambda s: s[3])
    kind = property(lambda s: s[4])
    space = property(lambda s: s[5])
    line = property(lambda s: s[6])

    def as_dict(self) -> dict:
        return dict(zip(self._fields, self))

    def __str__(self):
        return (f"block {self.block} thread {self.thread}: {self.kind} {self.array}{list(self.index)} "
                f"out of bounds ({self.space} memory, line {self.line})")

    __repr__ = __str__


class Race(tuple):
    """Two threads touching one shared address between the same barriers, at least one writing."""

    __slots__ = ()
    _fields = ("block", "thread", "other_thread", "array", "index", "kind", "interval", "line", "other_line")

    def __new__(cls, block, thread, other, array, index, kind, interval, line, other_line):
        return super().__new__(cls, (block, thread, other, array, index, kind, interval, line, other_line))

    block = property(lambda s: s[0])
    thread = property(lambda s: s[1])
    other_thread = property(lambda s: s[2])
    array = property(lambda s: s[3])
    index = property(lambda s: s[4])
    kind = property(lambda s: s[5])
    interval = property(lambda s: s[6])
    line = property(lambda s: s[7])
    other_line = property(lambda s: s[8])

    def as_dict(self) -> dict:
        return dict(zip(self._fields, self))

    def __str__(self):
        return (f"block {self.block}: {self.kind} race on {self.array}{list(self.index)} between thread "
                f"{self.thread} (line {self.line}) and thread {self.other_thread} (line {self.other_line}) "
                f"after barrier #{self.interval}")

    __repr__ = __str__
