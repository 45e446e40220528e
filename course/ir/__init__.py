"""The graph IR: ``Graph``/``Node``/``Value`` with use-def links, verification, type inference.

ONNX conversion lives in ``course.ir.onnx_import.from_onnx`` and ``course.ir.onnx_export.to_onnx``
(imported on demand: they load the onnx package).
"""
from course.ir.graph import Graph, Node, Value
from course.ir.types import TensorType

__all__ = ["Graph", "Node", "Value", "TensorType"]
