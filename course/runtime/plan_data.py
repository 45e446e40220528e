"""Plain-data forms of a plan's parts: arrays, dtypes and node specs to JSON-able dicts and back."""
from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any, Mapping

import numpy as np

from course.providers.base import NodeSpec
from course.runtime.arena import ArenaLayout


def snapshot(arr):
    """A read-only copy: like onnxruntime, a session owns its weights, so later writes to the
    model's arrays do not reach it, and kernels may keep data derived from them (a rearranged
    Conv weight) for as long as the array lives."""
    if not isinstance(arr, np.ndarray):
        return arr
    arr = np.array(arr, copy=True)
    arr.flags.writeable = False
    return arr


def encode(v: Any) -> Any:
    """JSON-able form of an attribute value, a dtype, a shape or an array."""
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            return {"__array__": "object", "shape": list(v.shape), "items": [encode(x) for x in v.ravel()]}
        data = base64.b64encode(np.ascontiguousarray(v).tobytes()).decode("ascii")
        return {"__array__": v.dtype.str, "shape": list(v.shape), "data": data}
    if isinstance(v, np.dtype):
        return {"__dtype__": v.str}
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, bytes):
        return {"__bytes__": base64.b64encode(v).decode("ascii")}
    if isinstance(v, (list, tuple)):
        return {"__tuple__": [encode(x) for x in v]} if isinstance(v, tuple) else [encode(x) for x in v]
    if isinstance(v, dict):
        return {"__dict__": [[encode(k), encode(x)] for k, x in v.items()]}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(f"cannot store a {type(v).__name__} in a plan")


def decode(v: Any) -> Any:
    if isinstance(v, list):
        return [decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "__array__" in v:
        if v["__array__"] == "object":
            return np.array([decode(x) for x in v["items"]], dtype=object).reshape(v["shape"])
        raw = base64.b64decode(v["data"])
        return np.frombuffer(raw, dtype=np.dtype(v["__array__"])).reshape(v["shape"]).copy()
    if "__dtype__" in v:
        return np.dtype(v["__dtype__"])
    if "__bytes__" in v:
        return base64.b64decode(v["__bytes__"])
    if "__tuple__" in v:
        return tuple(decode(x) for x in v["__tuple__"])
    return {decode(k): decode(x) for k, x in v["__dict__"]}


def plan_to_dict(plan) -> dict:
    steps = [{"provider": st.provider, "spec": encode(asdict(st.spec)), "ins": list(st.ins),
              "outs": list(st.outs), "free": list(st.free)} for st in plan.steps]
    return {"steps": steps, "num_slots": plan.num_slots,
            "constants": [[s, encode(a)] for s, a in plan.constants.items()],
            "slot_of": dict(plan.slot_of), "value_names": list(plan.value_names),
            "arena": None if getattr(plan, "arena", None) is None else plan.arena.to_dict()}


def plan_from_dict(data: Mapping) -> tuple[list[dict], dict]:
    steps = []
    for st in data["steps"]:
        spec = decode(st["spec"])
        spec["inputs"] = [_type(t) for t in spec["inputs"]]
        spec["outputs"] = [_type(t) for t in spec["outputs"]]
        spec["constant_inputs"] = tuple(spec["constant_inputs"])
        steps.append({"provider": st["provider"], "spec": NodeSpec(**spec), "ins": tuple(st["ins"]),
                      "outs": tuple(st["outs"]), "free": tuple(st["free"])})
    rest = {"num_slots": data["num_slots"],
            "constants": {int(s): snapshot(decode(a)) for s, a in data["constants"]},
            "slot_of": dict(data["slot_of"]), "value_names": list(data["value_names"]),
            "arena": ArenaLayout.from_dict(data["arena"]) if data.get("arena") else None}  # older dicts: none
    return steps, rest


def _type(t):
    if t is None:
        return None
    dtype, shape = t
    return (np.dtype(dtype), None if shape is None else tuple(shape))
