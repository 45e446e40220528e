"""Reshape without copying: when can new strides describe the same elements in the same order?

Walk the old dims from the right and cut them into *chunks*: runs of dims that are contiguous
with each other (``stride[k-1] == shape[k] * stride[k]``). Inside a chunk the elements are
evenly spaced, so any split or merge of it works. A new dim that would straddle two chunks
cannot be expressed with one stride: the reshape then needs a copy.
"""
from __future__ import annotations

from typing import Optional, Sequence

from course.errors import ShapeError
from course.tensor.layout import Strides, contiguous_strides, numel


def resolve_shape(new_shape: Sequence[int], size: int) -> tuple[int, ...]:
    """Fill in a single ``-1`` so that the element count is ``size`` (as numpy and ONNX do)."""
    new_shape = [int(d) for d in new_shape]
    holes = [k for k, d in enumerate(new_shape) if d == -1]
    if len(holes) > 1 or any(d < -1 for d in new_shape):
        raise ShapeError(f"bad target shape {tuple(new_shape)}: at most one -1 and no other negatives")
    known = numel(d for d in new_shape if d != -1)
    if holes:
        if known == 0 or size % known:
            raise ShapeError(f"cannot infer the -1 in {tuple(new_shape)} for {size} elements")
        new_shape[holes[0]] = size // known
    if numel(new_shape) != size:
        raise ShapeError(f"cannot reshape {size} elements into shape {tuple(new_shape)}")
    return tuple(new_shape)


def reshape_strides(shape: Sequence[int], strides: Sequence[int],
                    new_shape: Sequence[int]) -> Optional[Strides]:
    """Strides that view ``(shape, strides)`` as ``new_shape`` in row-major order, or None.

    None means no strides can do it: the data must be copied first.
    """
    shape, strides = tuple(shape), tuple(strides)
    new_shape = resolve_shape(new_shape, numel(shape))
    if numel(shape) == 0 or not shape:
        return contiguous_strides(new_shape)  # nothing to keep in order / a single element
    new_strides = [0] * len(new_shape)
    j = len(new_shape) - 1  # next new dim to place, from the right
    base = strides[-1]  # stride of the innermost element of the current chunk
    chunk = 1  # elements of old dims in the current chunk so far
    placed = 1  # elements covered by new dims placed for this chunk
    for k in range(len(shape) - 1, -1, -1):
        chunk *= shape[k]
        chunk_ends = k == 0 or (shape[k - 1] != 1 and strides[k - 1] != chunk * base)
        if not chunk_ends:
            continue
        # Give this chunk new dims until they cover it exactly (size-1 dims ride along).
        while j >= 0 and (placed < chunk or new_shape[j] == 1):
            new_strides[j] = placed * base
            placed *= new_shape[j]
            j -= 1
        if placed != chunk:
            return None  # a new dim straddles two chunks
        if k > 0:
            base, chunk, placed = strides[k - 1], 1, 1
    if j != -1:
        return None
    return tuple(new_strides)
