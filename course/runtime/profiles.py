"""Optimisation profiles: the shapes an engine is built for, TensorRT's min / opt / max.

``{"input": {"min": (1, 3, 32, 32), "opt": (4, 3, 32, 32), "max": (8, 3, 32, 32)}}`` says that
the input's symbolic dims (the batch here) take any value from min to max; the tactics are timed
at ``opt`` and the arena is planned for ``max``. A dim the model fixes must be that number in all
three shapes, and a symbol two inputs share must have one range. At run time a feed inside the
profile runs and one outside raises a ``ProfileError`` naming the input, the dim and the range.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from course.errors import ProfileError
from course.ir.graph import Value

KEYS = ("min", "opt", "max")


@dataclass(frozen=True)
class Profile:
    """The range of one input's shape: ``min <= opt <= max`` dim by dim."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def to_dict(self) -> dict:
        return {k: list(getattr(self, k)) for k in KEYS}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Profile":
        return cls(*(tuple(int(d) for d in data[k]) for k in KEYS))


def check_profiles(profiles: Optional[Mapping[str, Mapping]], inputs: Sequence[Value]) -> dict[str, Profile]:
    """Validated ``{input name: Profile}`` for the model's feedable ``inputs``."""
    by_name = {v.name: v for v in inputs}
    out: dict[str, Profile] = {}
    for name, given in (profiles or {}).items():
        if name not in by_name:
            raise ProfileError(f"profile for {name!r}, which is not an input of the model "
                               f"(inputs: {list(by_name)})")
        out[name] = _profile_of(by_name[name], given)
    _check_shared_symbols(out, by_name)
    return out


def _profile_of(v: Value, given: Any) -> Profile:
    if not isinstance(given, Mapping) or sorted(given) != sorted(KEYS):
        raise ProfileError(f"profile for input {v.name!r} must be a dict with keys 'min', 'opt' and 'max', "
                           f"got {given!r}")
    try:
        prof = Profile(*(tuple(int(d) for d in given[k]) for k in KEYS))
    except (TypeError, ValueError):
        raise ProfileError(f"profile for input {v.name!r}: min, opt and max must be shapes (tuples of ints), "
                           f"got {dict(given)}") from None
    shape = v.type.shape
    for k in KEYS:
        if shape is not None and len(getattr(prof, k)) != len(shape):
            raise ProfileError(f"profile for input {v.name!r}: {k} {getattr(prof, k)} has rank "
                               f"{len(getattr(prof, k))}, the input has rank {len(shape)} ({v.type})")
    for axis, (lo, opt, hi) in enumerate(zip(prof.min, prof.opt, prof.max)):
        if not 0 <= lo <= opt <= hi:
            raise ProfileError(f"profile for input {v.name!r} dim {axis}: needs 0 <= min <= opt <= max, "
                               f"got {lo}, {opt}, {hi}")
        fixed = shape[axis] if shape is not None else None
        if isinstance(fixed, int) and not lo == opt == hi == fixed:
            raise ProfileError(f"profile for input {v.name!r} dim {axis}: the model fixes it to {fixed}, "
                               f"the profile gives {lo}..{hi} (make the dim symbolic in the model to vary it)")
    return prof


def _check_shared_symbols(profiles: Mapping[str, Profile], by_name: Mapping[str, Value]) -> None:
    """A symbol (``"N"``) that several profiled inputs share must get one range from all."""
    seen: dict[str, tuple[tuple[int, int, int], str]] = {}
    for name, prof in profiles.items():
        for axis, dim in enumerate(by_name[name].type.shape or ()):
            if isinstance(dim, str):
                rng = (prof.min[axis], prof.opt[axis], prof.max[axis])
                first = seen.setdefault(dim, (rng, name))
                if first[0] != rng:
                    raise ProfileError(f"inputs {first[1]!r} and {name!r} share dim {dim!r} but their profiles "
                                       f"give it {first[0]} and {rng} (min, opt, max)")


def dims_at(profiles: Mapping[str, Profile], inputs: Sequence[Value], key: str) -> dict[str, int]:
    """``{symbol: size}`` at a profile's ``key`` ("opt" or "max") over the profiled inputs."""
    out: dict[str, int] = {}
    for v in inputs:
        if v.name in profiles and v.type.shape is not None:
            for dim, size in zip(v.type.shape, getattr(profiles[v.name], key)):
                if isinstance(dim, str):
                    out[dim] = size
    return out


def opt_feeds(profiles: Mapping[str, Profile], inputs: Sequence[Value], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random feeds at the profiles' ``opt`` shapes (static inputs at their own), for
    timing tactics on the shapes the engine will mostly see."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in inputs:
        shape = profiles[v.name].opt if v.name in profiles else v.type.shape
        if shape is None or not all(isinstance(d, int) for d in shape):
            raise ProfileError(f"input {v.name!r} has dynamic dims ({v.type}): give build_engine a profile "
                               f"for it, profiles={{{v.name!r}: {{'min': ..., 'opt': ..., 'max': ...}}}}, "
                               "or build with tune=False")
        dtype = v.type.dtype
        if dtype.kind == "f":
            feeds[v.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[v.name] = np.zeros(shape, dtype=dtype)  # indices and flags: zeros are always valid
    return feeds


def check_feeds_in_profiles(profiles: Mapping[str, Profile], feeds: Mapping[str, Any]) -> None:
    """Raise a ProfileError for a feed with a dim outside its profile's [min, max] (feeds of
    another rank or type are left to the session's own checks)."""
    for name, prof in profiles.items():
        shape = getattr(feeds.get(name), "shape", None)
        if shape is None or len(shape) != len(prof.min):
            continue
        for axis, (got, lo, hi) in enumerate(zip(shape, prof.min, prof.max)):
            if not lo <= got <= hi:
                raise ProfileError(f"input {name!r} dim {axis} is {got}, outside the engine's profile "
                                   f"[{lo}, {hi}] (min {prof.min}, max {prof.max}); build the engine with "
                                   "a profile that covers it")
