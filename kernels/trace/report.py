"""The result of a trace: totals, per-thread and per-array counts, problems, and readable views."""
from __future__ import annotations

import html

import numpy as np


class Report:
    """What ``kernels.trace.run`` measured. ``as_dict()`` holds the headline numbers.

    Attributes: the totals of ``as_dict()`` as attributes, ``per_thread_global_loads`` (and
    ``..._stores``, ``per_thread_shared_loads``, ``..._stores``): dicts keyed by
    ``(blockIdx, threadIdx)`` 3-tuples; ``per_array``: name -> loads/stores/atomics/sectors/requests;
    ``conflict_lines``: source line -> (extra wavefronts, max degree) for lines with conflicts.
    """

    def __init__(self, name, grid, block, totals, arrays):
        self.kernel_name = name
        self.grid = grid
        self.block = block
        self.threads = int(np.prod(grid)) * int(np.prod(block))
        c = totals.counts
        self.global_loads = c["global_loads"]
        self.global_stores = c["global_stores"]
        self.shared_loads = c["shared_loads"]
        self.shared_stores = c["shared_stores"]
        self.global_atomics = c["global_atomics"]
        self.shared_atomics = c["shared_atomics"]
        self.global_requests = totals.global_requests
        self.global_sectors = totals.global_sectors
        self.global_load_sectors = totals.global_load_sectors
        self.global_store_sectors = totals.global_store_sectors
        self.global_bytes = totals.global_bytes
        self.shared_requests = totals.shared_requests
        self.bank_conflicts = totals.bank_conflicts
        self.max_conflict_degree = totals.max_conflict_degree
        self.conflict_lines = {k: tuple(v) for k, v in sorted(totals.conflict_sites.items())}
        self.out_of_bounds = list(totals.out_of_bounds)
        self.out_of_bounds_count = totals.oob_count
        self.races = list(totals.races)
        self.race_count = totals.race_count
        self.barriers = totals.barriers
        pt = totals.per_thread
        self.per_thread_global_loads = pt["global_loads"]
        self.per_thread_global_stores = pt["global_stores"]
        self.per_thread_shared_loads = pt["shared_loads"]
        self.per_thread_shared_stores = pt["shared_stores"]
        self.per_array = {arrays[uid].name if uid in arrays else f"#{uid}": dict(v)
                          for uid, v in totals.per_array.items()}

    @property
    def coalescing_efficiency(self) -> float:
        """Useful bytes / bytes moved in 32-byte sectors (1.0 = perfectly coalesced; 0 with no traffic)."""
        return self.global_bytes / (32 * self.global_sectors) if self.global_sectors else 0.0

    def per_thread(self, counter: str = "global_loads") -> np.ndarray:
        """Counts as an array indexed [block z, y, x, thread z, y, x] (e.g. ``counter='shared_stores'``)."""
        table = getattr(self, f"per_thread_{counter}")
        out = np.zeros(tuple(reversed(self.grid)) + tuple(reversed(self.block)), dtype=np.int64)
        for (b, t), v in table.items():
            out[b[::-1] + t[::-1]] = v
        return out

    def as_dict(self) -> dict:
        """Headline numbers; ``out_of_bounds`` and ``races`` as lists of dicts."""
        return {
            "global_loads": self.global_loads,
            "global_stores": self.global_stores,
            "shared_loads": self.shared_loads,
            "shared_stores": self.shared_stores,
            "global_sectors": self.global_sectors,
            "bank_conflicts": self.bank_conflicts,
            "max_conflict_degree": self.max_conflict_degree,
            "out_of_bounds": [r.as_dict() for r in self.out_of_bounds],
            "races": [r.as_dict() for r in self.races],
            "global_atomics": self.global_atomics,
            "shared_atomics": self.shared_atomics,
            "global_requests": self.global_requests,
            "global_load_sectors": self.global_load_sectors,
            "global_store_sectors": self.global_store_sectors,
            "coalescing_efficiency": self.coalescing_efficiency,
            "shared_requests": self.shared_requests,
            "barriers": self.barriers,
            "threads": self.threads,
        }

    def _rows(self) -> list[tuple[str, str]]:
        n = max(self.threads, 1)
        rows = [
            ("launch", f"grid {self.grid} x block {self.block} = {self.threads} threads"),
            ("global loads", f"{self.global_loads} ({self.global_loads / n:.2f} per thread)"),
            ("global stores", f"{self.global_stores} ({self.global_stores / n:.2f} per thread)"),
            ("global sectors (32 B)", f"{self.global_sectors} in {self.global_requests} warp requests, "
                                      f"coalescing efficiency {100 * self.coalescing_efficiency:.0f}%"),
            ("shared loads", f"{self.shared_loads} ({self.shared_loads / n:.2f} per thread)"),
            ("shared stores", f"{self.shared_stores} ({self.shared_stores / n:.2f} per thread)"),
            ("bank conflicts", f"{self.bank_conflicts} extra wavefronts in {self.shared_requests} warp "
                               f"requests, max degree {self.max_conflict_degree}"),
        ]
        if self.global_atomics or self.shared_atomics:
            rows.append(("atomics", f"global {self.global_atomics}, shared {self.shared_atomics}"))
        rows.append(("barriers per thread", str(self.barriers)))
        rows.append(("out-of-bounds", str(self.out_of_bounds_count)))
        rows.append(("shared-memory races", str(self.race_count)))
        return rows

    def _problems(self, limit: int = 5) -> list[str]:
        lines = [f"conflict at line {k}: {v[0]} extra wavefronts, up to {v[1]}-way"
                 for k, v in self.conflict_lines.items()][:limit]
        lines += [str(r) for r in self.out_of_bounds[:limit]]
        lines += [str(r) for r in self.races[:limit]]
        return lines

    def table(self) -> str:
        """A plain-text table of the headline numbers, then the first few problems found."""
        rows = self._rows()
        width = max(len(k) for k, _ in rows)
        out = [f"trace of {self.kernel_name}"]
        out += [f"  {k:<{width}}  {v}" for k, v in rows]
        out += [f"  ! {p}" for p in self._problems()]
        return "\n".join(out)

    __str__ = table

    def __repr__(self):
        return f"<kernels.trace.Report of {self.kernel_name}: {self.as_dict()!r}>"

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                        f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in self._rows())
        probs = "".join(f"<li>{html.escape(p)}</li>" for p in self._problems())
        probs = f"<ul style='color:#b00'>{probs}</ul>" if probs else ""
        return (f"<div><b>trace of {html.escape(self.kernel_name)}</b>"
                f"<table>{cells}</table>{probs}</div>")
