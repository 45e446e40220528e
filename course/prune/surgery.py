"""Channel surgery: physically remove output channels of Convs from an ONNX model.

Zeroing a filter saves nothing on dense hardware; removing it does: the Conv's weight loses rows
(and its bias entries), the BatchNormalization after it loses the same entries of its four
vectors, and whatever reads the channels downstream loses the matching *input* channels: the next
Conv's weight columns ``W[:, keep]``, or -- after a Flatten -- the Gemm's weight columns of those
channels' spatial blocks. Element-wise and per-channel ops in between (Relu, MaxPool,
AveragePool, Clip, Sigmoid, ...) pass the channel set through unchanged.

Joins: an ``Add`` (a residual) mixes its inputs channel by channel, so it is legal only when every
input of the Add keeps the same channels (prune them together, or not at all); ``Concat`` on the
channel axis stacks its inputs, so cutting one input shifts the channels after it: the kept set
of the join is mapped through the offsets and the surgery goes on after it.

The model is an ``onnx.ModelProto``; the result is a new one (the input is not changed), checked
with ``onnx.checker``. Network slimming's choice (|gamma| of the BN after each conv, Liu et al.
2017) and L1 filter ranking (Li et al. 2017) give the ``keep`` sets; see ``course.prune.masks``.
"""
from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import numpy_helper

PASS_THROUGH = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "MaxPool",
                "AveragePool", "Identity", "Dropout", "GlobalAveragePool", "GlobalMaxPool", "Elu", "Selu"}


class _Model:
    """A mutable view of a ModelProto: initializers as numpy, readers of each tensor."""

    def __init__(self, model: onnx.ModelProto):
        self.model = copy.deepcopy(model)
        self.graph = self.model.graph
        self.inits = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.changed: set[str] = set()

    def node(self, name: str):
        for n in self.graph.node:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r}")

    def readers(self, tensor: str) -> list:
        return [n for n in self.graph.node if tensor in n.input]

    def set(self, name: str, array: np.ndarray) -> None:
        if name not in self.inits:
            raise ValueError(f"{name!r} is not an initializer: only constant weights can be cut")
        self.inits[name] = array
        self.changed.add(name)

    def finish(self) -> onnx.ModelProto:
        for t in self.graph.initializer:
            if t.name in self.changed:
                t.CopyFrom(numpy_helper.from_array(self.inits[t.name], t.name))
        del self.graph.value_info[:]  # shapes changed: drop stale inferred shapes
        onnx.checker.check_model(self.model)
        return self.model


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _cut_inputs(m: _Model, tensor: str, keep: np.ndarray, n_old: int, seen: set) -> None:
    """Cut the channels ``keep`` (of ``n_old``) out of everything that reads ``tensor``."""
    if any(o.name == tensor for o in m.graph.output):
        raise ValueError(f"{tensor!r} is a graph output: its channels cannot be removed")
    for node in m.readers(tensor):
        op = node.op_type
        if op == "Conv":
            if _attr(node, "group", 1) != 1:
                raise ValueError(f"{node.name}: grouped convolutions are not handled")
            w = m.inits[node.input[1]]
            m.set(node.input[1], w[:, keep])
        elif op == "BatchNormalization":
            for name in node.input[1:5]:
                m.set(name, m.inits[name][keep])
            _cut_inputs(m, node.output[0], keep, n_old, seen)
        elif op in PASS_THROUGH:
            _cut_inputs(m, node.output[0], keep, n_old, seen)
        elif op == "Flatten":
            if _attr(node, "axis", 1) != 1:
                raise ValueError(f"{node.name}: only Flatten(axis=1) is handled")
            _cut_flatten(m, node, keep, n_old)
        elif op == "Add" or op == "Sum":
            raise ValueError(f"{node.name}: a residual {op} needs every input pruned alike; "
                             f"use prune_channels with all of its producers in one call")
        elif op == "Concat":
            raise ValueError(f"{node.name}: Concat joins are handled by prune_channels")
        else:
            raise ValueError(f"{node.name}: cannot cut channels through a {op}")


def _cut_flatten(m: _Model, flatten, keep: np.ndarray, n_old: int) -> None:
    for gemm in m.readers(flatten.output[0]):
        if gemm.op_type not in ("Gemm", "MatMul") or gemm.input[0] != flatten.output[0]:
            raise ValueError(f"after {flatten.name}: cannot cut channels through a {gemm.op_type}")
        w = m.inits[gemm.input[1]]
        trans = gemm.op_type == "Gemm" and _attr(gemm, "transB", 0)
        features = w.shape[1] if trans else w.shape[0]
        spatial = features // n_old
        cols = (keep[:, None] * spatial + np.arange(spatial)[None, :]).ravel()
        m.set(gemm.input[1], w[:, cols] if trans else w[cols])


def _cut_conv_outputs(m: _Model, conv, keep: np.ndarray) -> int:
    w = m.inits[conv.input[1]]
    m.set(conv.input[1], w[keep])
    if len(conv.input) > 2 and conv.input[2]:
        m.set(conv.input[2], m.inits[conv.input[2]][keep])
    return len(w)


def _checked_keep(keep, n: int, name: str) -> np.ndarray:
    keep = np.asarray(keep, np.int64)
    if keep.ndim != 1 or len(keep) == 0 or len(np.unique(keep)) != len(keep) or keep.min() < 0 or keep.max() >= n:
        raise ValueError(f"{name}: keep must be distinct channel indices in [0, {n}), got {keep}")
    return np.sort(keep)


def prune_channels(model: onnx.ModelProto, keep: dict) -> onnx.ModelProto:
    """Remove the output channels of Convs not in ``keep[conv_name]`` (indices to keep).

    Convs whose outputs meet at an ``Add`` must be given the same keep set (checked). At a channel
    ``Concat`` (axis 1), the kept channels of each input are shifted by that input's offset and
    the join's readers lose the rest; an input of a Concat not in ``keep`` keeps all its channels.
    """
    m = _Model(model)
    todo = dict(keep)
    # joins first: a Concat's or an Add's producers are handled together
    handled = set()
    for join in list(m.graph.node):
        if join.op_type in ("Add", "Sum", "Concat"):
            handled |= _prune_join(m, join, todo)
    for name, k in todo.items():
        if name in handled:
            continue
        conv = m.node(name)
        if conv.op_type != "Conv":
            raise ValueError(f"{name} is a {conv.op_type}, not a Conv")
        n = len(m.inits[conv.input[1]])
        k = _checked_keep(k, n, name)
        _cut_conv_outputs(m, conv, k)
        _cut_inputs(m, conv.output[0], k, n, {})
    return m.finish()


def _producer_conv(m: _Model, tensor: str):
    """The Conv whose channels reach ``tensor`` through BN / element-wise ops (and those ops)."""
    chain = []
    while True:
        prod = [n for n in m.graph.node if tensor in n.output]
        if not prod:
            return None, chain
        node = prod[0]
        if node.op_type == "Conv":
            return node, chain
        if node.op_type not in PASS_THROUGH | {"BatchNormalization"}:
            return None, chain
        chain.append(node)
        tensor = node.input[0]


def _cut_chain(m: _Model, conv, chain, keep) -> None:
    """Cut a producer conv and the BN / element-wise chain from it to a join (not past it)."""
    _cut_conv_outputs(m, conv, keep)
    for node in chain:
        if node.op_type == "BatchNormalization":
            for name in node.input[1:5]:
                m.set(name, m.inits[name][keep])
    for node in chain + [conv]:
        out = node.output[0]
        others = [r for r in m.readers(out) if r not in chain]
        if len(others) > 1:
            raise ValueError(f"{out!r} has readers besides the join: prune it with its own keep set")


def _prune_join(m: _Model, join, todo: dict) -> set:
    producers = [_producer_conv(m, t) for t in join.input]
    names = [c.name if c is not None else None for c, _ in producers]
    involved = [n for n in names if n in todo]
    if not involved:
        return set()
    if join.op_type in ("Add", "Sum"):
        if None in names or any(n not in todo for n in names):
            raise ValueError(f"{join.name}: every input of a residual {join.op_type} must come from a pruned Conv")
        sets = [tuple(_checked_keep(todo[n], len(m.inits[m.node(n).input[1]]), n)) for n in names]
        if len(set(sets)) != 1:
            raise ValueError(f"{join.name}: the inputs of a residual {join.op_type} must keep the same channels")
        keep, n_old = np.asarray(sets[0]), len(m.inits[producers[0][0].input[1]])
        for conv, chain in producers:
            _cut_chain(m, conv, chain, keep)
        _cut_inputs(m, join.output[0], keep, n_old, {})
        return set(names)
    if _attr(join, "axis") not in (1, -3):
        raise ValueError(f"{join.name}: only a Concat on the channel axis can be cut through")
    kept, offset = [], 0
    for (conv, chain), name in zip(producers, names):
        if conv is None:
            raise ValueError(f"{join.name}: every Concat input must come from a Conv")
        n = len(m.inits[conv.input[1]])
        k = _checked_keep(todo[name], n, name) if name in todo else np.arange(n)
        if name in todo:
            _cut_chain(m, conv, chain, k)
        kept.append(k + offset)
        offset += n
    _cut_inputs(m, join.output[0], np.concatenate(kept), offset, {})
    return set(involved)


def conv_flops(model: onnx.ModelProto, input_hw: tuple = (8, 8)) -> dict:
    """Multiply-adds per image of each Conv and Gemm (stride-1 'same' convs and pools of the kind
    the course's models use: spatial sizes tracked through MaxPool/AveragePool strides)."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    hw = {model.graph.input[0].name: tuple(input_hw)}
    out = {}
    for node in model.graph.node:
        src = hw.get(node.input[0]) if node.input else None
        if node.op_type == "Conv":
            w = inits[node.input[1]]
            s = _attr(node, "strides", [1, 1])
            h, wd = src[0] // s[0], src[1] // s[1]
            out[node.name] = int(w.size * h * wd)
            hw[node.output[0]] = (h, wd)
        elif node.op_type in ("MaxPool", "AveragePool"):
            s = _attr(node, "strides", _attr(node, "kernel_shape"))
            hw[node.output[0]] = (src[0] // s[0], src[1] // s[1])
        elif node.op_type in ("Gemm", "MatMul"):
            out[node.name] = int(inits[node.input[1]].size)
        elif src is not None:
            hw[node.output[0]] = src
    return out


def total_flops(model: onnx.ModelProto, input_hw: tuple = (8, 8)) -> int:
    """2 x multiply-adds per image (a multiply-add is two floating-point operations)."""
    return 2 * sum(conv_flops(model, input_hw).values())


def zero_removed_inputs(model: onnx.ModelProto, keep: dict) -> onnx.ModelProto:
    """The *masked* original of a pruning: the same graph where the removed channels' filters are
    zero and the next Conv reads nothing from them (its input-channel weights zeroed; a Gemm after a
    Flatten: those channels' columns zeroed). Runs to the same outputs as the pruned model."""
    pruned_inputs = {}
    m = _Model(model)
    for name, k in keep.items():
        conv = m.node(name)
        n = len(m.inits[conv.input[1]])
        drop = np.setdiff1d(np.arange(n), np.asarray(k))
        tensor, node = conv.output[0], None
        while True:
            readers = m.readers(tensor)
            if len(readers) != 1:
                raise ValueError(f"{tensor!r}: one reader expected")
            node = readers[0]
            if node.op_type in PASS_THROUGH | {"BatchNormalization"}:
                tensor = node.output[0]
                continue
            break
        if node.op_type == "Conv":
            w = m.inits[node.input[1]].copy()
            w[:, drop] = 0
            m.set(node.input[1], w)
        elif node.op_type == "Flatten":
            gemm = m.readers(node.output[0])[0]
            w = m.inits[gemm.input[1]].copy()
            spatial = w.shape[1] // n
            cols = (drop[:, None] * spatial + np.arange(spatial)[None, :]).ravel()
            w[:, cols] = 0
            m.set(gemm.input[1], w)
        else:
            raise ValueError(f"cannot mask the reader {node.op_type}")
        pruned_inputs[name] = drop
    return m.finish()
