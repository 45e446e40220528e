"""Rearranged copies of weights (W.T, tap-major, Winograd's transform), made once per weight.

A session's weights are read-only snapshots, so a copy made from one stays right as long as the
array lives: it is kept, keyed by the array's id and dropped with it (a weakref). A writable
weight could change in place, so its copy is made afresh on every call.
"""
from __future__ import annotations

import weakref

import numpy as np

_DERIVED: dict[tuple[int, str], tuple] = {}


def derived(w: np.ndarray, kind: str, make) -> np.ndarray:
    """``make(w)``, kept while a read-only ``w`` lives."""
    key = (id(w), kind)
    hit = _DERIVED.get(key)
    if hit is not None and hit[0]() is w:
        return hit[1]
    out = make(w)
    if not w.flags.writeable:
        # the dict bound here: at interpreter exit the module's globals may be gone before W
        _DERIVED[key] = (weakref.ref(w, lambda _, key=key, cache=_DERIVED: cache.pop(key, None)), out)
    return out


def tap_major(w: np.ndarray) -> np.ndarray:
    """W (M, C, KH, KW) as (KH*KW, M, C), each tap's matrix contiguous (a depthwise W (C, 1, 3, 3)
    gives (9, C, 1): tap t's weight for every channel)."""
    return derived(w, "tap_major",
                   lambda w: np.ascontiguousarray(w.reshape(w.shape[0], w.shape[1], -1).transpose(2, 0, 1)))


def channel_major(w: np.ndarray) -> np.ndarray:
    """A 1x1 W (M, C, 1, 1) as W.T (C, M), contiguous: the B operand of a channels-last GEMM."""
    return derived(w, "channel_major", lambda w: np.ascontiguousarray(w.reshape(w.shape[0], -1).T))


def rows(w: np.ndarray) -> np.ndarray:
    """W (M, C, KH, KW) as (M, C*KH*KW), contiguous: the A operand of an im2col GEMM."""
    return derived(w, "rows", lambda w: np.ascontiguousarray(w.reshape(w.shape[0], -1)))


WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def winograd(w: np.ndarray) -> np.ndarray:
    """U (16, M, C) float32 for Winograd F(2x2, 3x3): U[4i + j] = (G g G^T)[i, j] of each 3x3
    kernel g of w (M, C, 3, 3), worked out in float64."""
    def make(w):
        u = np.einsum("ai,mcij,bj->abmc", WINOGRAD_G, w.astype(np.float64), WINOGRAD_G)
        return np.ascontiguousarray(u.reshape(16, w.shape[0], w.shape[1]), dtype=np.float32)
    return derived(w, "winograd", make)
