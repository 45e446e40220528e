"""Numpy/ONNX multidirectional broadcasting, and the stride-0 trick that makes it free."""
from __future__ import annotations

from typing import Sequence

from course.errors import ShapeError
from course.tensor.layout import Shape, Strides


def broadcast_shapes(*shapes: Sequence[int]) -> Shape:
    """Shapes are aligned on the *right*; each dim pair must be equal or contain a 1."""
    rank = max((len(s) for s in shapes), default=0)
    out = [1] * rank
    for shape in shapes:
        padded = (1,) * (rank - len(shape)) + tuple(int(d) for d in shape)
        for k, d in enumerate(padded):
            if d == out[k] or d == 1:
                continue
            if out[k] == 1:
                out[k] = d
            else:
                raise ShapeError(f"shapes {[tuple(s) for s in shapes]} do not broadcast: "
                                 f"dim {k} (from the left, after padding) is {out[k]} vs {d}")
    return tuple(out)


def broadcast_strides(shape: Sequence[int], strides: Sequence[int], out_shape: Sequence[int]) -> Strides:
    """Strides that read a ``shape`` tensor as if it had ``out_shape``: stride 0 where it repeats.

    New leading dims and dims of size 1 that grow get stride 0, so every position along them
    reads the same element; nothing is copied.
    """
    shape, out_shape = tuple(shape), tuple(out_shape)
    lead = len(out_shape) - len(shape)
    if lead < 0:
        raise ShapeError(f"cannot broadcast shape {shape} to the lower-rank shape {out_shape}")
    out = [0] * lead
    for d, s, o in zip(shape, strides, out_shape[lead:]):
        if d == o:
            out.append(int(s))
        elif d == 1:
            out.append(0)
        else:
            raise ShapeError(f"cannot broadcast shape {shape} to {out_shape}")
    return tuple(out)
