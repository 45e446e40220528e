"""The engine file: a versioned, checksummed container for a built engine.

Layout (little-endian)::

    magic        8 bytes   b"CRSENGN\\0"
    version      u32       FORMAT_VERSION
    header_len   u32       bytes of the header
    payload_len  u64       bytes of the payload
    sha256       32 bytes  of header + payload
    header       JSON: engine, numpy and python versions, providers, machine (readable with
                 `head`), padded with spaces so that the payload starts at a multiple of ALIGN
    payload      u64 length of a JSON "meta" part (plan, I/O, profiles, tactics), the meta
                 JSON, zero padding to ALIGN, then the weights' raw bytes, each array starting
                 at a multiple of ALIGN

Weights travel as raw bytes, not base64 in JSON, so loading one is a view into the file's bytes
(no decode, no copy) and the arrays come back read-only, as a session's own weights are. Every
check raises an ``EngineFileError`` whose ``reason`` and message say what is wrong.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Sequence

import numpy as np

from course.errors import EngineFileError

MAGIC = b"CRSENGN\0"
FORMAT_VERSION = 1
PREFIX = struct.Struct("<8sIIQ32s")  # magic, version, header_len, payload_len, sha256
ALIGN = 64
META_LEN = struct.Struct("<Q")


def pack_arrays(arrays: Sequence[np.ndarray]) -> tuple[list[dict], list[bytes]]:
    """(a description per array: dtype, shape, offset into the weights; the byte chunks, padded)."""
    refs, chunks, offset = [], [], 0
    for a in arrays:
        raw = np.ascontiguousarray(a).tobytes()
        refs.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": len(raw)})
        pad = -len(raw) % ALIGN
        chunks.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    return refs, chunks


def write(path: os.PathLike, header: dict, meta: dict, arrays: Sequence[np.ndarray]) -> int:
    """Write an engine file; ``meta["arrays"]`` is filled in. Returns the file's size in bytes."""
    refs, chunks = pack_arrays(arrays)
    meta_raw = json.dumps({**meta, "arrays": refs}, separators=(",", ":")).encode()
    head = META_LEN.pack(len(meta_raw)) + meta_raw
    head += b"\0" * (-len(head) % ALIGN)
    header_raw = json.dumps(header, indent=1, sort_keys=True).encode() + b"\n"
    header_raw += b" " * (-(PREFIX.size + len(header_raw)) % ALIGN)  # the payload starts aligned
    digest = hashlib.sha256(header_raw)
    payload_len = len(head) + sum(len(c) for c in chunks)
    for part in (head, *chunks):
        digest.update(part)
    tmp = f"{os.fspath(path)}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_raw), payload_len, digest.digest()))
        f.write(header_raw)
        f.write(head)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)  # a reader never sees half a file
    return PREFIX.size + len(header_raw) + payload_len


def read(path: os.PathLike) -> tuple[dict, dict, list[np.ndarray]]:
    """(header, meta, arrays) of a verified engine file; arrays are read-only views of its bytes."""
    with open(path, "rb") as f:
        data = f.read()
    header_len, payload_len = _check_prefix(path, data)
    header_raw = memoryview(data)[PREFIX.size:PREFIX.size + header_len]
    try:
        header = json.loads(bytes(header_raw))
    except ValueError:
        raise EngineFileError(f"engine file {os.fspath(path)!r} is corrupted: its header is not JSON",
                              "corrupted") from None
    start = PREFIX.size + header_len
    (meta_len,) = META_LEN.unpack_from(data, start)
    meta = json.loads(data[start + META_LEN.size:start + META_LEN.size + meta_len])
    base = start + _padded(META_LEN.size + meta_len)
    arrays = [np.frombuffer(data, dtype=np.dtype(r["dtype"]), count=_count(r), offset=base + r["offset"])
              .reshape(r["shape"]) for r in meta.pop("arrays")]
    return header, meta, arrays


def _padded(n: int) -> int:
    return n + (-n % ALIGN)


def _count(ref: dict) -> int:
    return int(np.prod(ref["shape"], dtype=np.int64))


def _check_prefix(path, data: bytes) -> tuple[int, int]:
    """(header_len, payload_len) after the checks that need no parsing: size, magic, format
    version, length, checksum."""
    name = os.fspath(path)
    if len(data) < PREFIX.size:
        if data and not MAGIC.startswith(data[:len(MAGIC)]):
            raise EngineFileError(f"{name!r} is not an engine file (it starts {data[:8]!r}, not {MAGIC!r})", "magic")
        raise EngineFileError(f"engine file {name!r} is truncated: {len(data)} bytes, shorter than the "
                              f"{PREFIX.size}-byte prefix", "truncated")
    magic, version, header_len, payload_len, digest = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise EngineFileError(f"{name!r} is not an engine file (it starts {magic!r}, not {MAGIC!r})", "magic")
    if version != FORMAT_VERSION:
        raise EngineFileError(f"engine file {name!r} has format version {version}; this engine reads version "
                              f"{FORMAT_VERSION} only: build the engine again", "version")
    want = PREFIX.size + header_len + payload_len
    if len(data) < want:
        raise EngineFileError(f"engine file {name!r} is truncated: {len(data)} bytes of {want}", "truncated")
    if len(data) > want:
        raise EngineFileError(f"engine file {name!r} is corrupted: {len(data) - want} bytes after its end",
                              "corrupted")
    if hashlib.sha256(memoryview(data)[PREFIX.size:]).digest() != digest:
        raise EngineFileError(f"engine file {name!r} is corrupted: its SHA-256 checksum does not match",
                              "checksum")
    return header_len, payload_len


def describe(header: dict) -> str:
    """One line about what built a file (for messages)."""
    return (f"engine {header.get('engine_version')}, providers {header.get('providers')}, "
            f"numpy {header.get('numpy')}, python {header.get('python')}")


__all__ = ["MAGIC", "FORMAT_VERSION", "write", "read", "describe"]
