"""Shape, strides and offset: how an n-d index becomes a position in a flat buffer.

All strides here count *elements*, not bytes (numpy's ``ndarray.strides`` counts bytes; divide
by ``itemsize`` to compare). Row-major ("C order") means the last axis moves fastest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

from course.errors import ShapeError

Shape = Tuple[int, ...]
Strides = Tuple[int, ...]


def _check_shape(shape: Sequence[int]) -> Shape:
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ShapeError(f"shape {shape} has a negative dim")
    return shape


def numel(shape: Sequence[int]) -> int:
    """Number of elements of a tensor of this shape (1 for a scalar, shape ``()``)."""
    n = 1
    for d in shape:
        n *= int(d)
    return n


def contiguous_strides(shape: Sequence[int]) -> Strides:
    """Row-major strides in elements: ``strides[k] = prod(shape[k+1:])``."""
    shape = _check_shape(shape)
    strides = [0] * len(shape)
    step = 1
    for k in range(len(shape) - 1, -1, -1):
        strides[k] = step
        step *= max(shape[k], 1)  # a zero dim would make every stride 0; keep them distinct
    return tuple(strides)


def column_major_strides(shape: Sequence[int]) -> Strides:
    """Fortran-order strides in elements: the *first* axis moves fastest."""
    shape = _check_shape(shape)
    strides, step = [], 1
    for d in shape:
        strides.append(step)
        step *= max(d, 1)
    return tuple(strides)


def index_to_offset(index: Sequence[int], strides: Sequence[int], offset: int = 0) -> int:
    """Buffer position of ``index``: ``offset + sum(i_k * stride_k)``."""
    if len(index) != len(strides):
        raise ShapeError(f"index {tuple(index)} has {len(index)} dims, strides have {len(strides)}")
    return int(offset) + sum(int(i) * int(s) for i, s in zip(index, strides))


def offset_to_index(offset: int, shape: Sequence[int]) -> Shape:
    """Inverse of :func:`index_to_offset` for a *contiguous row-major* tensor (numpy's unravel_index)."""
    shape = _check_shape(shape)
    total = numel(shape)
    if not 0 <= offset < max(total, 1) or total == 0:
        raise ShapeError(f"offset {offset} is outside a tensor of shape {shape} ({total} elements)")
    index = [0] * len(shape)
    for k in range(len(shape) - 1, -1, -1):
        offset, index[k] = divmod(offset, shape[k])
    return tuple(index)


def is_contiguous(shape: Sequence[int], strides: Sequence[int]) -> bool:
    """True when the layout is row-major with no gaps (dims of size 1 may have any stride)."""
    expected = 1
    for d, s in zip(reversed(tuple(shape)), reversed(tuple(strides))):
        if d == 0:
            return True
        if d != 1 and s != expected:
            return False
        expected *= d
    return True


@dataclass(frozen=True)
class Layout:
    """Where the elements of an n-d tensor live in a flat buffer: shape, strides, offset."""

    shape: Shape
    strides: Strides
    offset: int = 0

    def __post_init__(self):
        object.__setattr__(self, "shape", _check_shape(self.shape))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if len(self.shape) != len(self.strides):
            raise ShapeError(f"shape {self.shape} and strides {self.strides} have different ranks")

    @classmethod
    def contiguous(cls, shape: Sequence[int], offset: int = 0) -> "Layout":
        return cls(tuple(shape), contiguous_strides(shape), offset)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return numel(self.shape)

    @property
    def is_contiguous(self) -> bool:
        return is_contiguous(self.shape, self.strides)

    def offset_of(self, index: Sequence[int]) -> int:
        for k, (i, d) in enumerate(zip(index, self.shape)):
            if not 0 <= i < d:
                raise ShapeError(f"index {tuple(index)} is out of range for shape {self.shape} (axis {k})")
        return index_to_offset(index, self.strides, self.offset)

    def extent(self) -> Tuple[int, int]:
        """(lowest, highest) buffer positions the layout touches; (offset, offset-1) when empty."""
        if self.size == 0:
            return self.offset, self.offset - 1
        lo = self.offset + sum((d - 1) * s for d, s in zip(self.shape, self.strides) if s < 0)
        hi = self.offset + sum((d - 1) * s for d, s in zip(self.shape, self.strides) if s > 0)
        return lo, hi
