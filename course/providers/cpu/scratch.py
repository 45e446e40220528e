"""Scratch a convolution route needs beside its output (Winograd's transformed tiles, a shared
im2col matrix, the padded copies the shifted GEMMs read), carved from a workspace.

A route lists its scratch as pieces, ``(dtype, shape)`` each. ``scratch_bytes`` is what the
provider declares (``workspace_bytes``), so the session plans that many bytes in its arena for
the step; at run time ``carve`` hands out consecutive views of the workspace the kernel was
given, each piece starting a cache line (64 bytes) after the last one's start. Without a
workspace, or with one too small for this call's shapes (a run with a larger symbolic dim than
planned), the pieces are allocated as before.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

LINE = 64  # bytes: pieces start on cache lines (the arena hands out 64-byte aligned workspaces)

Piece = tuple  # (dtype, shape)


def piece_bytes(piece: Piece) -> int:
    dtype, shape = piece
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def scratch_bytes(pieces: Sequence[Piece]) -> int:
    """Bytes of a workspace holding ``pieces``, each rounded up to a cache line."""
    return sum(-(-piece_bytes(p) // LINE) * LINE for p in pieces)


def allocate(dtype, shape) -> np.ndarray:
    """A new array for a piece the session did not plan (tests count the calls)."""
    return np.empty(shape, dtype=dtype)


def carve(workspace: Optional[np.ndarray], pieces: Sequence[Piece]) -> list[np.ndarray]:
    """Arrays for ``pieces``: views of ``workspace`` (a C-contiguous uint8 array) when it holds them
    all, else new arrays. Their contents are garbage either way."""
    if workspace is None or workspace.nbytes < scratch_bytes(pieces) or not workspace.flags.c_contiguous:
        return [allocate(dtype, shape) for dtype, shape in pieces]
    out, at = [], 0
    for piece in pieces:
        n = piece_bytes(piece)
        out.append(workspace[at:at + n].view(piece[0]).reshape(piece[1]))
        at += -(-n // LINE) * LINE
    return out
