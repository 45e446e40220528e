"""Graphs as pictures, with matplotlib only (no graphviz binary), so they render on Colab, Binder
and a plain pip install alike: ``draw_graph`` (boxes placed by depth, coloured by op type) and
``plot_op_counts`` (nodes by op type after each pass of a ``PassManager`` report). Lessons 07
and 08 draw with these."""
from __future__ import annotations

import zlib
from collections import Counter
from typing import Optional, Sequence

import numpy as np

from course.ir.graph import Graph
from course.ir.onnx_import import from_onnx
from course.passes.base import PassRecord

COLORS = {"Conv": "#4c72b0", "FusedConv": "#355a94", "BatchNormalization": "#dd8452", "Relu": "#55a868",
          "Clip": "#6fbf73", "Add": "#c44e52", "Mul": "#e17c80", "Sub": "#b0474b", "Div": "#f0a3a6",
          "Transpose": "#8172b3", "Constant": "#bbbbbb", "Identity": "#937860", "Dropout": "#b79b7f",
          "Shape": "#da8bc3", "Gather": "#e7a9d3", "Unsqueeze": "#c77cb0", "Concat": "#ccb974",
          "Split": "#a89a4e", "Reshape": "#64b5cd", "Flatten": "#8fcde0", "Gemm": "#2f4f4f",
          "MatMul": "#476b6b", "MaxPool": "#9ccb86", "AveragePool": "#b7dba6", "GlobalAveragePool": "#7fb069",
          "LRN": "#d9c8a9", "Sigmoid": "#a6cee3", "Tanh": "#1f78b4", "Neg": "#fb9a99", "Abs": "#fdbf6f",
          "Cast": "#cab2d6", "ConstantOfShape": "#999999"}


def op_color(op_type: str) -> str:
    """A fixed colour per op type (the same in every picture of the lesson)."""
    if op_type in COLORS:
        return COLORS[op_type]
    import matplotlib

    return matplotlib.colormaps["tab20"](zlib.crc32(op_type.encode()) % 20)


def _depths(graph: Graph) -> dict[int, int]:
    """Longest path from a graph input; nodes fed by constants only sit just before their first
    reader (a Constant node far from where it is used would draw a long edge across the graph)."""
    depth: dict[int, int] = {}
    floating: list = []
    floating_ids: set[int] = set()
    for n in graph.nodes:
        preds = [v.producer() for v in n.inputs if v is not None and v.producer() is not None]
        reads_input = any(v is not None and any(v is i for i in graph.inputs) for v in n.inputs)
        if not reads_input and all(id(p) in floating_ids for p in preds):
            floating.append(n)
            floating_ids.add(id(n))
        depth[id(n)] = 1 + max((depth[id(p)] for p in preds if id(p) in depth), default=-1)
    for n in reversed(floating):
        readers = [depth[id(u)] for v in n.outputs if v is not None for u, _ in v.uses() if id(u) in depth]
        if readers:
            depth[id(n)] = min(readers) - 1
    return depth


def layered_layout(graph: Graph) -> dict[int, tuple[float, float]]:
    """``{id(node): (x, y)}``: x is the node's depth (longest path from a graph input), and
    nodes of one depth are ordered by the mean height of their producers (fewer crossings)."""
    depth = _depths(graph)
    layers: dict[int, list] = {}
    for n in graph.nodes:
        layers.setdefault(depth[id(n)], []).append(n)
    pos: dict[int, tuple[float, float]] = {}
    for d in sorted(layers):
        def height(n):
            ys = [pos[id(v.producer())][1] for v in n.inputs
                  if v is not None and v.producer() is not None and id(v.producer()) in pos]
            return sum(ys) / len(ys) if ys else 0.0
        row = sorted(layers[d], key=height)
        for i, n in enumerate(row):
            pos[id(n)] = (float(d), i - (len(row) - 1) / 2)
    return pos


def draw_graph(graph, ax=None, title: Optional[str] = None, labels: Optional[bool] = None):
    """Draw a ``Graph`` (or an ONNX model): one box per node, coloured by op type and placed by
    depth left to right, with an arrow per producer -> reader edge. ``labels`` (default: fewer
    than 60 nodes) writes the op type in each box; otherwise a legend names the colours."""
    import matplotlib.pyplot as plt

    g = graph if isinstance(graph, Graph) else from_onnx(graph)
    ax = ax or plt.gca()
    pos = layered_layout(g)
    labels = len(g.nodes) < 60 if labels is None else labels
    for n in g.nodes:
        x1, y1 = pos[id(n)]
        for v in n.inputs:
            p = None if v is None else v.producer()
            if p is None or id(p) not in pos:
                continue
            x0, y0 = pos[id(p)]
            if labels:  # an arrow from producer to reader, stopping short of the boxes
                ax.annotate("", (x1 - 0.22, y1), (x0 + 0.22, y0), zorder=1,
                            arrowprops=dict(arrowstyle="->", color="#888888", lw=0.7, shrinkA=0, shrinkB=0))
            else:
                ax.plot([x0, x1], [y0, y1], color="#999999", lw=0.6, zorder=1)
    outputs = {id(v.producer()) for v in g.outputs if v.producer() is not None}
    for n in g.nodes:
        x, y = pos[id(n)]
        edge = "black" if id(n) in outputs else "none"
        if labels:
            label = n.op_type + ("\n(NHWC)" if n.domain == "course.nhwc" else "")
            ax.text(x, y, label, ha="center", va="center", fontsize=7, zorder=2,
                    bbox=dict(boxstyle="round,pad=0.25", fc=op_color(n.op_type), ec=edge, alpha=0.9))
        else:
            ax.scatter([x], [y], s=30, color=op_color(n.op_type), edgecolors=edge, zorder=2)
    if not labels:
        kinds = sorted({n.op_type for n in g.nodes})
        handles = [plt.Line2D([], [], marker="o", ls="", color=op_color(k), label=k) for k in kinds]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    ax.set_title(title or f"{g.name}: {len(g.nodes)} nodes", fontsize=9)
    if pos:  # texts and arrows do not widen the data limits: set them from the layout
        xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
        ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
        ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.axis("off")
    return ax


def op_count_stages(records: Sequence[PassRecord]) -> list[tuple[str, Counter]]:
    """``[(label, op counts)]``: the graph as built, then after each pass run that changed it."""
    if not records:
        return []
    stages = [("as built", Counter(records[0].before))]
    for r in records:
        if r.modified:
            stages.append((f"{r.name} (round {r.round})", Counter(r.after)))
    return stages


def plot_op_counts(records: Sequence[PassRecord], ax=None, title: str = "nodes by op type after each pass"):
    """Stacked bars: how many nodes of each op type the graph has as built and after every pass
    run (``PassRecord``s, as a pass manager's report keeps them) that changed it."""
    import matplotlib.pyplot as plt

    stages = op_count_stages(records)
    ax = ax or plt.gca()
    kinds = sorted({k for _, c in stages for k in c}, key=lambda k: -max(c.get(k, 0) for _, c in stages))
    bottom = np.zeros(len(stages))
    for k in kinds:
        counts = np.array([c.get(k, 0) for _, c in stages], dtype=float)
        ax.barh(range(len(stages)), counts, left=bottom, color=op_color(k), label=k, height=0.7)
        bottom += counts
    for i, total in enumerate(bottom):
        ax.text(total + 1, i, f"{int(total)}", va="center", fontsize=8)
    ax.set_yticks(range(len(stages)), [label for label, _ in stages], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("nodes")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return ax
