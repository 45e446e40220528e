"""Build -> save -> load -> run: TensorRT's engine workflow over the course's session.

``build_engine(model, ...)`` does all the slow work once -- import, graph passes, partitioning
over the providers, planning, and tactic selection (tactics.py) at the profiles' ``opt`` shapes
-- and returns an ``Engine``. ``engine.save(path)`` writes it as one versioned, checksummed file
(engine_file.py); ``Engine.load(path)`` reads it back and only binds each step's kernel: no
pass, no partitioning, no timing. ``engine.run(output_names, feeds)`` is the session's ``run``
(the engine runs on an ``InferenceSession`` made from the plan, so feeds are checked the same
way), with each feed also checked against the engine's optimisation profiles (profiles.py).
"""
from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from course import __version__ as ENGINE_VERSION
from course import providers as _providers
from course.errors import EngineFileError
from course.ir.graph import Value
from course.ir.types import TensorType
from course.runtime import engine_file, plan_data
from course.runtime.arena import plan_arena
from course.runtime.plan import Plan
from course.runtime.profiles import Profile, check_feeds_in_profiles, check_profiles, dims_at, opt_feeds
from course.runtime.session import InferenceSession, NodeArg
from course.runtime.tactics import TacticChoice, TimingCache, describe_tactics, select_tactics


class Engine:
    """A built engine: a plan with its kernels bound, its I/O, profiles and chosen tactics.

    Made by ``build_engine`` or ``Engine.load``; runs as ``InferenceSession`` does."""

    def __init__(self, plan: Plan, inputs: Sequence[Value], outputs: Sequence[Value], providers: Sequence,
                 overridable: Sequence[Value] = (), profiles: Optional[Mapping[str, Profile]] = None,
                 tactics: Sequence[TacticChoice] = (), build_info: Optional[Mapping[str, Any]] = None):
        self._session = InferenceSession.from_plan(plan, inputs, outputs, providers, overridable,
                                                   arena=plan.arena is not None)
        self._io = {"inputs": list(inputs), "overridable": list(overridable), "outputs": list(outputs)}
        self.profiles: dict[str, Profile] = dict(profiles or {})
        self._tactics = list(tactics)
        self.build_info: dict[str, Any] = dict(build_info or {})

    # --- the session's API ----------------------------------------------------------------------
    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any],
            run_options: Any = None) -> list[np.ndarray]:
        """Compute the named outputs (all for None) from ``{input name: array}``; a feed outside
        the engine's profiles raises a ``ProfileError``."""
        if self.profiles and isinstance(input_feed, Mapping):
            check_feeds_in_profiles(self.profiles, input_feed)
        return self._session.run(output_names, input_feed, run_options)

    def get_inputs(self) -> list[NodeArg]:
        return self._session.get_inputs()

    def get_outputs(self) -> list[NodeArg]:
        return self._session.get_outputs()

    def get_overridable_initializers(self) -> list[NodeArg]:
        return self._session.get_overridable_initializers()

    def get_providers(self) -> list[str]:
        return self._session.get_providers()

    def assignment(self) -> dict[str, str]:
        return self._session.assignment()

    def describe_partition(self) -> str:
        return self._session.describe_partition()

    @property
    def plan(self) -> Plan:
        return self._session.plan

    @property
    def session(self) -> InferenceSession:
        """The session the engine runs on (made from its plan; it has no graph)."""
        return self._session

    # --- tactics --------------------------------------------------------------------------------
    def tactics_report(self) -> list[TacticChoice]:
        """Per tuned node: the heuristic's choice, the chosen tactic, each candidate's median ms."""
        return list(self._tactics)

    def describe_tactics(self) -> str:
        """``tactics_report`` as a readable table."""
        return describe_tactics(self._tactics)

    # --- files ----------------------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> int:
        """Write the engine to ``path`` (see engine_file.py); returns the file's size in bytes."""
        plan = self.plan
        arrays, constants = [], []
        for slot, arr in plan.constants.items():
            if isinstance(arr, np.ndarray) and arr.dtype != object:
                constants.append([slot, len(arrays)])
                arrays.append(arr)
            else:  # strings and other objects: inline, as Plan.to_dict writes them
                constants.append([slot, {"inline": plan_data.encode(arr)}])
        meta = {"plan": dataclasses.replace(plan, constants={}).to_dict(), "constants": constants,
                "io": {k: [_value_to_dict(v) for v in vs] for k, vs in self._io.items()},
                "profiles": {k: p.to_dict() for k, p in self.profiles.items()},
                "tactics": [t.to_dict() for t in self._tactics], "build": self.build_info}
        return engine_file.write(path, self._header(), meta, arrays)

    def _header(self) -> dict:
        needed = list(dict.fromkeys(st.provider for st in self.plan.steps))
        return {"engine_version": ENGINE_VERSION, "format": engine_file.FORMAT_VERSION,
                "providers": needed, "session_providers": self.get_providers(),
                "numpy": np.__version__, "python": platform.python_version(), "byteorder": sys.byteorder,
                "machine": platform.machine()}

    @classmethod
    def load(cls, path: Union[str, os.PathLike], providers: Optional[Sequence] = None) -> "Engine":
        """Read an engine file: checks (engine_file.read), then the providers its plan needs --
        those named in the file (``providers=None``) or the ones given, which must include every
        provider the plan uses (a custom op's ``KernelProvider`` object, say). Binds kernels only."""
        header, meta, arrays = engine_file.read(path)
        if header.get("engine_version") != ENGINE_VERSION:
            raise EngineFileError(f"engine file {os.fspath(path)!r} was built by engine version "
                                  f"{header.get('engine_version')}, this is {ENGINE_VERSION}: build it again",
                                  "version")
        objs = _load_providers(path, header, providers)
        plan = Plan.from_dict(meta["plan"])
        plan.constants = {slot: arrays[ref] if isinstance(ref, int) else plan_data.snapshot(
            plan_data.decode(ref["inline"])) for slot, ref in meta["constants"]}
        io = {k: [_value_from_dict(d) for d in vs] for k, vs in meta["io"].items()}
        try:
            return cls(plan, io["inputs"], io["outputs"], objs, io["overridable"],
                       {k: Profile.from_dict(p) for k, p in meta["profiles"].items()},
                       [TacticChoice.from_dict(t) for t in meta["tactics"]], meta.get("build"))
        except ValueError as e:  # a kernel the providers here cannot make (a tactic they lack)
            raise EngineFileError(f"engine file {os.fspath(path)!r} does not fit the providers here: {e}",
                                  "device") from None

    def __repr__(self) -> str:
        return (f"<Engine: {len(self.plan.steps)} steps on {self.get_providers()}, "
                f"{len(self._tactics)} tuned nodes, profiles for {list(self.profiles)}>")


def _value_to_dict(v: Value) -> dict:
    t = v.type
    return {"name": v.name, "dtype": np.dtype(t.dtype).str, "shape": None if t.shape is None else list(t.shape)}


def _value_from_dict(d: Mapping) -> Value:
    return Value(d["name"], TensorType(np.dtype(d["dtype"]), None if d["shape"] is None else tuple(d["shape"])))


def _load_providers(path, header: Mapping, given: Optional[Sequence]) -> list:
    """The provider objects to bind a loaded plan with; an EngineFileError ("device") when one
    the plan needs is missing here."""
    needed, name = list(header.get("providers", [])), os.fspath(path)
    objs = []
    for p in (header.get("session_providers", needed) if given is None else given):
        try:
            objs.append(_providers.make(p))
        except ValueError:
            if given is not None or p in needed:
                raise EngineFileError(f"engine file {name!r} was built for {p!r}, which this process lacks "
                                      f"(available: {_providers.available_providers()}); a provider of your own "
                                      "is passed as an object: Engine.load(path, providers=[...])", "device") from None
    have = {o.name for o in objs} | {"ReferenceExecutionProvider"}  # the session appends the reference
    missing = [p for p in needed if p not in have]
    if missing:
        raise EngineFileError(f"engine file {name!r} was built for {missing}, which the providers given lack "
                              f"({sorted(have)}); pass them to Engine.load(path, providers=[...])", "device")
    return objs


def build_engine(model: Any, providers: Optional[Sequence] = None,
                 profiles: Optional[Mapping[str, Mapping]] = None, tune: bool = True,
                 timing_cache: Union[None, str, os.PathLike, TimingCache] = None,
                 graph_optimization_level: str = "all", passes: Optional[Sequence] = None,
                 custom_kernels: Optional[Mapping] = None, seed: int = 0, arena: bool = True,
                 scheduler: Optional[Callable] = None, partitioner: Optional[Callable] = None,
                 planner: Union[None, str, Callable] = None) -> Engine:
    """Import, optimise, partition and plan ``model`` once (``InferenceSession``'s arguments
    mean what they mean there), then choose each tunable node's tactic by timing (``tune``) at
    the ``profiles``' opt shapes, reusing and extending ``timing_cache`` (a JSON file's path or a
    ``TimingCache``), and plan the arena (``arena``) for the profiles' max shapes.
    ``profiles``: ``{input: {"min": shape, "opt": shape, "max": shape}}``; a model with dynamic
    dims needs one per dynamic input to be tuned. ``scheduler``, ``partitioner`` and ``planner``:
    parts of your own, as in ``InferenceSession`` (course/runtime/hooks.py); what they decided
    is saved with the engine, so a loaded engine needs none of them."""
    t0 = time.perf_counter()
    session = InferenceSession(model, providers, custom_kernels, graph_optimization_level, passes, arena=False,
                               scheduler=scheduler, partitioner=partitioner)
    graph = session.graph
    inputs = _detached(v for v in graph.inputs if not graph.is_overridable(v))
    overridable = _detached(v for v in graph.inputs if graph.is_overridable(v))
    profs = check_profiles(profiles, inputs)
    objs = session._provider_objs  # the resolved providers (custom kernels and fallback included)
    choices: list[TacticChoice] = []
    if tune:
        cache = timing_cache if isinstance(timing_cache, TimingCache) else TimingCache(timing_cache)
        choices = select_tactics(session.plan, {p.name: p for p in objs}, opt_feeds(profs, inputs, seed), cache)
        cache.save()
    plan = session.plan
    if arena:  # after the tactics, which choose the kernels; planned for the largest shapes
        by_name = {p.name: p for p in objs}
        plan.arena = plan_arena(plan, dims_at(profs, inputs, "max"), planner or "best",
                                into=[by_name[st.provider].kernel_into(st.spec) for st in plan.steps],
                                providers=by_name)  # the providers' scratch (workspaces) planned too
    info = {"build_s": time.perf_counter() - t0, "graph_optimization_level": graph_optimization_level,
            "tuned": tune, "timed": sum(c.source == "timed" for c in choices),
            "cached": sum(c.source == "cache" for c in choices), "arena": arena}
    return Engine(plan, inputs, _detached(graph.outputs), objs, overridable, profs, choices, info)


def _detached(values) -> list[Value]:
    """Copies of graph values with only a name and a type: an engine keeps no link into the graph."""
    return [Value(v.name, v.type) for v in values]
