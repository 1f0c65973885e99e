import itertools

import networkx as nx
import numpy as np
import pytest

from archgraph import ArchGraph
from graph_oracles import is_topological, isomorphic
from archgraph.features import FADE_FEATURES, feature_vector
from archgraph.generate import (
    BucketGenerator,
    FeatureSpace,
    canonical_form,
    canonical_graph,
    enumerate_dags,
    random_dag,
)

A003087 = [1, 2, 6, 31, 302, 5984]   # DAGs on n unlabelled vertices
A082402 = [1, 1, 4, 24, 267, 5647]   # weakly connected ones


def renamed(graph: ArchGraph, rng: np.random.Generator) -> ArchGraph:
    """The same graph, ops included, with its vertices renumbered at random."""
    name = rng.permutation(graph.num_nodes).tolist()
    return ArchGraph([(name[u], name[v], graph.edge_op(u, v)) for u, v in graph.edges], num_nodes=graph.num_nodes,
                     node_ops={name[v]: op for v, op in graph.node_ops.items()})


# --- enumeration ---------------------------------------------------------------------------

def test_counts_up_to_five_vertices_match_oeis():
    assert [len(enumerate_dags(n)) for n in range(1, 6)] == A003087[:5]
    assert [len(enumerate_dags(n, connected=True)) for n in range(1, 6)] == A082402[:5]
    assert len(enumerate_dags(5, min_vertices=1)) == sum(A003087[:5])


def test_counts_on_six_vertices_match_oeis():
    dags = enumerate_dags(6)
    assert len(dags) == A003087[5]
    assert sum(nx.is_weakly_connected(g.to_networkx()) for g in dags) == A082402[5]


def test_enumerated_dags_are_distinct_topological_and_sorted():
    dags = enumerate_dags(4, min_vertices=1)
    assert all(is_topological(g) for g in dags)
    assert [(g.num_nodes, g.num_edges) for g in dags] == sorted((g.num_nodes, g.num_edges) for g in dags)
    for a, b in itertools.combinations(dags, 2):
        assert not isomorphic(a, b)


def test_every_random_dag_is_isomorphic_to_one_enumerated_dag():
    rng = np.random.default_rng(0)
    by_form = {canonical_form(g): g for g in enumerate_dags(5, min_vertices=1)}
    for _ in range(60):
        g = renamed(random_dag(int(rng.integers(1, 6)), rng, edge_prob=rng.uniform(0.2, 0.8)), rng)
        assert isomorphic(by_form[canonical_form(g)], g)


def test_enumerate_dags_rejects_bad_ranges():
    with pytest.raises(ValueError, match="min_vertices"):
        enumerate_dags(3, min_vertices=4)
    with pytest.raises(ValueError, match="min_vertices"):
        enumerate_dags(0)


# --- canonical labelling (tested in test_canonical.py) -------------------------------------

def test_canonical_labelling_is_reexported():
    from archgraph import canonical

    assert canonical_form is canonical.canonical_form and canonical_graph is canonical.canonical_graph


# --- random DAGs ----------------------------------------------------------------------------

def test_random_dag_is_deterministic_for_a_seed_and_topological():
    draws = [random_dag(7, np.random.default_rng(5)) for _ in range(2)]
    assert draws[0].is_identical(draws[1]) and is_topological(draws[0])
    assert random_dag(5, np.random.default_rng(0), edge_prob=0.0).num_edges == 0
    assert random_dag(5, np.random.default_rng(0), edge_prob=1.0).num_edges == 10


def test_random_dag_edge_frequency_and_connectivity():
    rng = np.random.default_rng(6)
    edges = [random_dag(6, rng, edge_prob=0.3).num_edges for _ in range(400)]
    assert np.mean(edges) == pytest.approx(0.3 * 15, rel=0.05)
    assert all(nx.is_weakly_connected(random_dag(8, rng, edge_prob=0.2, connected=True).to_networkx())
               for _ in range(20))


def test_random_dag_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="edge_prob"):
        random_dag(3, rng, edge_prob=1.5)
    with pytest.raises(ValueError, match="never gives a connected DAG"):
        random_dag(3, rng, edge_prob=0.0, connected=True)


# --- feature space --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fade_space() -> FeatureSpace:
    return FeatureSpace.enumerate(max_vertices=5)


def all_boxes(space: FeatureSpace):
    return list(itertools.product(*(range(s) for s in space.shape)))


def test_points_are_min_max_scaled_features(fade_space):
    assert len(fade_space) == sum(A003087[:5]) and fade_space.features == FADE_FEATURES
    values = np.stack([feature_vector(g) for g in fade_space.graphs])
    np.testing.assert_allclose(fade_space.values, values)
    lo, hi = values.min(axis=0), values.max(axis=0)
    np.testing.assert_allclose(fade_space.points, (values - lo) / (hi - lo))
    np.testing.assert_allclose(fade_space.embed(fade_space.graphs[7]), fade_space.points[7])


def test_default_binning_gives_few_valued_dimensions_one_bin_per_value(fade_space):
    # num_vertices takes 5 values > 4 bins: equal widths; with 5 bins, one per value
    assert fade_space.shape == (4, 4, 4)
    space = FeatureSpace(fade_space.graphs, bins=(4, 4, 5))
    assert space.shape == (4, 4, 5)
    for n in range(1, 6):
        assert {space.box_of(p)[2] for p, g in zip(space.points, space.graphs) if g.num_nodes == n} == {n - 1}
    # a constant dimension is a single bin
    assert FeatureSpace(enumerate_dags(3), bins=4).shape[2] == 1


def test_boxes_partition_the_pool(fade_space):
    members = {box: fade_space.members(box) for box in all_boxes(fade_space)}
    assert sum(len(m) for m in members.values()) == len(fade_space)
    for point, graph in zip(fade_space.points, fade_space.graphs):
        box = fade_space.box_of(point)
        lower, upper = fade_space.box_bounds(box)
        assert graph in members[box] and np.all(lower <= point) and np.all(point <= upper)
    empty = sum(not m for m in members.values())
    assert fade_space.empty_fraction() == pytest.approx(empty / len(members))


def test_intervals_are_half_open_except_the_last_and_points_are_clipped(fade_space):
    edge = fade_space.bin_edges[0][1]
    assert fade_space.box_of([edge, 0.0, 0.0])[0] == 1
    assert fade_space.box_of([np.nextafter(edge, 0), 0.0, 0.0])[0] == 0
    assert fade_space.box_of([1.0, 1.0, 1.0]) == (3, 3, 3)
    assert fade_space.box_of([7.0, -2.0, 0.5]) == fade_space.box_of([1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="3 coordinates"):
        fade_space.box_of([0.5, 0.5])
    with pytest.raises(ValueError, match="not in the grid of shape"):
        fade_space.members((4, 0, 0))


def test_nearest_nonempty_box_is_the_nearest_centre_lowest_index_on_ties(fade_space):
    centre = {b: np.mean(fade_space.box_bounds(b), axis=0) for b in all_boxes(fade_space)}
    nonempty = [b for b in all_boxes(fade_space) if fade_space.members(b)]
    for box in all_boxes(fade_space):
        d = {b: float(np.sum((centre[b] - centre[box]) ** 2)) for b in nonempty}
        best = min(d.values())
        assert fade_space.nearest_nonempty_box(box) == min(b for b in nonempty if d[b] <= best + 1e-12)


def test_feature_space_keeps_isomorphic_duplicates_once_and_has_a_repr():
    rng = np.random.default_rng(7)
    g = ArchGraph([(0, 1), (1, 2), (0, 2)])
    space = FeatureSpace([g, renamed(g, rng), ArchGraph([(0, 1)])], features=("num_edges", "depth"), bins=2)
    assert len(space) == 2 and space.graphs[0] is g
    assert repr(space) == "FeatureSpace(2 graphs, features=('num_edges', 'depth'), shape=(2, 2))"
    with pytest.raises(ValueError, match="one per feature"):
        FeatureSpace([g], bins=(2, 2))


# --- bucketed generator ---------------------------------------------------------------------

def test_generator_draws_uniformly_from_the_box_of_the_point(fade_space):
    gen = BucketGenerator(fade_space)
    box = max(all_boxes(fade_space), key=lambda b: len(fade_space.members(b)))
    centre = np.mean(fade_space.box_bounds(box), axis=0)
    members = fade_space.members(box)
    draws = gen.generate(centre, np.random.default_rng(0), 40 * len(members))
    counts = np.array([sum(d is m for d in draws) for m in members])
    assert counts.sum() == len(draws) and counts.min() > 10  # every member drawn, about 40 times each


def test_generator_is_deterministic_and_falls_back_to_the_nearest_nonempty_box(fade_space):
    gen = BucketGenerator(fade_space)
    empty = next(b for b in all_boxes(fade_space) if not fade_space.members(b))
    point = np.mean(fade_space.box_bounds(empty), axis=0)
    assert gen.bucket(point) == fade_space.nearest_nonempty_box(empty)
    first = gen.generate(point, np.random.default_rng(3), 5)
    assert first == gen.generate(point, np.random.default_rng(3), 5)
    assert all(g in fade_space.members(gen.bucket(point)) for g in first)
    assert gen(point, np.random.default_rng(3)) is first[0]
