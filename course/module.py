"""``Module``: the seed's ``Cell``, a small PyTorch-style layer base class over the course's ops.

A Module owns *parameters* (trained arrays), *buffers* (arrays that are state but not trained,
like BatchNorm's running mean) and *submodules*; assigning one as an attribute registers it,
so ``named_parameters()`` finds every weight of a whole network by walking the tree.

Forward passes are **pure and made only of op calls**: every layer's ``forward`` calls one
function of :data:`F` per ONNX op (``F.conv2d`` → ``Conv``, ``F.linear`` → ``Gemm``...), and
each of those goes through :func:`F.call`, which runs the registered kernel of
``course.ops``. Nothing else (no hidden numpy maths, no in-place updates of state) happens in
a forward. That is what lets lesson 06 *trace* a Module into a graph: inside
``with F.intercept(handler):`` every op call is handed to ``handler(op_type, inputs, attrs)``,
which can record a node and return the value.

This course only does inference: ``BatchNorm2d`` always normalises with its running
statistics; ``train()``/``eval()`` only set the ``training`` flag (lesson 10's fake-quant
layers read it).
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from course.errors import ShapeError

OPSET = 17
IntPair = Union[int, Tuple[int, int]]


class Parameter(np.ndarray):
    """A trainable array. Results of arithmetic on it are plain arrays, not Parameters."""

    def __new__(cls, data) -> "Parameter":
        return np.array(data, dtype=np.float32, copy=True).view(cls)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        out = np.asarray(array).view(np.ndarray)
        return out[()] if return_scalar else out


# --- F: one function per ONNX op; every forward is made of these ---------------------------------
_handler: Optional[Callable[[str, tuple, dict], Any]] = None


def _run_op(op_type: str, inputs: tuple, attrs: dict):
    import course.ops  # noqa: F401  (importing the package registers every op)
    from course.ops.registry import lookup

    op = lookup(op_type, OPSET)
    return op.compute(*inputs, **op.resolve_attrs(attrs))


def call(op_type: str, *inputs, **attrs):
    """Run ONNX op ``op_type`` (opset 17) on numpy inputs; the one door every layer goes through."""
    inputs = tuple(None if x is None else np.asarray(x).view(np.ndarray) for x in inputs)
    if _handler is not None:
        return _handler(op_type, inputs, dict(attrs))
    return _run_op(op_type, inputs, attrs)


@contextlib.contextmanager
def intercept(handler: Callable[[str, tuple, dict], Any]):
    """Route every op call to ``handler(op_type, inputs, attrs)`` (it returns the result).

    ``F.run_op`` inside a handler runs the real kernel, so a tracer can record and compute.
    """
    global _handler
    previous, _handler = _handler, handler
    try:
        yield
    finally:
        _handler = previous


def _pair(v: IntPair) -> Tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv2d(x, weight, bias=None, stride: IntPair = 1, padding: IntPair = 0,
           dilation: IntPair = 1, groups: int = 1):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    return call("Conv", x, weight, bias, strides=[sh, sw], pads=[ph, pw, ph, pw],
                dilations=[dh, dw], group=int(groups), kernel_shape=list(np.shape(weight)[2:]))


def batch_norm(x, mean, var, weight, bias, eps: float = 1e-5):
    return call("BatchNormalization", x, weight, bias, mean, var, epsilon=float(eps))


def relu(x):
    return call("Relu", x)


def max_pool2d(x, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0):
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    sh, sw = _pair(kernel_size if stride is None else stride)
    return call("MaxPool", x, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw])


def avg_pool2d(x, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               count_include_pad: bool = True):
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    sh, sw = _pair(kernel_size if stride is None else stride)
    return call("AveragePool", x, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw],
                count_include_pad=int(count_include_pad))


def flatten(x, start_dim: int = 1):
    return call("Flatten", x, axis=int(start_dim))


def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` (weight is [out, in], as in PyTorch and ONNX Gemm with transB=1)."""
    return call("Gemm", x, weight, bias, transB=1)


def softmax(x, axis: int = -1):
    return call("Softmax", x, axis=int(axis))


def add(a, b):
    return call("Add", a, b)


F = SimpleNamespace(call=call, intercept=intercept, run_op=_run_op, conv2d=conv2d,
                    batch_norm=batch_norm, relu=relu, max_pool2d=max_pool2d, avg_pool2d=avg_pool2d,
                    flatten=flatten, linear=linear, softmax=softmax, add=add, OPSET=OPSET)


# --- Module -------------------------------------------------------------------------------------
class Module:
    """Base class: assign Parameters and Modules as attributes, write ``forward``, call it."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if isinstance(value, (Parameter, Module)):
            for table in (self._parameters, self._buffers, self._modules, self.__dict__):
                table.pop(name, None)
            (self._parameters if isinstance(value, Parameter) else self._modules)[name] = value
        elif name in self._buffers:
            self._buffers[name] = np.asarray(value)
        elif name in self._parameters or name in self._modules:
            raise TypeError(f"{name!r} is a registered parameter/submodule: assign a Parameter "
                            f"or a Module, got {type(value).__name__}")
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for table in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(table)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def register_buffer(self, name: str, value) -> None:
        """State that is saved and loaded but not trained (e.g. BatchNorm running statistics)."""
        self._buffers[name] = np.asarray(value, dtype=np.float32)

    # -- the tree ----------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        """Every parameter of the tree with its dotted path, e.g. ``("features.0.weight", W)``."""
        for path, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                yield (f"{path}.{name}" if path else name), p

    def parameters(self) -> list:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[Tuple[str, np.ndarray]]:
        for path, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                yield (f"{path}.{name}" if path else name), b

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        out = OrderedDict((k, np.array(v)) for k, v in self.named_parameters())
        out.update((k, np.array(v)) for k, v in self.named_buffers())
        return out

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays in by dotted name; every name must exist and every shape must match."""
        mine = self.state_dict()
        missing, unknown = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
        if missing or unknown:
            raise KeyError(f"state dict mismatch: missing {missing}, unexpected {unknown}")
        for key, value in state.items():
            *path, name = key.split(".")
            owner = self
            for p in path:
                owner = owner._modules[p]
            value = np.asarray(value, dtype=np.float32)
            if value.shape != mine[key].shape:
                raise ShapeError(f"{key}: shape {value.shape} != {mine[key].shape}")
            if name in owner._parameters:
                owner._parameters[name] = Parameter(value)
            else:
                owner._buffers[name] = value.copy()

    def train(self, mode: bool = True) -> "Module":
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- running -----------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            lines.append(f"  ({name}): " + repr(m).replace("\n", "\n  "))
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


# --- layers -------------------------------------------------------------------------------------
def _uniform(rng: np.random.Generator, shape, fan_in: int) -> Parameter:
    bound = 1.0 / np.sqrt(max(fan_in, 1))  # PyTorch's default init range for conv and linear
    return Parameter(rng.uniform(-bound, bound, size=shape))


class Conv2d(Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True,
                 seed: int = 0):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ShapeError(f"channels {in_channels}->{out_channels} are not divisible by groups={groups}")
        kh, kw = _pair(kernel_size)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        rng = np.random.default_rng(seed)
        fan_in = in_channels // groups * kh * kw
        self.weight = _uniform(rng, (out_channels, in_channels // groups, kh, kw), fan_in)
        self.bias = _uniform(rng, (out_channels,), fan_in) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight.shape
        return f"{i * self.groups}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding}"


class BatchNorm2d(Module):
    """Inference BatchNorm: ``weight * (x - running_mean) / sqrt(running_var + eps) + bias``."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = Parameter(np.ones(num_features))
        self.bias = Parameter(np.zeros(num_features))
        self.register_buffer("running_mean", np.zeros(num_features))
        self.register_buffer("running_var", np.ones(num_features))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class MaxPool2d(Module):
    def __init__(self, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Flatten(Module):
    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim)


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = _uniform(rng, (out_features, in_features), in_features)
        self.bias = _uniform(rng, (out_features,), in_features) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class Sequential(Module):
    """Runs its submodules in order; they are registered under the names "0", "1", ..."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential item {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


def conv_bn_relu_pool(c_in: int, c_out: int, seed: int) -> Sequential:
    """One stage of the seed CNN: 3x3 conv (same padding) → BatchNorm → ReLU → 2x2 max pool."""
    return Sequential(Conv2d(c_in, c_out, 3, padding=1, seed=seed), BatchNorm2d(c_out), ReLU(),
                      MaxPool2d(2))


class SmallCNN(Module):
    """The seed's small CNN: (conv-bn-relu-pool) x 2 → flatten → linear.

    ``image_size`` 8 (sklearn digits) or 28 (MNIST-like); each pool halves it (floor), so the
    classifier sees ``channels[1] * (image_size // 4) ** 2`` features.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 8,
                 channels: Sequence[int] = (8, 16), seed: int = 0):
        super().__init__()
        c1, c2 = channels
        self.features = Sequential(conv_bn_relu_pool(in_channels, c1, seed),
                                   conv_bn_relu_pool(c1, c2, seed + 1))
        self.flatten = Flatten()
        side = image_size // 2 // 2
        self.classifier = Linear(c2 * side * side, num_classes, seed=seed + 2)

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


__all__ = ["Module", "Parameter", "F", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten",
           "Linear", "Sequential", "SmallCNN", "conv_bn_relu_pool", "OPSET"]
