"""Explicit op registry: ``@register("Conv", since=11)``; never filled by scanning globals()."""
from __future__ import annotations

from typing import Callable, Optional

from course.errors import UnsupportedOpError
from course.ops.base import Op

_REGISTRY: dict[tuple[str, str], list[type[Op]]] = {}


def register(op_type: str, since: int = 1, until: Optional[int] = None, domain: str = "") -> Callable:
    """Class decorator: register ``cls`` as the kernel of ``op_type`` for opsets [since, until]."""

    def deco(cls: type[Op]) -> type[Op]:
        cls.op_type, cls.since, cls.until, cls.domain = op_type, since, until, domain
        _REGISTRY.setdefault((domain, op_type), []).append(cls)
        _REGISTRY[(domain, op_type)].sort(key=lambda c: c.since)
        return cls

    return deco


def _norm(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def lookup(op_type: str, opset: int, domain: str = "") -> Op:
    """The Op registered for ``op_type`` whose range covers ``opset``; UnsupportedOpError if none."""
    versions = _REGISTRY.get((_norm(domain), op_type))
    if not versions:
        raise UnsupportedOpError(f"unsupported op {op_type!r}" + (f" in domain {domain!r}" if _norm(domain) else ""))
    for cls in reversed(versions):
        if cls.since <= opset and (cls.until is None or opset <= cls.until):
            return cls()
    ranges = ", ".join(f"{c.since}-{c.until or ''}" for c in versions)
    raise UnsupportedOpError(f"op {op_type!r} is not implemented for opset {opset} (implemented: {ranges})")


def supported_ops(domain: str = "") -> list[str]:
    return sorted(op for (d, op) in _REGISTRY if d == _norm(domain))


def add_schema(cls: type[Op]) -> None:
    """Register an op class that sets ``op_type``/``domain``/``since`` itself (a custom op a
    provider brings); nothing happens if it is registered already."""
    if not cls.op_type:
        raise ValueError(f"{cls.__name__} sets no op_type")
    versions = _REGISTRY.setdefault((_norm(cls.domain), cls.op_type), [])
    if cls not in versions:
        versions.append(cls)
        versions.sort(key=lambda c: c.since)
