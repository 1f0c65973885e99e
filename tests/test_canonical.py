import itertools

import numpy as np
import pytest

from archgraph import ArchGraph
from graph_oracles import is_topological, isomorphic
from archgraph.canonical import _graph_of, _key_of, canonical_form, canonical_graph
from archgraph.generate import random_dag

OPS = ("conv(3)", "skip_connect")


def renamed(graph: ArchGraph, rng: np.random.Generator) -> ArchGraph:
    """The same graph, ops included, with its vertices renumbered at random."""
    name = rng.permutation(graph.num_nodes).tolist()
    return ArchGraph([(name[u], name[v], graph.edge_op(u, v)) for u, v in graph.edges], num_nodes=graph.num_nodes,
                     node_ops={name[v]: op for v, op in graph.node_ops.items()})


def with_random_ops(graph: ArchGraph, rng: np.random.Generator) -> ArchGraph:
    pick = lambda: OPS[rng.integers(2)] if rng.random() < 0.7 else None  # noqa: E731
    return ArchGraph([(u, v, pick()) for u, v in graph.edges], num_nodes=graph.num_nodes,
                     node_ops={v: pick() for v in graph.nodes})


def disjoint_copies(graph: ArchGraph, k: int) -> ArchGraph:
    """``k`` disjoint copies of ``graph``, ops included."""
    n = graph.num_nodes
    return ArchGraph([(u + i * n, v + i * n, graph.edge_op(u, v)) for i in range(k) for u, v in graph.edges],
                     num_nodes=k * n, node_ops={v + i * n: op for i in range(k) for v, op in graph.node_ops.items()})


def test_canonical_graph_is_identical_for_renumbered_graphs_and_topological():
    rng = np.random.default_rng(1)
    for _ in range(40):
        g = with_random_ops(random_dag(int(rng.integers(1, 9)), rng, edge_prob=rng.uniform(0.1, 0.9)), rng)
        c = canonical_graph(g)
        assert is_topological(c) and isomorphic(c, g)
        assert canonical_graph(renamed(g, rng)).is_identical(c)


def test_canonical_form_equal_exactly_for_isomorphic_graphs():
    rng = np.random.default_rng(2)
    # few vertices, few ops: many isomorphic pairs among the non-isomorphic ones
    graphs = [with_random_ops(random_dag(int(rng.integers(3, 6)), rng, edge_prob=0.4), rng) for _ in range(120)]
    graphs += [renamed(g, rng) for g in graphs[:40]]
    forms = [canonical_form(g) for g in graphs]
    equal_pairs = 0
    for (a, fa), (b, fb) in itertools.combinations(zip(graphs, forms), 2):
        if a.num_nodes == b.num_nodes and a.num_edges == b.num_edges:
            assert (fa == fb) == isomorphic(a, b)
            equal_pairs += fa == fb
    assert equal_pairs > 40


def test_canonical_form_is_the_json_of_the_canonical_graph():
    rng = np.random.default_rng(4)
    for _ in range(20):
        g = with_random_ops(random_dag(int(rng.integers(1, 12)), rng, edge_prob=0.4), rng)
        assert canonical_form(g) == canonical_graph(g).to_json(sort_keys=True, separators=(",", ":"))
        assert _graph_of(_key_of(g)).is_identical(canonical_graph(g))


@pytest.mark.parametrize("graph", [
    ArchGraph([], num_nodes=6),                                      # all vertices twins
    ArchGraph([(0, 1), (2, 3), (4, 5)]),                             # refinement alone cannot order the copies
    ArchGraph([(0, 1), (1, 2), (3, 4), (4, 5), (0, 4), (3, 1)]),     # crossed chains
    ArchGraph([(0, v) for v in range(1, 7)] + [(v, 7) for v in range(1, 7)]),  # six parallel branches
    disjoint_copies(ArchGraph([(0, 1)]), 20),                        # many copies: pruned by automorphisms
    disjoint_copies(ArchGraph([(0, 1), (1, 2), (3, 4), (4, 5), (0, 4), (3, 1)]), 4),
    disjoint_copies(ArchGraph([(0, 1, "conv(3)"), (0, 2), (1, 3), (2, 3)], node_ops={3: "skip_connect"}), 5),
])
def test_canonical_form_of_symmetric_graphs(graph):
    rng = np.random.default_rng(3)
    forms = {canonical_form(renamed(graph, rng)) for _ in range(10)}
    assert forms == {canonical_form(graph)}


def test_canonical_form_of_disjoint_copies_agrees_with_networkx():
    # unions of copies of small random components, renamed and perturbed by one edge: many
    # automorphisms, and many pairs that differ by little
    rng = np.random.default_rng(5)
    pairs = equal = 0
    for _ in range(40):
        parts = [with_random_ops(random_dag(int(rng.integers(1, 4)), rng, edge_prob=0.6), rng) for _ in range(2)]
        graph = ArchGraph([], num_nodes=1)
        for part in (parts[int(rng.integers(2))] for _ in range(int(rng.integers(2, 5)))):
            n = graph.num_nodes
            graph = ArchGraph([*((u, v, graph.edge_op(u, v)) for u, v in graph.edges),
                               *((u + n, v + n, part.edge_op(u, v)) for u, v in part.edges)],
                              num_nodes=n + part.num_nodes,
                              node_ops={**graph.node_ops, **{v + n: op for v, op in part.node_ops.items()}})
        u, v = sorted(rng.choice(graph.num_nodes, 2, replace=False).tolist())
        flipped = set(graph.edges) ^ {(u, v)}
        perturbed = ArchGraph(sorted(flipped), num_nodes=graph.num_nodes, node_ops=graph.node_ops,
                              edge_ops={e: op for e, op in graph.edge_ops.items() if e in flipped})
        family = [graph, renamed(graph, rng), perturbed, renamed(perturbed, rng)]
        for a, b in itertools.combinations(family, 2):
            same = canonical_form(a) == canonical_form(b)
            assert same == (a.num_edges == b.num_edges and isomorphic(a, b))
            pairs += 1
            equal += same
    assert pairs == 240 and equal >= 80


def test_canonical_form_tells_ops_apart():
    assert canonical_form(ArchGraph([(0, 1, "conv(3)")])) != canonical_form(ArchGraph([(0, 1, "skip_connect")]))
    assert canonical_form(ArchGraph([(0, 1)], node_ops={0: "conv(3)"})) != canonical_form(
        ArchGraph([(0, 1)], node_ops={1: "conv(3)"}))


def as_multigraph(graph: ArchGraph):
    """The multigraph a graph with parallel ops stands for: one arc per op, labelled with it."""
    import networkx as nx

    from archgraph import ops

    g = nx.MultiDiGraph()
    g.add_nodes_from((v, {"op": graph.node_op(v)}) for v in graph.nodes)
    g.add_edges_from((u, v, {"op": op}) for (u, v), spec in graph.edge_ops.items() for op in ops.split(spec))
    return g


def test_canonical_form_of_parallel_ops_agrees_with_multigraph_isomorphism():
    # every edge holds one to three ops written in a random order: the form must tell the
    # multigraphs apart exactly as networkx does, whatever the order
    import networkx as nx

    rng = np.random.default_rng(6)
    pool = ("conv(3)", "skip_connect", "conv(3)")

    def parallel_ops(graph: ArchGraph) -> ArchGraph:
        return ArchGraph([(u, v, " + ".join(rng.choice(pool, int(rng.integers(1, 4))).tolist()))
                          for u, v in graph.edges], num_nodes=graph.num_nodes)

    def arcs_match(a, b):
        return sorted(d["op"] for d in a.values()) == sorted(d["op"] for d in b.values())

    graphs = [parallel_ops(random_dag(int(rng.integers(3, 5)), rng, edge_prob=0.5)) for _ in range(60)]
    graphs += [renamed(g, rng) for g in graphs[:30]]
    equal = 0
    for a, b in itertools.combinations(graphs, 2):
        if a.num_nodes == b.num_nodes and a.num_edges == b.num_edges:
            same = canonical_form(a) == canonical_form(b)
            assert same == nx.is_isomorphic(as_multigraph(a), as_multigraph(b), edge_match=arcs_match)
            equal += same
    assert equal >= 30
