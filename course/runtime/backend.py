"""``course.onnx_backend``: the engine behind onnx's ``Backend`` interface.

onnx's test runner (``onnx.backend.test.BackendTest``) and other tools that speak this interface
can then drive the engine: ``prepare(model).run([x])`` or ``run_model(model, [x])``. The module
exposes the class methods as functions, the way ``onnxruntime.backend`` does.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep

from course.errors import EngineError, UnsupportedOpError
from course.ir.onnx_import import from_onnx
from course.runtime.session import InferenceSession


class CourseRep(BackendRep):
    """A prepared model; ``run`` takes a list (in input order), one array, or a dict."""

    def __init__(self, session: InferenceSession):
        self.session = session

    def run(self, inputs: Any, **kwargs: Any) -> list:
        if isinstance(inputs, Mapping):
            feeds = dict(inputs)
        else:
            names = [a.name for a in self.session.get_inputs()]
            values = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            if len(values) > len(names):
                # onnx's runner also passes values for initializers that are inputs (IR < 4)
                names += [a.name for a in self.session.get_overridable_initializers()]
            feeds = dict(zip(names, values))
        return self.session.run(None, feeds)


class CourseBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        """False only for ops (or opsets) the engine lacks: any other problem must surface in prepare."""
        try:
            from_onnx(model)
        except UnsupportedOpError:
            return False
        except EngineError:
            pass
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> CourseRep:
        if not cls.supports_device(device):
            raise RuntimeError(f"device {device!r} is not supported (only CPU)")
        return CourseRep(InferenceSession(model))

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> list:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU", outputs_info=None, **kwargs: Any):
        """Run one node on ``inputs`` (a list of arrays, in the node's input order)."""
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        ins = [helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
               for n, a in zip(node.input, inputs)]
        outs = [helper.make_empty_tensor_value_info(n) for n in node.output]
        model = helper.make_model(helper.make_graph([node], "run_node", ins, outs),
                                  opset_imports=[helper.make_opsetid("", opset)])
        return cls.run_model(model, list(inputs), device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper() == "CPU"


is_compatible = CourseBackend.is_compatible
prepare = CourseBackend.prepare
run_model = CourseBackend.run_model
run_node = CourseBackend.run_node
supports_device = CourseBackend.supports_device
