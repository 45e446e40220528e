"""Graph / Node / Value: use-def links, editing, topological sort, cycles, verify."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from course.errors import DanglingValueError, GraphCycleError, ModelError
from course.ir import Graph, Node, TensorType, Value

F32 = TensorType(np.float32, (2,))


def chain():
    """x -> a(Relu) -> b(Neg) -> y, plus a second reader of a's output (c(Abs) -> z)."""
    x = Value("x", F32)
    a = Node("Relu", [x], ["t"], name="a")
    b = Node("Neg", [a.outputs[0]], ["y"], name="b")
    c = Node("Abs", [a.outputs[0]], ["z"], name="c")
    g = Graph(inputs=[x], outputs=[b.outputs[0], c.outputs[0]], nodes=[a, b, c], opset_imports={"": 17})
    return g, x, a, b, c


def test_use_def_links():
    g, x, a, b, c = chain()
    t = a.outputs[0]
    assert t.producer() is a and x.producer() is None
    assert t.uses() == [(b, 0), (c, 0)]
    assert x.uses() == [(a, 0)]
    assert b.outputs[0].uses() == []  # a graph output is not a node use


def test_uses_only_count_nodes_in_a_graph():
    x = Value("x", F32)
    n = Node("Relu", [x], ["y"], name="n")
    assert x.uses() == []  # detached node
    g = Graph(inputs=[x], outputs=[n.outputs[0]], nodes=[n])
    assert x.uses() == [(n, 0)]
    g.remove(n, force=True)
    assert x.uses() == [] and n.graph is None


def test_set_input_moves_the_use():
    g, x, a, b, c = chain()
    b.set_input(0, x)
    assert x.uses() == [(a, 0), (b, 0)]
    assert a.outputs[0].uses() == [(c, 0)]


def test_value_cannot_have_two_producers():
    n = Node("Relu", [], ["y"], name="n")
    with pytest.raises(ValueError, match="already produced by node 'n'"):
        Node("Neg", [], [n.outputs[0]], name="m")


def test_insert_before_after_and_append_keep_order_and_links():
    g, x, a, b, c = chain()
    t = a.outputs[0]
    n1 = Node("Sigmoid", [x], ["s1"], name="n1")
    n2 = Node("Tanh", [t], ["s2"], name="n2")
    g.insert_before(a, n1)
    g.insert_after(a, [n2])
    n3 = Node("Exp", [t], ["s3"], name="n3")
    g.append(n3)
    assert [n.name for n in g] == ["n1", "a", "n2", "b", "c", "n3"]
    assert x.uses() == [(a, 0), (n1, 0)]
    assert t.uses() == [(b, 0), (c, 0), (n2, 0), (n3, 0)]
    g.verify(check_types=False)


def test_insert_a_node_twice_is_refused():
    g, x, a, b, c = chain()
    with pytest.raises(ValueError, match="already in a graph"):
        g.append(a)


def test_remove_refuses_used_outputs_unless_forced():
    g, x, a, b, c = chain()
    with pytest.raises(ModelError, match=r"'a' \(Relu\).*'t' is still used by 'b', 'c'"):
        g.remove(a)
    with pytest.raises(ModelError, match=r"'b'.*'y' is a graph output"):
        g.remove(b)
    assert len(g) == 3  # nothing changed by the refusals
    g.remove(a, force=True)
    with pytest.raises(DanglingValueError, match=r"node 'b' \(Neg\) reads 't'"):
        g.verify(check_types=False)


def test_replace_all_uses_with_then_remove():
    g, x, a, b, c = chain()
    t = a.outputs[0]
    g.replace_all_uses_with(t, x)
    assert t.uses() == [] and x.uses() == [(a, 0), (b, 0), (c, 0)]
    g.remove(a)
    g.verify(check_types=False)
    assert [n.name for n in g] == ["b", "c"]


def test_replace_all_uses_with_graph_outputs_only_on_request():
    g, x, a, b, c = chain()
    y = b.outputs[0]
    g.replace_all_uses_with(y, x)
    assert g.outputs[0] is y
    g.replace_all_uses_with(y, x, replace_graph_outputs=True)
    assert g.outputs[0] is x and g.outputs[1] is c.outputs[0]


def test_sort_is_kahn_with_ties_in_original_order():
    x = Value("x", F32)
    p = Node("Relu", [x], ["p"], name="p")
    q = Node("Neg", [x], ["q"], name="q")
    r = Node("Add", [p.outputs[0], q.outputs[0]], ["r"], name="r")
    s = Node("Abs", [x], ["s"], name="s")
    g = Graph(inputs=[x], outputs=[r.outputs[0], s.outputs[0]], nodes=[r, s, q, p])
    g.sort()
    # ready at start: s(1), q(2), p(3) -> s first, then q, p; r once both are done
    assert [n.name for n in g] == ["s", "q", "p", "r"]
    g.sort()
    assert [n.name for n in g] == ["s", "q", "p", "r"]  # a sorted graph stays as it is
    g.verify(check_types=False)


def test_cycle_is_reported_with_its_nodes():
    x = Value("x", F32)
    a = Node("Add", [x, None], ["a"], name="A")
    b = Node("Relu", [a.outputs[0]], ["b"], name="B")
    c = Node("Neg", [b.outputs[0]], ["c"], name="C")
    d = Node("Abs", [x], ["d"], name="D")  # not on the cycle
    a.set_input(1, c.outputs[0])
    g = Graph(inputs=[x], outputs=[d.outputs[0]], nodes=[d, a, b, c])
    for check in (g.sort, lambda: g.verify(check_types=False)):
        with pytest.raises(GraphCycleError) as e:
            check()
        msg = str(e.value)
        assert all(f"'{n}'" in msg for n in "ABC") and "'D'" not in msg
    assert [n.name for n in g] == ["D", "A", "B", "C"]  # a failed sort leaves the order alone


def test_self_loop_is_a_cycle():
    n = Node("Relu", [], ["y"], name="loop")
    n._inputs = [n.outputs[0]]
    g = Graph(outputs=[n.outputs[0]], nodes=[n])
    with pytest.raises(GraphCycleError, match="'loop'"):
        g.sort()


def test_verify_topological_order():
    g, x, a, b, c = chain()
    g._nodes = [b, a, c]
    with pytest.raises(ModelError, match=r"node 'b' \(Neg\) reads 't'.*before node 'a'"):
        g.verify(check_types=False)
    g.sort()
    g.verify(check_types=False)


def test_verify_duplicate_names():
    g, x, a, b, c = chain()
    c.outputs[0].name = "y"
    with pytest.raises(ModelError, match=r"duplicate value name 'y' \(output of node 'c' \(Abs\)\)"):
        g.verify(check_types=False)
    g, x, a, b, c = chain()
    c.name = "a"
    with pytest.raises(ModelError, match=r"duplicate node name 'a' \(Abs\)"):
        g.verify(check_types=False)


def test_verify_dangling_graph_output_and_types():
    g, x, a, b, c = chain()
    g.outputs.append(Value("ghost", F32))
    with pytest.raises(DanglingValueError, match="graph output 'ghost'"):
        g.verify(check_types=False)
    g, x, a, b, c = chain()
    with pytest.raises(ModelError, match=r"output 't' of node 'a' \(Relu\) has no type"):
        g.verify()


def test_initializers_and_overridable_inputs():
    g, x, a, b, c = chain()
    w = g.add_initializer("w", np.ones(2, np.float32))
    assert w.type == TensorType(np.float32, (2,)) and not g.is_overridable(w)
    g.inputs.append(w)
    assert g.is_overridable(w)
    assert [v.name for v in g.values()] == ["x", "w", "t", "y", "z"]


@settings(max_examples=40, derandomize=True)
@given(st.data())
def test_sort_gives_a_valid_order_for_any_shuffled_dag(data):
    n = data.draw(st.integers(1, 12))
    x = Value("x", F32)
    nodes, avail = [], [x]
    for i in range(n):  # each node reads 1-2 earlier values: a DAG by construction
        ins = data.draw(st.lists(st.sampled_from(avail), min_size=1, max_size=2))
        node = Node("Add", ins, [f"v{i}"], name=f"n{i}")
        nodes.append(node)
        avail.append(node.outputs[0])
    perm = data.draw(st.permutations(nodes))
    g = Graph(inputs=[x], outputs=[nodes[-1].outputs[0]], nodes=perm)
    g.sort()
    g.verify(check_types=False)
    pos = {id(nd): i for i, nd in enumerate(g)}
    for nd in g:  # Kahn, smallest original index first: every node waits only on producers
        for v in nd.inputs:
            if v.producer() is not None:
                assert pos[id(v.producer())] < pos[id(nd)]
    again = list(g)
    g.sort()
    assert list(g) == again
