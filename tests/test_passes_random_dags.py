"""Every level on seeded random DAGs of elementwise, transpose, reshape, duplicate and constant
nodes: the graph stays well formed, gets no bigger, and computes what it did (float32
tolerances of test_passes.PASS_TOLS; folding a constant subgraph may round differently)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

from course.passes import LEVELS, optimize
from ir_builders import model
from test_passes import assert_same_outputs, graph_of, reference

SHAPE = (2, 3, 4)


def random_dag(seed: int):
    """Each new node reads one or two earlier values; constants, duplicates and identities are
    common on purpose, so every clean-up pass has something to do."""
    rng = np.random.default_rng(seed)
    values, nodes, inits = ["x"], [], {}

    def const(kind):
        name = f"c{len(inits)}"
        inits[name] = {"one": np.ones(1, np.float32), "zero": np.zeros((3, 1), np.float32),
                       "rand": rng.uniform(0.5, 1.5, SHAPE[-1]).astype(np.float32)}[kind]
        return name

    for i in range(int(rng.integers(6, 14))):
        a = values[int(rng.integers(len(values)))]
        b = values[int(rng.integers(len(values)))]
        out = f"v{i}"
        kind = rng.choice(["relu", "neg", "add", "mul", "mul1", "add0", "transpose2", "identity", "concat1",
                           "const-chain"])
        if kind == "transpose2":
            nodes += [h.make_node("Transpose", [a], [f"{out}t"], perm=[2, 0, 1]),
                      h.make_node("Transpose", [f"{out}t"], [out], perm=[1, 2, 0])]
        elif kind == "const-chain":  # a subgraph of constants only: folds away
            nodes += [h.make_node("Mul", [const("rand"), const("rand")], [f"{out}c"]),
                      h.make_node("Add", [a, f"{out}c"], [out])]
        else:
            op, ins = {"relu": ("Relu", [a]), "neg": ("Neg", [a]), "add": ("Add", [a, b]), "mul": ("Mul", [a, b]),
                       "mul1": ("Mul", [a, const("one")]), "add0": ("Add", [const("zero"), a]),
                       "identity": ("Identity", [a]), "concat1": ("Concat", [a])}[kind]
            nodes.append(h.make_node(op, ins, [out], **({"axis": 0} if op == "Concat" else {})))
        values.append(out)
    for i, n in enumerate(nodes):
        n.name = f"n{i}"
    outs = sorted({values[-1], values[len(values) // 2]} - {"x"})
    return model(nodes, [("x", T.FLOAT, list(SHAPE))], [(o, T.FLOAT, None) for o in outs], inits)


@pytest.mark.parametrize("seed", range(40))
def test_every_level_keeps_random_dags_computing_the_same(seed):
    m = random_dag(seed)
    x = np.random.default_rng(1000 + seed).standard_normal(SHAPE).astype(np.float32)
    want = reference(m, {"x": x})
    sizes = []
    for level in LEVELS:
        g = graph_of(m)
        optimize(g, level)
        g.infer_types()
        g.verify()
        assert [v.name for v in g.outputs] == [o.name for o in m.graph.output]  # the interface stays
        assert_same_outputs(reference(g, {"x": x}), want)
        sizes.append(len(g.nodes))
    assert sizes[0] == len(m.graph.node) and sizes[0] >= sizes[1] >= sizes[2] >= sizes[3]
    kinds = {n.op_type for n in m.graph.node}
    if kinds & {"Identity", "Concat"}:  # removable wherever they sit in these seeds (none links x to an output)
        assert sizes[1] < sizes[0]
