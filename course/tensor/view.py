"""TensorView: a Layout over a flat numpy buffer. Views share the buffer; nothing is copied
until :meth:`TensorView.contiguous` or :meth:`TensorView.numpy` is called."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from course.errors import ShapeError
from course.tensor.broadcast import broadcast_strides
from course.tensor.layout import Layout, contiguous_strides
from course.tensor.reshape import reshape_strides, resolve_shape


def gather_offsets(layout: Layout) -> np.ndarray:
    """Buffer position of every element of ``layout``, as an int64 array of its shape."""
    pos = np.full(layout.shape, layout.offset, dtype=np.int64)
    for axis, (d, s) in enumerate(zip(layout.shape, layout.strides)):
        step = np.arange(d, dtype=np.int64) * s
        pos += step.reshape((1,) * axis + (d,) + (1,) * (layout.ndim - axis - 1))
    return pos


class TensorView:
    """An n-d view of a 1-d buffer. Reading element ``i`` reads ``buffer[layout.offset_of(i)]``."""

    def __init__(self, buffer: np.ndarray, layout: Layout):
        if not isinstance(buffer, np.ndarray) or buffer.ndim != 1:
            raise ShapeError("a TensorView's buffer must be a 1-d numpy array")
        lo, hi = layout.extent()
        if layout.size and (lo < 0 or hi >= buffer.size):
            raise ShapeError(f"layout {layout} reaches [{lo}, {hi}] outside a buffer of {buffer.size}")
        self.buffer = buffer
        self.layout = layout

    @classmethod
    def from_numpy(cls, array: np.ndarray) -> "TensorView":
        """A contiguous copy's buffer (no copy when ``array`` is already C-contiguous)."""
        flat = np.ascontiguousarray(array).reshape(-1)
        return cls(flat, Layout.contiguous(np.shape(array)))

    # -- what it is ----------------------------------------------------------------------------
    shape = property(lambda self: self.layout.shape)
    strides = property(lambda self: self.layout.strides)
    offset = property(lambda self: self.layout.offset)
    ndim = property(lambda self: self.layout.ndim)
    size = property(lambda self: self.layout.size)
    dtype = property(lambda self: self.buffer.dtype)

    def is_contiguous(self) -> bool:
        return self.layout.is_contiguous

    def __repr__(self) -> str:
        l = self.layout
        return f"TensorView(shape={l.shape}, strides={l.strides}, offset={l.offset}, dtype={self.dtype})"

    def _with(self, shape, strides, offset=None) -> "TensorView":
        return TensorView(self.buffer, Layout(tuple(shape), tuple(strides),
                                              self.offset if offset is None else offset))

    # -- reading -------------------------------------------------------------------------------
    def __getitem__(self, key: Union[int, slice, tuple]):
        """Integers select (and drop) a dim, slices keep it; all ints → the element itself."""
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > self.ndim:
            raise ShapeError(f"too many indices ({len(key)}) for a {self.ndim}-d view")
        shape, strides, offset = [], [], self.offset
        for axis, (d, s) in enumerate(zip(self.shape, self.strides)):
            k = key[axis] if axis < len(key) else slice(None)
            if isinstance(k, slice):
                start, _, step = k.indices(d)
                n = len(range(*k.indices(d)))
                offset += (start * s) if n else 0
                shape.append(n)
                strides.append(s * step)
            else:
                i = int(k) + (d if int(k) < 0 else 0)
                if not 0 <= i < d:
                    raise ShapeError(f"index {int(k)} is out of range for axis {axis} of size {d}")
                offset += i * s
        if not shape:
            return self.buffer[offset]
        return self._with(shape, strides, offset)

    def numpy(self) -> np.ndarray:
        """The elements as a fresh C-contiguous numpy array (a gather through the offsets)."""
        return self.buffer[gather_offsets(self.layout)]

    def contiguous(self) -> "TensorView":
        """Itself when already contiguous, else a copy into a new row-major buffer."""
        if self.is_contiguous() and self.offset == 0:
            return self
        return TensorView(self.numpy().reshape(-1), Layout.contiguous(self.shape))

    # -- views ---------------------------------------------------------------------------------
    def permute(self, *axes: int) -> "TensorView":
        """Axis ``k`` of the result is axis ``axes[k]`` of self (numpy.transpose's convention)."""
        axes = tuple(axes[0]) if len(axes) == 1 and not isinstance(axes[0], int) else tuple(axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ShapeError(f"{axes} is not a permutation of {self.ndim} axes")
        return self._with([self.shape[a] for a in axes], [self.strides[a] for a in axes])

    def transpose(self, a: int = -2, b: int = -1) -> "TensorView":
        """Swap two axes (by default the last two)."""
        axes = list(range(self.ndim))
        axes[a], axes[b] = axes[b], axes[a]
        return self.permute(*axes)

    @property
    def T(self) -> "TensorView":
        return self.permute(*reversed(range(self.ndim)))

    def reshape(self, *shape: int) -> Optional["TensorView"]:
        """A view with the new shape, or None when only a copy can produce it."""
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        shape = resolve_shape(shape, self.size)
        strides = reshape_strides(self.shape, self.strides, shape)
        return None if strides is None else self._with(shape, strides)

    def slice(self, axis: int, start: Optional[int] = None, stop: Optional[int] = None,
              step: Optional[int] = None) -> "TensorView":
        """Python slicing ``start:stop:step`` along one axis (negative steps too), as a view."""
        key = [slice(None)] * self.ndim
        key[axis] = slice(start, stop, step)
        return self[tuple(key)]

    def expand(self, *shape: int) -> "TensorView":
        """Broadcast to ``shape`` with stride 0 along repeated dims (numpy.broadcast_to)."""
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return self._with(shape, broadcast_strides(self.shape, self.strides, shape))


def as_view(array: np.ndarray) -> TensorView:
    """Convenience alias of :meth:`TensorView.from_numpy`."""
    return TensorView.from_numpy(array)


__all__ = ["TensorView", "as_view", "gather_offsets", "contiguous_strides"]
