import networkx as nx
import numpy as np
import pytest

from archgraph import ArchGraph
from archgraph.features import (
    FADE_FEATURES,
    FEATURES,
    density,
    eccentricity_variance,
    feature_vector,
)


def random_labelled_dag(rng: np.random.Generator) -> ArchGraph:
    """A random DAG on 1..8 vertices, numbered in a random (not topological) order."""
    n = int(rng.integers(1, 9))
    p = rng.uniform(0.1, 0.9)
    name = rng.permutation(n)
    edges = [(int(name[u]), int(name[v])) for u in range(n) for v in range(u + 1, n) if rng.random() < p]
    return ArchGraph(edges, num_nodes=n)


RANDOM = [random_labelled_dag(np.random.default_rng(seed)) for seed in range(40)]


def nx_eccentricities(g: nx.DiGraph) -> list[int]:
    """Eccentricities of the undirected graph, each within its connected component."""
    u = g.to_undirected()
    ecc = {}
    for component in nx.connected_components(u):
        ecc.update(nx.eccentricity(u.subgraph(component)))
    return [ecc[v] for v in g]


def nx_features(graph: ArchGraph) -> dict[str, float]:
    """Every feature computed directly with networkx."""
    g = graph.to_networkx()
    n = g.number_of_nodes()
    sources = [v for v in g if g.in_degree(v) == 0]
    sinks = [v for v in g if g.out_degree(v) == 0]
    reachable = [(s, t) for s in sources for t in sinks if nx.has_path(g, s, t)]
    var_ecc = np.var(nx_eccentricities(g))
    return {
        "num_vertices": n,
        "num_edges": g.number_of_edges(),
        "density": 2 * nx.density(g),
        "degree_variance": np.var([d for _, d in g.degree()]),
        "eccentricity_variance": 0.0 if n == 1 else var_ecc / ((n - 1) ** 2 / 4),
        "longest_path_length": nx.dag_longest_path_length(g),
        "depth": len(nx.dag_longest_path(g)) or 1,
        "mean_source_sink_distance": np.mean([nx.shortest_path_length(g, s, t) for s, t in reachable]),
        "num_source_sink_paths": sum(1 if s == t else len(list(nx.all_simple_paths(g, s, t))) for s, t in reachable),
    }


# name → (graph, expected features, worked out by hand)
HAND = {
    "single vertex": (ArchGraph([], num_nodes=1), dict(
        num_vertices=1, num_edges=0, density=0, degree_variance=0, eccentricity_variance=0,
        longest_path_length=0, depth=1, mean_source_sink_distance=0, num_source_sink_paths=1)),
    # degrees 1, 2, 1; undirected eccentricities 2, 1, 2 → variance 2/9, bound (3-1)²/4 = 1
    "chain 0→1→2": (ArchGraph([(0, 1), (1, 2)]), dict(
        num_vertices=3, num_edges=2, density=2 / 3, degree_variance=2 / 9, eccentricity_variance=2 / 9,
        longest_path_length=2, depth=3, mean_source_sink_distance=2, num_source_sink_paths=1)),
    # undirected 4-cycle: all degrees 2, all eccentricities 2
    "diamond": (ArchGraph([(0, 1), (0, 2), (1, 3), (2, 3)]), dict(
        num_vertices=4, num_edges=4, density=4 / 6, degree_variance=0, eccentricity_variance=0,
        longest_path_length=2, depth=3, mean_source_sink_distance=2, num_source_sink_paths=2)),
    # degrees 3, 1, 1, 1 (variance 3/4); eccentricities 1, 2, 2, 2 (variance 3/16, bound 9/4)
    "out-star": (ArchGraph([(0, 1), (0, 2), (0, 3)]), dict(
        num_vertices=4, num_edges=3, density=1 / 2, degree_variance=3 / 4, eccentricity_variance=1 / 12,
        longest_path_length=1, depth=2, mean_source_sink_distance=1, num_source_sink_paths=3)),
    # components {0, 1} and {2}: eccentricities 1, 1, 0 (variance 2/9, bound 1);
    # source→sink pairs (0, 1) at 1 and (2, 2) at 0; paths 0→1 and the lone vertex 2
    "edge beside an isolated vertex": (ArchGraph([(0, 1)], num_nodes=3), dict(
        num_vertices=3, num_edges=1, density=1 / 3, degree_variance=2 / 9, eccentricity_variance=2 / 9,
        longest_path_length=1, depth=2, mean_source_sink_distance=1 / 2, num_source_sink_paths=2)),
}


@pytest.mark.parametrize("case", HAND)
def test_features_of_small_graphs_match_hand_computed_values(case):
    graph, expected = HAND[case]
    assert set(expected) == set(FEATURES)
    for name, value in expected.items():
        assert FEATURES[name](graph) == pytest.approx(value), name


@pytest.mark.parametrize("graph", RANDOM, ids=lambda g: f"n{g.num_nodes}m{g.num_edges}")
def test_features_of_random_dags_match_networkx(graph):
    expected = nx_features(graph)
    for name, f in FEATURES.items():
        assert f(graph) == pytest.approx(expected[name]), name


def test_features_are_isomorphism_invariant_and_ignore_ops():
    rng = np.random.default_rng(1)
    for graph in RANDOM:
        name = rng.permutation(graph.num_nodes).tolist()
        renamed = ArchGraph([(name[u], name[v], "conv(3)") for u, v in graph.edges], num_nodes=graph.num_nodes,
                            node_ops={0: "skip_connect"})
        names = tuple(FEATURES)
        np.testing.assert_allclose(feature_vector(renamed, names), feature_vector(graph, names))


def test_raw_eccentricity_variance_is_the_population_variance_per_component():
    for graph in RANDOM:
        raw = np.var(nx_eccentricities(graph.to_networkx()))
        assert eccentricity_variance(graph, normalized=False) == pytest.approx(raw)
        assert 0.0 <= eccentricity_variance(graph) <= 1.0


def test_eccentricity_variance_of_a_path_beside_isolated_vertices():
    # path 0-1-2-3 (eccentricities 3, 2, 2, 3) and two isolated vertices (0, 0): mean 5/3
    g = ArchGraph([(0, 1), (1, 2), (2, 3)], num_nodes=6)
    ecc = np.array([3, 2, 2, 3, 0, 0])
    assert eccentricity_variance(g, normalized=False) == pytest.approx(np.mean((ecc - 5 / 3) ** 2))
    assert eccentricity_variance(g) == pytest.approx(np.var(ecc) / (5 ** 2 / 4))


def test_density_of_a_tournament_is_one():
    n = 6
    assert density(ArchGraph([(u, v) for u in range(n) for v in range(u + 1, n)])) == 1.0


def test_feature_vector_default_is_the_fade_embedding():
    g = ArchGraph([(0, 1), (0, 2), (0, 3)])
    assert FADE_FEATURES == ("eccentricity_variance", "degree_variance", "num_vertices")
    v = feature_vector(g)
    assert v.dtype == np.float64 and v.shape == (3,)
    np.testing.assert_allclose(v, [1 / 12, 3 / 4, 4])


def test_feature_vector_rejects_unknown_names_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown features \['girth'\]; known features: num_vertices, "):
        feature_vector(ArchGraph([(0, 1)]), ("num_edges", "girth"))
