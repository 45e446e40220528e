"""Tactic selection: time every kernel a provider could run a node with, keep the fastest.

TensorRT's builder times each layer's candidate kernels ("tactics") on the layer's real shapes
and keeps the fastest; so does an engine build here, inside the model's own runs. The plan runs
on seeded inputs at the profiles' ``opt`` shapes. At its first call, a node whose provider
offers a choice (``provider.tactics(spec)``: a convolution's direct, im2col, per-tap GEMM,
Winograd, depthwise routes ...) runs every candidate once on its real inputs, and a candidate
is kept only if it gives the heuristic kernel's output (within float32 reordering error). The
plan then runs again and again, the kept candidates of each node taking turns, one timed call
per run, until each has SAMPLES timings. Timed inside whole runs rather than in a loop over one
node, a candidate finds the caches as a real run leaves them: a loop would keep its weights in
cache and favour the tactics with the biggest ones. The median decides, and a candidate
replaces the heuristic's choice only when faster by ``MARGIN``, so noise alone moves nothing.
The choice is written into the plan as ``spec.marks["tactic"]``.

A ``TimingCache`` (a JSON file) keeps each decision under a key of provider, op, attributes,
input shapes/strides/dtypes and a machine key, so a later build of the same layers times
nothing; nodes of one build with the same key share their timings.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np

from course.errors import EngineFileError
from course.providers.base import ExecutionProvider, NodeSpec
from course.runtime import plan_data
from course.runtime.execute import execute
from course.runtime.plan import Plan, bind

SAMPLES = 7  # timed calls per candidate (one per run; the median counts), after one untimed round
MAX_RUNS = 100  # tuning runs of the plan at most
MARGIN = 0.05  # a candidate replaces the heuristic's choice only when this much faster
REL_TOL = 1e-3  # a candidate's output against the heuristic's: max|a - b| / max|b|
CACHE_VERSION = 1


@dataclass
class TacticChoice:
    """One node's tactic: the heuristic's choice, the chosen one and the median ms of each
    candidate timed (``inf`` for one that failed or gave another output)."""

    node: str
    op_type: str
    provider: str
    heuristic: str
    chosen: str
    times_ms: dict[str, float] = field(default_factory=dict)
    source: str = "timed"  # "timed" at this build, or "cache"
    shape: list = field(default_factory=list)  # the node's first input's shape when timed

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "times_ms": {k: _finite(v) for k, v in self.times_ms.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> "TacticChoice":
        times = {k: float("inf") if v is None else float(v) for k, v in data["times_ms"].items()}
        return cls(**{**data, "times_ms": times})


def _finite(v: float) -> Optional[float]:
    return None if v == float("inf") else v  # JSON has no inf


def time_call(kernel: Callable, args: tuple) -> tuple[Any, float]:
    """``(kernel(*args), seconds it took)``: every timing of a build goes through here."""
    t0 = time.perf_counter()
    out = kernel(*args)
    return out, time.perf_counter() - t0


def machine_key() -> str:
    """What a timing depends on besides the layer: the CPU, the threads a run may use, numpy."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    threads = os.environ.get("COURSE_NUM_THREADS", "")
    return f"{model} | {cpus} cpus | threads={threads or 'auto'} | numpy {np.__version__}"


def cache_key(provider: str, spec: NodeSpec, args: tuple) -> str:
    """The timing cache's key of one node called with ``args``: everything its timing depends on."""
    def arg(a):
        if not isinstance(a, np.ndarray):
            return None
        return [a.dtype.str, list(a.shape), [s // max(a.itemsize, 1) for s in a.strides]]
    marks = {k: v for k, v in spec.marks.items() if k != "tactic"}
    return json.dumps([machine_key(), provider, spec.domain, spec.op_type, plan_data.encode(spec.attrs),
                       [arg(a) for a in args], plan_data.encode(marks)], sort_keys=True)


class TimingCache:
    """Measurements by ``cache_key``, kept in a JSON file at ``path`` (or in memory for None)."""

    def __init__(self, path: Optional[os.PathLike] = None):
        self.path = None if path is None else os.fspath(path)
        self.entries: dict[str, dict] = {}
        self.modified = False
        if self.path is not None and os.path.exists(self.path):
            self.entries = _read_cache(self.path)

    def get(self, key: str) -> Optional[dict]:
        return self.entries.get(key)

    def put(self, key: str, chosen: str, times_ms: Mapping[str, float]) -> None:
        self.entries[key] = {"tactic": chosen, "times_ms": {k: _finite(v) for k, v in times_ms.items()}}
        self.modified = True

    def save(self) -> None:
        """Write the file (atomically: a reader never sees half of it) if anything was added."""
        if self.path is None or not self.modified:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({"version": CACHE_VERSION, "entries": self.entries}, f, indent=0, sort_keys=True)
        os.replace(tmp, self.path)
        self.modified = False

    def __len__(self) -> int:
        return len(self.entries)


def _read_cache(path: str) -> dict[str, dict]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise EngineFileError(f"timing cache {path!r} cannot be read: {e}", "corrupted") from None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
        raise EngineFileError(f"timing cache {path!r} is not a version-{CACHE_VERSION} timing cache", "version")
    return data["entries"]


def select_tactics(plan: Plan, providers: Mapping[str, ExecutionProvider], feeds: Mapping[str, np.ndarray],
                   cache: Optional[TimingCache] = None) -> list[TacticChoice]:
    """Run ``plan`` on ``feeds`` until every node whose provider offers several tactics has
    chosen one (see the module); marks each such step's spec and returns one row per node."""
    for st in plan.steps:
        st.spec.marks.pop("tactic", None)  # a plan tuned before: its heuristic kernels are timed again
    bound = bind(plan, providers)
    pools: dict[str, dict[str, list[float]]] = {}  # cache key -> tactic -> seconds, shared by equal nodes
    probes = []
    for i, st in enumerate(plan.steps):
        provider = providers[st.provider]
        if callable(getattr(provider, "tactics", None)):
            probes.append(_Probe(st.spec, provider, bound.kernels[i], cache, pools, offset=i))
            bound.kernels[i] = probes[-1]
    runs = 0
    while runs == 0 or (runs < MAX_RUNS and any(p.wants_more() for p in probes)):
        slots: list[Any] = [None] * plan.num_slots
        for s, arr in plan.constants.items():
            slots[s] = arr
        for name, arr in feeds.items():
            slots[plan.slot_of[name]] = arr
        execute(bound, slots)
        runs += 1
    choices = []
    for p in probes:
        row = p.finish()
        if row is not None:
            p.spec.marks["tactic"] = row.chosen
            choices.append(row)
    return choices


class _Probe:
    """Stands in for a node's kernel in the tuning runs. First call: the candidates, the cache,
    each candidate's output checked against the heuristic kernel's (which warms it up too).
    Later calls: the kept candidates take turns, the first round untimed (a replayable kernel
    records its job then), every other call timed."""

    def __init__(self, spec: NodeSpec, provider: ExecutionProvider, heuristic_kernel: Callable,
                 cache: Optional[TimingCache], pools: dict, offset: int = 0):
        self.spec, self.provider, self.kernel, self.cache, self.pools = spec, provider, heuristic_kernel, cache, pools
        self.row: Optional[TacticChoice] = None
        self.key = ""
        self.kernels: dict[str, Callable] = {}  # the candidates that give the right output
        self.samples: dict[str, list[float]] = {}
        self.calls, self.offset = 0, offset  # turns start at another candidate on each node

    def __call__(self, *args):
        self.calls += 1
        if self.calls == 1:
            return self._start(args)
        if len(self.kernels) < 2:
            return self.kernel(*args)
        names = list(self.kernels)
        turn = self.calls - 2
        tactic = names[(turn + self.offset) % len(names)]
        out, seconds = time_call(self.kernels[tactic], args)
        if turn >= len(names):
            self.samples[tactic].append(seconds)
        return out

    def _start(self, args: tuple):
        out = self.kernel(*args)
        shapes = [None if a is None else (a.dtype, tuple(a.shape)) for a in args]
        candidates = self.provider.tactics(dataclasses.replace(self.spec, inputs=shapes))
        if len(candidates) < 2:
            return out
        self.key = cache_key(self.provider.name, self.spec, args)
        self.row = TacticChoice(self.spec.name, self.spec.op_type, self.provider.name, candidates[0],
                                candidates[0], {t: float("inf") for t in candidates},
                                shape=list(getattr(args[0], "shape", ())))
        hit = self.cache.get(self.key) if self.cache is not None else None
        if hit is not None and hit["tactic"] in candidates:
            self.row.chosen, self.row.source = hit["tactic"], "cache"
            self.row.times_ms = {k: float("inf") if v is None else v for k, v in hit["times_ms"].items()}
            return out
        for tactic in candidates:
            kernel = self.provider.kernel(dataclasses.replace(self.spec, marks={**self.spec.marks, "tactic": tactic}))
            try:
                if _same(kernel(*args), out):
                    self.kernels[tactic] = kernel
            except Exception:  # a candidate that cannot run this node is simply not chosen
                pass
        self.samples = self.pools.setdefault(self.key, {t: [] for t in self.kernels})
        return out

    def wants_more(self) -> bool:
        return len(self.kernels) > 1 and min(len(self.samples[t]) for t in self.kernels) < SAMPLES

    def finish(self) -> Optional[TacticChoice]:
        """This node's row, its choice made (and put in the cache) from the timings."""
        row = self.row
        if row is None or row.source == "cache":
            return row
        for tactic, times in self.samples.items():
            if times:
                row.times_ms[tactic] = 1e3 * statistics.median(times)
        if len(self.kernels) == 1:
            row.chosen = next(iter(self.kernels))
        else:
            row.chosen = pick(row.times_ms, row.heuristic)
        if self.cache is not None:
            self.cache.put(self.key, row.chosen, row.times_ms)
        return row


def pick(times_ms: Mapping[str, float], heuristic: str) -> str:
    """The fastest tactic, unless it is within MARGIN of the heuristic's choice (noise)."""
    best = min(times_ms, key=lambda t: times_ms[t])
    base = times_ms.get(heuristic, float("inf"))
    return best if times_ms[best] < (1 - MARGIN) * base else heuristic


def _same(got, want) -> bool:
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for a, b in zip(got, want):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return False
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        if b.size and float(np.max(np.abs(a - b))) > REL_TOL * max(scale, 1e-30):
            return False
    return len(got) == len(want)


def describe_tactics(rows: list[TacticChoice]) -> str:
    """A readable table: node, op, heuristic, chosen, and each candidate's median ms."""
    header = ("node", "op", "heuristic", "chosen", "ms per tactic")
    body = [(r.node, r.op_type, r.heuristic, r.chosen + (" (cache)" if r.source == "cache" else ""),
             "  ".join(f"{t} {v:.3f}" if v != float("inf") else f"{t} -" for t, v in r.times_ms.items()))
            for r in rows]
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(5)]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])
