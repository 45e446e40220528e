"""The reordering passes (Transpose sinking through elementwise ops, Concat and Split; Slice
forward) on seeded random graphs of Transposes, Concats, Splits, Slices and elementwise ops on
4-D tensors: at the "extended" level the graph stays well formed, keeps its output names, has
no more nodes and no more Transposes than before, and computes exactly what it did (data only
moves; the elementwise arithmetic is the same, element by element)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import optimize
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, ops, reference

SHAPE = (2, 4, 4, 4)
PERMS = ([0, 2, 3, 1], [0, 3, 1, 2], [0, 1, 3, 2], [0, 2, 1, 3])


class _Builder:
    """Random nodes over values of known shapes; Transposes come in pairs and around Concats and
    Splits often, so the passes have something to move."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.shapes = {"x": SHAPE}
        self.nodes, self.inits = [], {}

    def pick(self):
        return list(self.shapes)[int(self.rng.integers(len(self.shapes)))]

    def emit(self, op, ins, shapes, **attrs):
        outs = [f"v{len(self.nodes)}_{i}" for i in range(len(shapes))]
        self.nodes.append(h.make_node(op, ins, outs, name=f"n{len(self.nodes)}", **attrs))
        self.shapes.update(zip(outs, shapes))
        return outs

    def transpose(self, v, perm=None):
        perm = perm or PERMS[int(self.rng.integers(len(PERMS)))]
        return self.emit("Transpose", [v], [tuple(self.shapes[v][i] for i in perm)], perm=list(perm))[0]

    def elementwise(self, v):
        kind = self.rng.choice(["Relu", "Sigmoid", "Neg", "Add", "Mul"])
        if kind in ("Add", "Mul"):
            shape = tuple(d if self.rng.random() < 0.5 else 1 for d in self.shapes[v])
            c = f"c{len(self.inits)}"
            self.inits[c] = self.rng.uniform(0.5, 1.5, shape).astype(np.float32)
            return self.emit(kind, [v, c] if self.rng.random() < 0.7 else [c, v], [self.shapes[v]])[0]
        return self.emit(str(kind), [v], [self.shapes[v]])[0]

    def concat(self, v):
        axis = int(self.rng.integers(4))
        perm = PERMS[int(self.rng.integers(len(PERMS)))]
        a, b = self.transpose(v, perm), self.transpose(self.elementwise(v), perm)
        s = list(self.shapes[a])
        s[axis] *= 2
        return self.emit("Concat", [a, b], [tuple(s)], axis=axis)[0]

    def split(self, v):
        t = self.transpose(v)
        axes = [a for a in range(1, 4) if self.shapes[t][a] >= 2]
        if not axes:
            return [t]
        axis = int(self.rng.choice(axes))
        n = self.shapes[t][axis]
        sizes = [1, n - 1]
        self.inits[f"s{len(self.inits)}"] = np.array(sizes, np.int64)
        shapes = [tuple(k if i == axis else d for i, d in enumerate(self.shapes[t])) for k in sizes]
        return self.emit("Split", [t, f"s{len(self.inits) - 1}"], shapes, axis=axis)

    def slice(self, v):
        axis = int(self.rng.integers(4))
        n = self.shapes[v][axis]
        start, step = int(self.rng.integers(n)), int(self.rng.choice([1, 2]))
        for name, val in (("st", start), ("en", n), ("ax", axis), ("sp", step)):
            self.inits[f"{name}{len(self.inits)}"] = np.array([val], np.int64)
        names = list(self.inits)[-4:]
        s = list(self.shapes[v])
        s[axis] = len(range(start, n, step))
        return self.emit("Slice", [self.elementwise(v), *names], [tuple(s)])[0]


def random_graph(seed: int):
    b = _Builder(seed)
    for _ in range(int(b.rng.integers(4, 9))):
        v = b.pick()
        kind = b.rng.choice(["pair", "concat", "split", "slice", "elementwise"])
        if kind == "pair":  # a Transpose, elementwise work, then its inverse
            p = PERMS[int(b.rng.integers(len(PERMS)))]
            b.transpose(b.elementwise(b.transpose(v, p)), [int(i) for i in np.argsort(p)])
        elif kind == "split":
            for part in b.split(v):
                b.transpose(b.elementwise(part) if b.rng.random() < 0.5 else part)
        else:
            getattr(b, str(kind))(v)
    read = {i for n in b.nodes for i in n.input}
    outs = [v for v in b.shapes if v not in read and v != "x"]
    return model(b.nodes, [("x", T.FLOAT, list(SHAPE))], [(o, T.FLOAT, None) for o in outs], b.inits)


@pytest.mark.parametrize("seed", range(30))
def test_reordering_passes_keep_random_graphs_computing_the_same(seed):
    m = random_graph(seed)
    x = np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float32)
    want = reference(m, {"x": x})
    g = graph_of(m)
    before = ops(g)
    optimize(g, "extended")
    g.infer_types()
    g.verify()
    assert [v.name for v in g.outputs] == [o.name for o in m.graph.output]
    assert len(g.nodes) <= len(before) and ops(g).count("Transpose") <= before.count("Transpose")
    assert_same_outputs(reference(g, {"x": x}), want, exact=True)


def test_the_random_graphs_exercise_every_reordering():
    from collections import Counter

    from course.passes import PassManager, level_passes

    fired = Counter()
    for seed in range(30):
        pm = PassManager(level_passes("extended"))
        pm.run(graph_of(random_graph(seed)))
        fired.update(r.name for r in pm.report if r.modified)
    for name in ("SinkTransposes", "SinkTransposesThroughConcat", "SinkTransposesThroughSplit", "SliceForward"):
        assert fired[name] >= 3, fired
