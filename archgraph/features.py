"""Graph features: functions that take an :class:`~archgraph.ArchGraph` first and return a number.

They embed an architecture into a feature space ``R^k`` (:func:`feature_vector`), the space in
which FaDE's pseudo-gradient, random search and Bayesian optimisation move (FaDE §2.4, §3.2).
:data:`FADE_FEATURES` is the paper's embedding ``e: G → R^3``; :data:`FEATURES` maps every
feature name to its function. Features look at the structure only; ops are ignored.

Examples
--------
>>> from archgraph import ArchGraph
>>> from archgraph.features import FADE_FEATURES, feature_vector
>>> chain = ArchGraph([(0, 1), (1, 2)])
>>> FADE_FEATURES
('eccentricity_variance', 'degree_variance', 'num_vertices')
>>> feature_vector(chain).round(4).tolist()
[0.2222, 0.2222, 3.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import shortest_path

from .errors import SettingError
from .graph import ArchGraph

__all__ = [
    "FADE_FEATURES",
    "FEATURES",
    "num_vertices",
    "num_edges",
    "density",
    "degree_variance",
    "eccentricity_variance",
    "longest_path_length",
    "depth",
    "mean_source_sink_distance",
    "num_source_sink_paths",
    "feature_vector",
]


def num_vertices(graph: ArchGraph) -> int:
    """The number of vertices ``n`` (FaDE §3.2, third coordinate of ``e``).

    >>> from archgraph import ArchGraph
    >>> num_vertices(ArchGraph([(0, 1), (1, 2)]))
    3
    """
    return graph.num_nodes


def num_edges(graph: ArchGraph) -> int:
    """The number of edges ``m``.

    >>> from archgraph import ArchGraph
    >>> num_edges(ArchGraph([(0, 1), (1, 2)]))
    2
    """
    return graph.num_edges


def density(graph: ArchGraph) -> float:
    """``m / (n (n - 1) / 2)``: the edge count over the most edges a DAG on ``n`` vertices can
    have (a tournament's); 0 for a single vertex. Twice :func:`networkx.density`.

    >>> from archgraph import ArchGraph
    >>> density(ArchGraph([(0, 1), (1, 2), (0, 2)]))
    1.0
    """
    n = graph.num_nodes
    return 0.0 if n == 1 else graph.num_edges / (n * (n - 1) / 2)


def degree_variance(graph: ArchGraph) -> float:
    """The population variance ``(1/n) Σ_v (deg v − mean deg)²`` of the total degrees
    ``deg v = in-degree + out-degree`` (FaDE §3.2, second coordinate of ``e``; not normalised,
    as in the paper).

    >>> from archgraph import ArchGraph
    >>> degree_variance(ArchGraph([(0, 1), (0, 2), (0, 3)]))   # degrees 3, 1, 1, 1
    0.75
    """
    a = graph.adjacency()
    return float(np.var(a.sum(axis=0) + a.sum(axis=1)))


def eccentricity_variance(graph: ArchGraph, *, normalized: bool = True) -> float:
    """The variance of the vertex eccentricities of the undirected graph, normalised to [0, 1]
    (FaDE §3.2, first coordinate of ``e``, after Stier & Granitzer 2019).

    Definition. Drop the edge directions. The eccentricity of ``v`` is the largest number of
    edges on a shortest path from ``v`` to a vertex it can reach, i.e. it is computed **within
    the weakly connected component of** ``v`` (an isolated vertex has eccentricity 0). This
    keeps the feature finite on disconnected DAGs, which are valid cells: the FaDE embodiment
    (§2.4) feeds every source from the input and every sink into the output. The raw value
    (``normalized=False``) is the population variance ``Var(ecc)`` of the ``n`` eccentricities.

    Normalisation. Stier & Granitzer's exact norm is not public, so we choose one: every
    eccentricity lies in ``[0, n − 1]``, and a variable in an interval of length ``L`` has
    variance at most ``L² / 4`` (Popoviciu's inequality), so the feature is
    ``Var(ecc) / ((n − 1)² / 4)``: in ``[0, 1]`` and comparable across vertex counts (the count
    itself is FaDE's third coordinate); 0 for ``n = 1``. The bound is not attained
    (no graph has half its eccentricities 0 and half ``n − 1``): over all DAGs with at most six
    vertices the largest value is 0.306, an isolated vertex beside a 3-vertex path
    (eccentricities 0, 1, 2, 2); connected ones at most 2/9, a 3-vertex path.
    :class:`~archgraph.generate.FeatureSpace` rescales every coordinate to [0, 1] over its pool,
    so only the order of the values matters there.

    >>> from archgraph import ArchGraph
    >>> g = ArchGraph([(0, 1), (0, 2), (0, 3)])          # undirected star: eccentricities 1, 2, 2, 2
    >>> eccentricity_variance(g, normalized=False), round(eccentricity_variance(g), 4)
    (0.1875, 0.0833)
    """
    d = shortest_path(graph.adjacency(), directed=False, unweighted=True)
    ecc = np.where(np.isfinite(d), d, 0.0).max(axis=1)   # inf: another component
    var = float(np.var(ecc))
    n = graph.num_nodes
    if not normalized:
        return var
    return 0.0 if n == 1 else var / ((n - 1) ** 2 / 4)


def longest_path_length(graph: ArchGraph) -> int:
    """The number of edges on a longest directed path (:func:`networkx.dag_longest_path_length`).

    >>> from archgraph import ArchGraph
    >>> longest_path_length(ArchGraph([(0, 1), (1, 2), (0, 2)]))
    2
    """
    return nx.dag_longest_path_length(graph.to_networkx())


def depth(graph: ArchGraph) -> int:
    """The number of layers of the DAG: topological generations, i.e. vertices on a longest
    path, ``longest_path_length + 1`` (the sequential depth of the compiled cell).

    >>> from archgraph import ArchGraph
    >>> depth(ArchGraph([(0, 1), (1, 2), (0, 2)])), depth(ArchGraph([], num_nodes=2))
    (3, 1)
    """
    return sum(1 for _ in nx.topological_generations(graph.to_networkx()))


def mean_source_sink_distance(graph: ArchGraph) -> float:
    """The mean number of edges on a shortest directed path from a source to a sink, over the
    pairs ``(source, sink)`` where the sink is reachable. An isolated vertex is both a source
    and a sink and contributes its pair ``(v, v)`` at distance 0 (in the FaDE embodiment, §2.4,
    every such distance is two edges shorter than the input→output path through it).

    >>> from archgraph import ArchGraph
    >>> mean_source_sink_distance(ArchGraph([(0, 1), (1, 2), (0, 2), (3, 2)]))   # 0→2: 1, 3→2: 1
    1.0
    """
    d = shortest_path(graph.adjacency(), directed=True, unweighted=True)
    pairs = d[np.ix_(graph.sources, graph.sinks)]
    return float(pairs[np.isfinite(pairs)].mean())


def num_source_sink_paths(graph: ArchGraph) -> int:
    """The number of directed paths from a source to a sink (an isolated vertex is a path of
    length 0): the number of input→output paths of the FaDE embodiment (§2.4), counted in
    topological order (paths into ``v`` = 1 for a source, else the sum over its predecessors).

    >>> from archgraph import ArchGraph
    >>> num_source_sink_paths(ArchGraph([(0, 1), (0, 2), (1, 3), (2, 3)]))
    2
    """
    into = [0] * graph.num_nodes
    for v in graph.topological_order():
        preds = graph.predecessors(v)
        into[v] = sum(into[p] for p in preds) if preds else 1
    return sum(into[v] for v in graph.sinks)


FEATURES: MappingProxyType[str, Callable[[ArchGraph], float]] = MappingProxyType({
    f.__name__: f for f in (
        num_vertices, num_edges, density, degree_variance, eccentricity_variance,
        longest_path_length, depth, mean_source_sink_distance, num_source_sink_paths,
    )
})
"""Every feature by name; :func:`feature_vector` looks names up here."""

FADE_FEATURES = ("eccentricity_variance", "degree_variance", "num_vertices")
"""FaDE's embedding ``e: G → R^3`` (§3.2): normed eccentricity variance, degree variance, vertices."""


def feature_vector(graph: ArchGraph, names: Sequence[str] = FADE_FEATURES) -> np.ndarray:
    """The features ``names`` (keys of :data:`FEATURES`) of ``graph`` as a float64 vector.

    >>> from archgraph import ArchGraph
    >>> feature_vector(ArchGraph([(0, 1)]), ("num_edges", "density", "depth")).tolist()
    [1.0, 1.0, 2.0]
    """
    unknown = [name for name in names if name not in FEATURES]
    if unknown:
        raise SettingError(f"unknown features {unknown}; known features: {', '.join(FEATURES)}")
    return np.array([FEATURES[name](graph) for name in names], dtype=np.float64)

