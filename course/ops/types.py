"""Static types of IR values: element type plus a shape whose dims may be symbolic.

A dim is an ``int`` (known), a ``str`` (a symbol such as ``"N"``, the symbolic batch) or ``None``
(unknown). ``shape is None`` means even the rank is unknown.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

Dim = Union[int, str, None]
Shape = Optional[Tuple[Dim, ...]]


@dataclass(frozen=True)
class TensorType:
    dtype: np.dtype
    shape: Shape = None

    def __post_init__(self):
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def rank(self) -> Optional[int]:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def __str__(self) -> str:
        dims = "?" if self.shape is None else "x".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype.name}[{dims}]"
