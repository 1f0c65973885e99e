import re
from collections import Counter

import numpy as np
import pytest

from archgraph import ArchGraph, InvalidGraphError, UnknownOpError
from archgraph.mutate import KINDS, add_edge, add_vertex, change_op, random_mutation, remove_edge, remove_vertex

OPS = ("conv(3)", "skip_connect", "max_pool_3x3")


def chain(n: int, **kwargs) -> ArchGraph:
    return ArchGraph([(i, i + 1) for i in range(n - 1)], num_nodes=n, **kwargs)


def kind_of(before: ArchGraph, after: ArchGraph) -> str:
    """Which mutation turned ``before`` into ``after``, read off the vertex and edge counts."""
    dn, de = after.num_nodes - before.num_nodes, after.num_edges - before.num_edges
    return {(0, 1): "add_edge", (0, -1): "remove_edge", (1, 2): "add_vertex", (0, 0): "change_op"}.get(
        (dn, de), "remove_vertex" if dn == -1 else "?")


def random_dag(rng: np.random.Generator, *, on_edges: bool) -> ArchGraph:
    """A random DAG on 2..6 vertices with an op of OPS on every edge (or every vertex)."""
    n = int(rng.integers(2, 7))
    edges = [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < 0.5] or [(0, n - 1)]
    op = lambda: OPS[rng.integers(len(OPS))]  # noqa: E731
    if on_edges:
        return ArchGraph([(u, v, op()) for u, v in edges], num_nodes=n)
    return ArchGraph(edges, num_nodes=n, node_ops={v: op() for v in range(n)})


# --- add_edge ------------------------------------------------------------------------------

def test_add_edge_with_op_returns_a_new_graph():
    g = chain(3)
    h = add_edge(g, 0, 2, "conv(3)")
    assert h.edges == ((0, 1), (0, 2), (1, 2)) and dict(h.edge_ops) == {(0, 2): "conv(3)"}
    assert g.is_identical(chain(3))  # the input is unchanged


def test_add_edge_may_link_isolated_vertices():
    assert add_edge(ArchGraph(num_nodes=3), 2, 0).edges == ((2, 0),)


def test_add_edge_names_the_cycle():
    with pytest.raises(InvalidGraphError) as e:
        add_edge(chain(4), 3, 1)
    assert "edge (3, 1) would close the cycle 3→1→2→3" in str(e.value)
    assert "topological_order" in str(e.value)


def test_add_edge_self_loop():
    with pytest.raises(InvalidGraphError, match="edge \\(1, 1\\) would close the cycle 1→1"):
        add_edge(chain(3), 1, 1)


def test_add_edge_existing():
    with pytest.raises(InvalidGraphError, match=re.escape("edge (0, 1) already exists; change its op with change_op")):
        add_edge(chain(3), 0, 1, "conv(3)")


@pytest.mark.parametrize("u, v", [(0, 3), (-1, 0), (0, 1.0), ("0", 1)])
def test_add_edge_unknown_vertex(u, v):
    with pytest.raises(InvalidGraphError, match="is not in the graph; its vertices are 0..2"):
        add_edge(chain(3), u, v)


def test_add_edge_unknown_op():
    with pytest.raises(UnknownOpError, match="unknown op 'conv3'"):
        add_edge(chain(3), 0, 2, "conv3")


# --- remove_edge ---------------------------------------------------------------------------

def test_remove_edge_drops_its_op_and_keeps_the_vertices():
    g = ArchGraph([(0, 1, "conv(3)"), (1, 2, "skip_connect")])
    h = remove_edge(g, 0, 1)
    assert h.num_nodes == 3 and h.edges == ((1, 2),) and dict(h.edge_ops) == {(1, 2): "skip_connect"}


def test_remove_missing_edge():
    with pytest.raises(InvalidGraphError, match=re.escape("the graph has no edge (1, 0); its edges are [(0, 1)]")):
        remove_edge(chain(2), 1, 0)


def test_remove_then_add_edge_is_the_identity():
    g = ArchGraph([(0, 1, "conv(3)"), (1, 2), (0, 2)])
    assert add_edge(remove_edge(g, 0, 1), 0, 1, "conv(3)").is_identical(g)


# --- add_vertex ----------------------------------------------------------------------------

def test_add_vertex_gets_id_n_with_its_edges_and_op():
    h = add_vertex(chain(3), predecessors=[0, 1], successors=[2], op="max_pool")
    assert h.num_nodes == 4 and h.edges == ((0, 1), (0, 3), (1, 2), (1, 3), (3, 2))
    assert dict(h.node_ops) == {3: "max_pool"} and dict(h.edge_ops) == {}


def test_add_vertex_with_edge_ops():
    h = add_vertex(chain(2), predecessors={0: "conv(3)"}, successors={1: None})
    assert dict(h.edge_ops) == {(0, 2): "conv(3)"} and h.has_edge(2, 1)


def test_add_isolated_vertex():
    h = add_vertex(chain(2))
    assert h.num_nodes == 3 and h.edges == ((0, 1),) and 2 in h.sources and 2 in h.sinks


def test_add_vertex_names_the_cycle():
    with pytest.raises(InvalidGraphError) as e:
        add_vertex(chain(3), predecessors=[2], successors=[0])
    assert "new vertex 3 between predecessor 2 and successor 0 would close the cycle 2→3→0→1→2" in str(e.value)
    with pytest.raises(InvalidGraphError, match="would close the cycle 1→3→1"):
        add_vertex(chain(3), predecessors=[1], successors=[1])


def test_add_vertex_unknown_neighbour():
    with pytest.raises(InvalidGraphError, match="vertex 5 is not in the graph"):
        add_vertex(chain(3), successors=[5])


# --- remove_vertex -------------------------------------------------------------------------

def test_remove_vertex_renumbers_and_carries_ops():
    g = ArchGraph(
        [(0, 1, "conv(3)"), (1, 2), (2, 3, "skip_connect"), (0, 3, "max_pool")],
        node_ops={0: "noise", 1: "dropout", 3: "none"},
    )
    h = remove_vertex(g, 1)
    assert h.num_nodes == 3 and h.edges == ((0, 2), (1, 2))
    assert dict(h.edge_ops) == {(0, 2): "max_pool", (1, 2): "skip_connect"}
    assert dict(h.node_ops) == {0: "noise", 2: "none"}


def test_remove_vertex_inverts_add_vertex():
    rng = np.random.default_rng(1)
    for _ in range(10):
        g = random_dag(rng, on_edges=True)
        h = add_vertex(g, predecessors={0: "conv(3)"}, successors=[g.num_nodes - 1], op="noise")
        assert remove_vertex(h, g.num_nodes).is_identical(g)


def test_remove_the_last_vertex():
    with pytest.raises(InvalidGraphError, match="removing vertex 0 would leave an empty graph"):
        remove_vertex(ArchGraph(num_nodes=1), 0)


def test_remove_unknown_vertex():
    with pytest.raises(InvalidGraphError, match="vertex 3 is not in the graph; its vertices are 0..2"):
        remove_vertex(chain(3), 3)


# --- change_op -----------------------------------------------------------------------------

def test_change_node_and_edge_ops():
    g = ArchGraph([(0, 1, "conv(3)"), (1, 2)], node_ops={2: "noise"})
    assert dict(change_op(g, 2, "none").node_ops) == {2: "none"}
    assert dict(change_op(g, np.int64(0), "none").node_ops) == {0: "none", 2: "noise"}
    assert dict(change_op(g, (1, 2), "skip_connect").edge_ops) == {(0, 1): "conv(3)", (1, 2): "skip_connect"}
    assert dict(change_op(g, [0, 1], "conv(5)").edge_ops) == {(0, 1): "conv(5)"}


def test_change_op_to_none_removes_it():
    g = ArchGraph([(0, 1, "conv(3)")], node_ops={1: "noise"})
    assert change_op(change_op(g, (0, 1), None), 1, None).is_identical(ArchGraph([(0, 1)]))


def test_change_op_validates_the_op():
    with pytest.raises(UnknownOpError, match="unknown op 'sepconv'; known ops: "):
        change_op(chain(2), (0, 1), "sepconv")


def test_change_op_of_missing_elements():
    with pytest.raises(InvalidGraphError, match=re.escape("the graph has no edge (1, 0); add it with add_edge(graph, 1, 0, op)")):
        change_op(chain(2), (1, 0), "conv(3)")
    with pytest.raises(InvalidGraphError, match="vertex 2 is not in the graph"):
        change_op(chain(2), 2, "conv(3)")


@pytest.mark.parametrize("target", ["0", (0, 1, 2), (0.0, 1), None, True])
def test_change_op_needs_a_vertex_or_an_edge(target):
    with pytest.raises(InvalidGraphError, match="change_op takes a vertex id or an edge \\(u, v\\)"):
        change_op(chain(2), target, "conv(3)")


# --- random_mutation -----------------------------------------------------------------------

@pytest.mark.parametrize("on_edges", [True, False])
def test_random_mutation_is_valid_different_and_keeps_ops_complete(on_edges):
    rng = np.random.default_rng(0)
    seen = Counter()
    for _ in range(60):
        g = random_dag(rng, on_edges=on_edges)
        h = random_mutation(g, rng, ops=OPS)
        assert isinstance(h, ArchGraph) and h != g
        seen[kind_of(g, h)] += 1
        elements, ops_at = (h.edges, h.edge_ops) if on_edges else (h.nodes, h.node_ops)
        assert set(ops_at) == set(elements) and set(ops_at.values()) <= set(OPS)
        assert not (h.node_ops if on_edges else h.edge_ops)  # ops stay where they were
    assert set(seen) == set(KINDS)


def test_random_mutation_is_deterministic_for_a_seed():
    g = ArchGraph([(0, 1, "conv(3)"), (1, 2, "skip_connect"), (2, 3, "conv(3)")])
    runs = [[random_mutation(g, np.random.default_rng(seed), ops=OPS) for seed in range(20)] for _ in range(2)]
    assert all(a.is_identical(b) for a, b in zip(*runs))
    assert len({h.to_json() for h in runs[0]}) > 5


def test_random_mutation_draws_kinds_uniformly():
    g = chain(4, edge_ops={(0, 1): "conv(3)"})  # every kind applies
    rng = np.random.default_rng(42)
    counts = Counter(kind_of(g, random_mutation(g, rng, ops=OPS)) for _ in range(250))
    assert set(counts) == set(KINDS)
    assert all(30 <= c <= 70 for c in counts.values()), counts  # 50 expected each


def test_random_mutation_kinds():
    rng = np.random.default_rng(3)
    g = chain(4)
    for _ in range(10):
        assert random_mutation(g, rng, kinds=["add_edge"]).num_edges == 4
        h = random_mutation(g, rng, kinds=("add_vertex",))
        assert h.num_nodes == 5 and h.sources == g.sources and h.sinks == g.sinks
        h = random_mutation(g, rng, kinds=("remove_vertex",))  # inner vertex 1 or 2
        assert any(h.is_identical(remove_vertex(g, v)) for v in (1, 2))


def test_random_mutation_add_edge_follows_topological_order():
    rng = np.random.default_rng(5)
    g = ArchGraph([(3, 2), (2, 1), (1, 0)])
    for _ in range(10):
        (new_edge,) = set(random_mutation(g, rng, kinds=["add_edge"]).edges) - set(g.edges)
        assert new_edge in {(3, 1), (3, 0), (2, 0)}


def test_random_mutation_change_op_changes_exactly_one_op():
    rng = np.random.default_rng(9)
    g = ArchGraph([(0, 1, "conv(3)"), (1, 2, "conv(3)")])
    for _ in range(10):
        h = random_mutation(g, rng, ops=OPS, kinds=["change_op"])
        assert h.edges == g.edges
        assert sum(h.edge_ops[e] != g.edge_ops[e] for e in g.edges) == 1


def test_random_mutation_respects_max_nodes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert random_mutation(chain(3), rng, max_nodes=3).num_nodes <= 3
    with pytest.raises(InvalidGraphError, match="no mutation of kinds \\('add_vertex',\\) applies"):
        random_mutation(chain(3), rng, max_nodes=3, kinds=("add_vertex",))


def test_random_mutation_with_nothing_to_do():
    single = ArchGraph(num_nodes=1)
    with pytest.raises(InvalidGraphError) as e:
        random_mutation(single, np.random.default_rng(0))
    assert "no mutation of kinds" in str(e.value) and "pass ops" in str(e.value)
    with pytest.raises(InvalidGraphError, match="no mutation"):  # no ops to change to
        random_mutation(chain(2), np.random.default_rng(0), kinds=["change_op"])
    with pytest.raises(InvalidGraphError, match="no mutation"):  # the only op is already there
        random_mutation(chain(2, edge_ops={(0, 1): "conv(3)"}), np.random.default_rng(0),
                        ops=["conv(3)"], kinds=["change_op"])


def test_random_mutation_changes_node_ops_of_a_single_vertex():
    h = random_mutation(ArchGraph(num_nodes=1, node_ops={0: "conv(3)"}), np.random.default_rng(0), ops=OPS)
    assert h.num_nodes == 1 and h.node_op(0) in {"skip_connect", "max_pool_3x3"}


def test_random_mutation_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=re.escape("unknown mutation kinds ['flip']; known kinds: add_edge")):
        random_mutation(chain(3), rng, kinds=["flip", "add_edge"])
    with pytest.raises(UnknownOpError, match="unknown op 'conv3'"):
        random_mutation(chain(3), rng, ops=["conv3"])
