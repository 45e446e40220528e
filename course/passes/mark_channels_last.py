"""MarkChannelsLast: note which convolutions make their output channels last (``node.meta
["layout"] = "NHWC"``), for a provider with channels-last kernels to read from its NodeSpec.

Channels last pays between MobileNet's 1x1 and 3x3 depthwise convolutions: the depthwise kernel
then holds channels in its SIMD lanes, and a 1x1 convolution that reads and writes channels last
is the plain GEMM X (P, C) @ W.T (C, M). Reading channels last and writing NCHW costs a
transposed GEMM operand, and a residual must come in its output's layout, so the layout is given
to whole regions: start from every float32 1x1 (stride 1, no pads) and 3x3 depthwise (at least
CHANNELS_LAST_MIN channels, no dilation) convolution that ``eligible`` says runs on such a
provider, then drop any whose output is a graph output or is read by anything but such a
convolution (as X, or as the residual Z of one that stays channels last) or a node that reads
any layout (``any_layout``: a global pooling), and any depthwise one whose input is not channels
last (its output follows its input's layout), until nothing changes. Marks left from an earlier
run on nodes no longer chosen are removed.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from course.ir.graph import Graph, Node
from course.passes.base import Pass, PassResult

CHANNELS_LAST_MIN = 64  # depthwise channels; below, the plane-by-plane kernel is as fast
CONVOLUTIONS = (("Conv", ""), ("FusedConv", "course"))


def reads_any_layout(node: Node) -> bool:
    """A global pooling reduces a channels-last input as fast as an NCHW one."""
    return node.op_type in ("GlobalAveragePool", "GlobalMaxPool") and not node.domain


def layout_kind(node: Node) -> Optional[str]:
    """"pointwise" or "depthwise" for the convolutions that may run channels last, else None."""
    if (node.op_type, node.domain or "") not in CONVOLUTIONS or len(node.inputs) < 2 or not node.outputs:
        return None
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    if any(v is None or v.type is None for v in (x, w, y)) or y.type.dtype != np.float32:
        return None
    ws, attrs = w.type.shape, node.attrs
    if ws is None or len(ws) != 4 or not all(isinstance(d, int) for d in ws):
        return None

    def ones(key):
        return all(v == 1 for v in attrs.get(key) or (1, 1))
    if (tuple(ws[2:]) == (1, 1) and attrs.get("group", 1) == 1 and ones("strides") and ones("dilations")
            and not any(attrs.get("pads") or ()) and attrs.get("auto_pad", "NOTSET") in ("NOTSET", "VALID")):
        return "pointwise"
    if tuple(ws[1:]) == (1, 3, 3) and attrs.get("group", 1) == ws[0] >= CHANNELS_LAST_MIN and ones("dilations"):
        return "depthwise"
    return None


class MarkChannelsLast(Pass):
    """Mark the channels-last regions (see the module). ``eligible(node)``: whether the node runs
    on a provider with channels-last kernels; ``any_layout(node)``: whether a node reads either
    layout (default: a global pooling)."""

    def __init__(self, eligible: Callable[[Node], bool], any_layout: Callable[[Node], bool] = reads_any_layout,
                 protected=()):
        super().__init__(protected)
        self.eligible, self.any_layout = eligible, any_layout

    def call(self, graph: Graph) -> PassResult:
        kind = {id(n): (layout_kind(n) if self.eligible(n) and n.op_type not in self.protected else None)
                for n in graph.nodes}
        outputs = {id(v) for v in graph.outputs}
        last = {id(n.outputs[0]) for n in graph.nodes if kind[id(n)] and id(n.outputs[0]) not in outputs}
        while self._drop_one_round(graph, kind, last):
            pass
        modified = False
        for node in graph.nodes:
            want = bool(kind[id(node)]) and id(node.outputs[0]) in last
            if want and node.meta.get("layout") != "NHWC":
                node.meta["layout"] = "NHWC"
                modified = True
            elif not want and "layout" in node.meta:
                del node.meta["layout"]
                modified = True
        return PassResult(graph, modified)

    def _drop_one_round(self, graph: Graph, kind: dict, last: set) -> bool:
        """Drop from ``last`` the outputs that cannot stay channels last; True if any was."""
        changed = False
        for node in graph.nodes:
            y = node.outputs[0] if node.outputs else None
            if y is None or id(y) not in last:
                continue
            if not self._keeps(node, kind, last):
                last.discard(id(y))
                changed = True
        return changed

    def _keeps(self, node: Node, kind: dict, last: set) -> bool:
        y = node.outputs[0]
        z = node.inputs[3] if len(node.inputs) > 3 else None
        if kind[id(node)] == "depthwise" and id(node.inputs[0]) not in last:
            return False  # a depthwise output follows its input's layout
        if z is not None and id(z) not in last:
            return False  # the residual must come in the output's layout
        return all(self._reads_it(reader, slot, kind, last) for reader, slot in y.uses())

    def _reads_it(self, reader: Node, slot: int, kind: dict, last: set) -> bool:
        """Whether ``reader`` may read a channels-last value at input ``slot``."""
        if self.any_layout(reader):
            return True
        k = kind.get(id(reader))
        if not k or (k == "depthwise" and id(reader.outputs[0]) not in last):
            return False
        return slot == 0 or (slot == 3 and id(reader.outputs[0]) in last)
