"""What lesson 07 (graph passes) needs around the learner's passes, kept out of the notebook.

- ``FunctionPass(fn)``: a function ``graph -> bool`` as a ``Pass`` (what ``PassManager`` and
  ``InferenceSession(passes=[...])`` take).
- ``random_graph(choose, seed)``, ``random_graph_from_seed(seed)`` and the hypothesis strategy
  ``random_graphs()``: seeded random DAGs full of work for the clean-up passes (dead branches,
  constant subgraphs, shape subgraphs, duplicates, neutral elements, Identity / Dropout,
  Transpose pairs, Split and Concat, an initializer a feed may override) -- and traps where a
  careless rewrite changes a shape or a result.
- ``exporter_style(model)``: a clean model rewritten the way converters and exporters write
  them (channels-last Transposes around every layout op, ``Flatten`` as a
  Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain, ``Constant`` nodes per use, Identity
  on weights, an inference Dropout, unused initializers).

Its pictures (``draw_graph``, ``plot_op_counts``) are in ``course.viz.graph``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from course.ir.graph import Graph
from course.ir.onnx_import import from_onnx
from course.passes.base import Pass, PassResult

OPSET = 17
SHAPE = (2, 3, 4, 5)  # every dim different: a wrong permutation or broadcast shows
UNARY = ("Relu", "Neg", "Sigmoid", "Tanh", "Abs")


class FunctionPass(Pass):
    """``fn(graph) -> bool`` (True when it changed the graph) as a ``Pass`` named ``name``."""

    def __init__(self, fn: Callable[[Graph], bool], name: Optional[str] = None):
        super().__init__()
        self.fn = fn
        self._name = name or getattr(fn, "__name__", "pass")

    @property
    def name(self) -> str:
        return self._name

    def call(self, graph: Graph) -> PassResult:
        return PassResult(graph, bool(self.fn(graph)))


# --- random DAGs ---------------------------------------------------------------------------------
@dataclass
class RandomGraph:
    """A random model, the feeds to run it, and the initializer a feed may override (or None)."""

    model: onnx.ModelProto
    feeds: dict
    overridable: Optional[str] = None

    def graph(self) -> Graph:
        """A fresh ``Graph`` of the model (passes edit graphs in place: take one per use)."""
        return from_onnx(self.model)

    def overriding_feeds(self) -> dict:
        """The feeds, plus a value of its own for the feedable initializer when there is one."""
        feeds = dict(self.feeds)
        if self.overridable is not None:
            t = next(t for t in self.model.graph.initializer if t.name == self.overridable)
            feeds[self.overridable] = np.full(tuple(t.dims), -3.0, np.float32)
        return feeds


class _Dag:
    """Builds one random model step by step; ``choose(n)`` picks an int in [0, n)."""

    def __init__(self, choose: Callable[[int], int], seed: int, symbolic: bool):
        self.choose, self.rng = choose, np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.shape: dict[str, tuple] = {"x": SHAPE}
        self.values = ["x"]  # values later nodes may read
        self.symbolic = symbolic
        self.overridable: Optional[str] = None

    def pick(self, seq):
        return seq[self.choose(len(seq)) if len(seq) > 1 else 0]

    def value(self, shape=None) -> str:
        pool = [v for v in self.values if shape is None or self.shape[v] == shape]
        return self.pick(pool)

    def const(self, array, dtype=np.float32) -> str:
        name = f"c{len(self.inits)}"
        self.inits[name] = np.array(array, dtype=dtype)
        return name

    def data(self, shape) -> np.ndarray:
        return self.rng.uniform(0.5, 1.5, shape).astype(np.float32)

    def op(self, op_type: str, inputs: Sequence[str], shapes: Sequence[Optional[tuple]], **attrs) -> list[str]:
        """Add a node with one output per entry of ``shapes`` (None: an omitted output)."""
        k = len(self.nodes)
        outs = [f"v{k}" if len(shapes) == 1 else (f"v{k}_{i}" if s is not None else "") for i, s in enumerate(shapes)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=f"n{k}", **attrs))
        for o, s in zip(outs, shapes):
            if o:
                self.shape[o] = s
        return [o for o in outs if o]

    def add(self, op_type: str, inputs: Sequence[str], shape: tuple, **attrs) -> str:
        out = self.op(op_type, inputs, [shape], **attrs)[0]
        self.values.append(out)
        return out

    # --- one kind of step each -----------------------------------------------------------------
    def unary(self, a):
        self.add(self.pick(UNARY), [a], self.shape[a])

    def binary(self, a):
        s = self.shape[a]
        b = self.value(s)
        self.add(self.pick(("Add", "Sub", "Mul")), [a, b], s)

    def binary_const(self, a):
        s = self.shape[a]
        c = self.const(self.data(self.pick([(), (1,), s[-1:], s])))
        op = self.pick(("Add", "Sub", "Mul", "Div"))
        first = op != "Div" and self.choose(2) == 1
        self.add(op, [c, a] if first else [a, c], s)

    def neutral(self, a):
        """x+0, 0+x, x-0, x*1, 1*x, x/1 with constants of several shapes; and look-alikes that
        are not no-ops: 0-x, and a neutral constant of a higher rank (the result grows)."""
        s = self.shape[a]
        op, fill, first = self.pick([("Add", 0.0, False), ("Add", 0.0, True), ("Sub", 0.0, False),
                                     ("Mul", 1.0, False), ("Mul", 1.0, True), ("Div", 1.0, False),
                                     ("Sub", 0.0, True)])
        cshape = self.pick([(), (1,), s[-1:], s, (1,) * len(s), (1,) * min(len(s) + 1, 5)])
        out = np.broadcast_shapes(s, cshape)
        c = self.const(np.full(cshape, fill))
        self.add(op, [c, a] if first else [a, c], tuple(out))

    def identity(self, a):
        self.add("Identity", [a], self.shape[a])

    def dropout(self, a):
        s = self.shape[a]
        kind = self.choose(4)
        if kind == 0:
            self.add("Dropout", [a], s)
            return
        ins = [a, self.const(0.25)] + ([self.const(False, np.bool_)] if kind >= 2 else [])
        outs = self.op("Dropout", ins, [s, s if kind >= 2 else None])  # kind 2 and 3: a mask output
        self.values.append(outs[0])
        if kind == 3:  # the mask is used: this Dropout must stay
            m = self.op("Cast", [outs[1]], [s], to=TensorProto.FLOAT)[0]
            self.add("Mul", [outs[0], m], s)

    def _perm(self, r: int) -> list[int]:
        perms = list(itertools.permutations(range(r)))
        return list(self.pick(perms))

    def transpose(self, a):
        s = self.shape[a]
        if self.choose(5) == 0:  # no perm attribute: reverse the axes
            self.add("Transpose", [a], s[::-1])
            return
        p = self._perm(len(s))
        self.add("Transpose", [a], tuple(s[i] for i in p), perm=p)

    def transpose_pair(self, a):
        s = self.shape[a]
        p = self._perm(len(s))
        q = [int(i) for i in np.argsort(p)] if self.choose(2) else self._perm(len(s))
        t = self.add("Transpose", [a], tuple(s[i] for i in p), perm=p)
        self.add("Transpose", [t], tuple(self.shape[t][i] for i in q), perm=q)

    def const_chain(self, a):
        s = self.shape[a]
        cs = self.pick([(), s[-1:]])
        if self.choose(2):
            m = self.op("Mul", [self.const(self.data(cs)), self.const(self.data(cs))], [cs])[0]
        else:
            m = self.op("Constant", [], [cs], value=numpy_helper.from_array(self.data(cs)))[0]
        self.add("Add", [a, m], s)

    def shape_chain(self, a):
        s = self.shape[a]
        sh = self.op("Shape", [a], [(len(s),)])[0]
        if self.choose(2) or len(s) < 2:
            self.add("Reshape", [a, sh], s)
            return
        g = self.op("Gather", [sh, self.const(0, np.int64)], [()], axis=0)[0]
        u = self.op("Unsqueeze", [g, self.const([0], np.int64)], [(1,)])[0]
        t = self.op("Concat", [u, self.const([-1], np.int64)], [(2,)], axis=0)[0]
        self.add("Reshape", [a, t], (s[0], int(np.prod(s[1:]))))

    def duplicate(self, a):
        """A copy of an earlier node (same op, attributes and inputs): work for CSE."""
        if not self.nodes:
            return self.unary(a)
        src = self.pick(self.nodes)
        outs = [self.shape.get(o) if o else None for o in src.output]
        made = self.op(src.op_type, list(src.input), outs,
                       **{at.name: helper.get_attribute_value(at) for at in src.attribute})
        self.values.extend(m for o, m in zip([o for o in src.output if o], made) if o in self.values)

    def split(self, a):
        s = self.shape[a]
        axes = [i for i, d in enumerate(s) if d % 2 == 0]
        if not axes:
            return self.concat(a)
        ax = self.pick(axes)
        half = tuple(d // 2 if i == ax else d for i, d in enumerate(s))
        outs = self.op("Split", [a, self.const([s[ax] // 2] * 2, np.int64)], [half, half], axis=ax)
        self.values.extend(outs[: 1 + self.choose(2)])  # sometimes the second half is never read

    def concat(self, a):
        s = self.shape[a]
        if self.choose(2):
            self.add("Concat", [a], s, axis=0)
        else:
            self.add("Concat", [a, self.value(s)], (2 * s[0],) + s[1:], axis=0)

    def override(self, a):
        if self.overridable is not None:
            return self.binary_const(a)
        self.overridable = self.const(self.data(self.shape[a][-1:]))
        self.add("Add", [a, self.overridable], self.shape[a])

    def constant_of_shape(self, a):
        s = self.shape[a]
        c = self.op("ConstantOfShape", [self.const(list(s[-2:]), np.int64)], [s[-2:]],
                    value=numpy_helper.from_array(np.array([0.5], np.float32)))[0]
        self.add("Mul", [a, c], s)


STEPS = ("unary", "unary", "binary", "binary_const", "neutral", "neutral", "identity", "dropout",
         "transpose", "transpose_pair", "const_chain", "shape_chain", "duplicate", "split", "concat",
         "override", "constant_of_shape")


def random_graph(choose: Callable[[int], int], seed: int = 0, max_steps: int = 12) -> RandomGraph:
    """A random model: ``choose(n)`` (an int in [0, n)) decides the structure, ``seed`` the data.

    Input ``x`` is float32 ``(2, 3, 4, 5)`` (sometimes with a symbolic batch ``"N"``, so Shape
    cannot fold); an unused second input ``aux`` is part of the interface. The outputs are the
    last value and up to two others (one of them may be an Identity's output).
    """
    d = _Dag(choose, seed, symbolic=choose(4) == 0)
    for _ in range(2 + choose(max_steps - 1)):
        a = d.value()
        getattr(d, STEPS[choose(len(STEPS))])(a)
    candidates = [v for v in d.values if v != "x"]
    if not candidates:
        d.unary("x")
        candidates = [d.values[-1]]
    outs = [candidates[-1]] + [v for v in (d.pick(candidates) for _ in range(choose(3))) if v != candidates[-1]]
    outs = list(dict.fromkeys(outs))
    first = ["N" if d.symbolic else SHAPE[0], *SHAPE[1:]]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, first),
              helper.make_tensor_value_info("aux", TensorProto.FLOAT, [4, 5])]
    if d.overridable is not None:
        inputs.append(helper.make_tensor_value_info(d.overridable, TensorProto.FLOAT, list(d.inits[d.overridable].shape)))
    g = helper.make_graph(d.nodes, "random_dag", inputs,
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, [None if d.symbolic else n for n in d.shape[o]])
                           for o in outs],
                          [numpy_helper.from_array(a, n) for n, a in d.inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    x = np.random.default_rng(seed + 1).uniform(-1, 1, SHAPE).astype(np.float32)
    aux = np.zeros((4, 5), np.float32)
    return RandomGraph(model, {"x": x, "aux": aux}, d.overridable)


def random_graph_from_seed(seed: int, max_steps: int = 12) -> RandomGraph:
    """``random_graph`` with the structure drawn from numpy's generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    return random_graph(lambda n: int(rng.integers(n)) if n > 1 else 0, seed, max_steps)


def random_graphs(max_steps: int = 12):
    """A hypothesis strategy of ``RandomGraph``s (the test profile makes it deterministic): half
    drawn decision by decision (hypothesis explores the structure), half from a drawn seed (every
    example a different graph)."""
    from hypothesis import strategies as st

    @st.composite
    def drawn(draw):
        seed = draw(st.integers(0, 2**31 - 2))
        return random_graph(lambda n: draw(st.integers(0, n - 1)) if n > 1 else 0, seed, max_steps)

    seeded = st.integers(0, 2**31 - 2).map(lambda seed: random_graph_from_seed(seed, max_steps))
    return st.one_of(seeded, drawn())


# --- a clean model as exporters write it -------------------------------------------------------
LAYOUT_OPS = frozenset({"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "LRN"})
CHANNEL_OPS = frozenset({"Concat", "Split"})  # layout ops too when they work on the channel axis
ELEMENTWISE = frozenset({"Relu", "Clip", "Add", "Sub", "Mul", "Sigmoid", "Tanh", "LeakyRelu"})
TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
SMALL_CONSTANT = 16  # scalars and int64 vectors up to this size become a Constant node per use


class _Exporter:
    """Rewrites the nodes of a clean NCHW model one by one (see ``exporter_style``)."""

    def __init__(self, model: onnx.ModelProto):
        self.g = model.graph
        self.inits = {t.name: t for t in self.g.initializer}
        self.rank = self._ranks(model)
        self.nodes: list[onnx.NodeProto] = []
        self.nhwc: dict[str, str] = {}  # NCHW value -> the NHWC tensor that stands for it
        self.count = 0

    @staticmethod
    def _ranks(model: onnx.ModelProto) -> dict[str, int]:
        inferred = onnx.shape_inference.infer_shapes(model)
        vis = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
        return {vi.name: len(vi.type.tensor_type.shape.dim) for vi in vis if vi.type.tensor_type.HasField("shape")}

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}__x{self.count}"

    def emit(self, op_type: str, inputs, outputs, **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=self.fresh(op_type), **attrs))

    def nchw(self, v: str) -> str:
        """A name holding ``v`` in NCHW: a new Transpose per reader (converters write one each)."""
        if v not in self.nhwc:
            return self.constant(v)
        out = self.fresh(f"{v}_nchw")
        self.emit("Transpose", [self.nhwc[v]], [out], perm=TO_NCHW)
        return out

    def constant(self, v: str) -> str:
        """Small initializers become a Constant node per use (as torch.onnx writes shapes and scalars)."""
        t = self.inits.get(v)
        if t is None or int(np.prod(t.dims, dtype=np.int64)) > SMALL_CONSTANT or \
                (len(t.dims) > 0 and t.data_type != TensorProto.INT64):
            return v
        out = self.fresh(v)
        self.emit("Constant", [], [out], value=t)
        return out

    def to_nhwc(self, v: str) -> None:
        out = self.fresh(f"{v}_nhwc")
        self.emit("Transpose", [v], [out], perm=TO_NHWC)
        self.nhwc[v] = out

    def is_layout(self, n: onnx.NodeProto) -> bool:
        if n.op_type in CHANNEL_OPS:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
            return axis == 1 and self.rank.get(n.output[0]) == 4
        return n.op_type in LAYOUT_OPS and self.rank.get(n.output[0]) == 4

    def node(self, n: onnx.NodeProto) -> None:
        data = [v for v in n.input if v and v not in self.inits]
        if self.is_layout(n) or n.op_type not in ELEMENTWISE or not data or \
                not all(v in self.nhwc for v in data):
            ins = [self.nchw(v) if v else "" for v in n.input]
            self.nodes.append(helper.make_node(n.op_type, ins, list(n.output), name=n.name,
                                               domain=n.domain, **_attrs(n)))
            for o in n.output:  # a converter keeps channels-last tensors between layout ops
                if o and self.rank.get(o) == 4 and (self.is_layout(n) or n.op_type in ELEMENTWISE):
                    self.to_nhwc(o)
            return
        # elementwise on NHWC tensors: the op itself runs channels-last
        ins = [self.nhwc.get(v, self.constant(v)) if v else "" for v in n.input]
        outs = [self.fresh(f"{o}_nhwc") for o in n.output]
        self.nodes.append(helper.make_node(n.op_type, ins, outs, name=n.name, **_attrs(n)))
        self.nhwc.update(zip(n.output, outs))


def _attrs(n: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


def _flatten_as_shape_chain(ex: _Exporter, n: onnx.NodeProto) -> bool:
    """torch.onnx's ``x.view(x.size(0), -1)``: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    if n.op_type != "Flatten" or _attrs(n).get("axis", 1) != 1:
        return False
    x = ex.nchw(n.input[0])
    const = lambda name, arr: ex.emit("Constant", [], [name], value=numpy_helper.from_array(arr))  # noqa: E731
    s, i, g, a, u, m, t = (ex.fresh(f"{n.output[0]}_{k}") for k in ("shape", "idx", "n", "axes", "n1", "m1", "target"))
    ex.emit("Shape", [x], [s])
    const(i, np.array(0, np.int64))
    ex.emit("Gather", [s, i], [g], axis=0)
    const(a, np.array([0], np.int64))
    ex.emit("Unsqueeze", [g, a], [u])
    const(m, np.array([-1], np.int64))
    ex.emit("Concat", [u, m], [t], axis=0)
    ex.emit("Reshape", [x, t], [n.output[0]])
    return True


def _classifier_extras(ex: _Exporter, n: onnx.NodeProto) -> bool:
    """Gemm: its weight through an Identity (a tied parameter) and an inference Dropout before it."""
    if n.op_type != "Gemm" or n.input[1] not in ex.inits:
        return False
    w, x = ex.fresh(f"{n.input[1]}_tied"), ex.fresh(f"{n.input[0]}_dropped")
    ex.emit("Identity", [n.input[1]], [w])
    ex.emit("Dropout", [ex.nchw(n.input[0]), ex.constant(_ratio(ex))], [x])
    ins = [x, w] + [ex.nchw(v) for v in n.input[2:]]
    ex.nodes.append(helper.make_node("Gemm", ins, list(n.output), name=n.name, **_attrs(n)))
    return True


def _ratio(ex: _Exporter) -> str:
    name = "dropout_ratio__export"
    if name not in ex.inits:
        ex.inits[name] = numpy_helper.from_array(np.array(0.1, np.float32), name)
    return name


def exporter_style(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` (NCHW, one input) as a converter from a channels-last framework and an exporter
    would write it; it computes the same outputs with many more nodes.

    Every layout op (Conv, pooling, BatchNormalization, LRN, channel Concat/Split) reads its
    inputs through ``Transpose`` NHWC->NCHW (one per reader) and its output goes back to NHWC;
    elementwise ops between them run on the NHWC tensors. ``Flatten`` becomes a shape subgraph;
    small initializers become one ``Constant`` node per use; the classifier's weight goes through
    an ``Identity`` and its input through an inference ``Dropout``; every BatchNormalization
    leaves an unused ``num_batches_tracked`` initializer behind.
    """
    ex = _Exporter(model)
    for v in model.graph.input:
        if ex.rank.get(v.name) == 4:
            ex.to_nhwc(v.name)
    for n in model.graph.node:
        if not (_flatten_as_shape_chain(ex, n) or _classifier_extras(ex, n)):
            ex.node(n)
    for o in model.graph.output:  # outputs keep their names (and their NCHW layout)
        if o.name in ex.nhwc:
            ex.emit("Transpose", [ex.nhwc[o.name]], [o.name], perm=TO_NCHW)
    inits = list(ex.inits.values())
    inits += [numpy_helper.from_array(np.array(0, np.int64), f"{n.name}.num_batches_tracked")
              for n in model.graph.node if n.op_type == "BatchNormalization"]
    g = helper.make_graph(ex.nodes, model.graph.name, list(model.graph.input), list(model.graph.output), inits)
    out = helper.make_model(g, opset_imports=list(model.opset_import), producer_name="exporter_style")
    out.ir_version = model.ir_version
    return out
