"""Memory formats of 4-d activations: NCHW (channels planar), NHWC (channels interleaved) and
blocked NCHWc (channels in blocks of ``cb``, the block innermost: what SIMD CPU kernels like).

The *logical* index is always (n, c, h, w); a format only changes where that element lives.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from course.errors import ShapeError
from course.tensor.view import TensorView

NCHW_TO_NHWC = (0, 2, 3, 1)  # perm: axis k of NHWC is axis perm[k] of NCHW
NHWC_TO_NCHW = (0, 3, 1, 2)


def _dims(shape: Sequence[int]) -> Tuple[int, int, int, int]:
    if len(shape) != 4:
        raise ShapeError(f"expected a 4-d (N, C, H, W) shape, got {tuple(shape)}")
    return tuple(int(d) for d in shape)  # type: ignore[return-value]


def nchw_offset(n: int, c: int, h: int, w: int, shape_nchw: Sequence[int]) -> int:
    """Position of logical element (n, c, h, w) in an NCHW buffer."""
    _, C, H, W = _dims(shape_nchw)
    return ((n * C + c) * H + h) * W + w


def nhwc_offset(n: int, c: int, h: int, w: int, shape_nchw: Sequence[int]) -> int:
    """Position of logical element (n, c, h, w) in an NHWC buffer (shape given as N, C, H, W)."""
    _, C, H, W = _dims(shape_nchw)
    return ((n * H + h) * W + w) * C + c


def nhwc_strides(shape_nchw: Sequence[int]) -> Tuple[int, int, int, int]:
    """Strides, in (n, c, h, w) order, of an NHWC buffer: the NCHW view of NHWC memory."""
    _, C, H, W = _dims(shape_nchw)
    return (H * W * C, 1, W * C, C)


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """Copy an NCHW array into NHWC order (a permuted view made contiguous)."""
    _dims(x.shape)
    return TensorView.from_numpy(x).permute(*NCHW_TO_NHWC).numpy()


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """Copy an NHWC array into NCHW order."""
    _dims(x.shape)
    return TensorView.from_numpy(x).permute(*NHWC_TO_NCHW).numpy()


def nchw_to_nchwc(x: np.ndarray, cb: int) -> np.ndarray:
    """NCHW → (N, ceil(C/cb), H, W, cb); channels past C are zero padding."""
    N, C, H, W = _dims(x.shape)
    if cb <= 0:
        raise ShapeError(f"channel block must be positive, got {cb}")
    blocks = -(-C // cb)
    padded = np.zeros((N, blocks * cb, H, W), dtype=x.dtype)
    padded[:, :C] = x
    return np.ascontiguousarray(padded.reshape(N, blocks, cb, H, W).transpose(0, 1, 3, 4, 2))


def nchwc_to_nchw(x: np.ndarray, channels: int) -> np.ndarray:
    """Inverse of :func:`nchw_to_nchwc`, dropping the padding channels."""
    if x.ndim != 5:
        raise ShapeError(f"expected a 5-d NCHWc array, got shape {x.shape}")
    N, blocks, H, W, cb = x.shape
    if not (blocks - 1) * cb < channels <= blocks * cb:
        raise ShapeError(f"{channels} channels do not fit {blocks} blocks of {cb}")
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3).reshape(N, blocks * cb, H, W)[:, :channels])
