"""The IR's value types: defined with the op schemas (``course.ops.types``), which infer them.

The schemas sit below the IR (the IR asks them for each node's output types), so the types live
there and are re-exported here for code that thinks of them as the IR's.
"""
from course.ops.types import Dim, Shape, TensorType

__all__ = ["Dim", "Shape", "TensorType"]
