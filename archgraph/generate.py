"""Generating DAGs: all of them up to isomorphism, random ones, and FaDE's bucketed generator.

* :func:`enumerate_dags` lists the non-isomorphic DAGs on ``n`` unlabelled vertices (OEIS
  A003087: 1, 2, 6, 31, 302, 5984, ...), each numbered topologically (every edge ``u → v`` has
  ``u < v``, so each is a mask of the fully connected ``G_max`` of FaDE §2.2).
* :func:`canonical_graph` / :func:`canonical_form` (from :mod:`archgraph.canonical`, re-exported
  here) give an exact canonical labelling: equal for two graphs exactly when they are
  isomorphic with equal ops. Enumeration and :class:`FeatureSpace` dedupe with it.
* :func:`random_dag` draws a DAG with an explicit ``numpy.random.Generator``.
* :class:`FeatureSpace` embeds a pool of DAGs into ``[0, 1]^k`` (:mod:`archgraph.features`) and
  cuts it into boxes; :class:`BucketGenerator` maps a point to a DAG of its box (FaDE §2.4, Fig. 3).

Examples
--------
>>> import numpy as np
>>> from archgraph.generate import BucketGenerator, FeatureSpace, enumerate_dags
>>> [len(enumerate_dags(n)) for n in (1, 2, 3, 4)]
[1, 2, 6, 31]
>>> space = FeatureSpace.enumerate(max_vertices=4)
>>> space
FeatureSpace(40 graphs, features=('eccentricity_variance', 'degree_variance', 'num_vertices'), shape=(4, 4, 4))
>>> BucketGenerator(space)([0.0, 0.0, 1.0], np.random.default_rng(0)).num_nodes
4
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import networkx as nx
import numpy as np

from ._labelling import _canonical_key, _Key
from .canonical import _graph_of, _key_of, canonical_form, canonical_graph
from .errors import SettingError, ShapeError
from .features import FADE_FEATURES, feature_vector
from .graph import ArchGraph, Edge

__all__ = [
    "enumerate_dags",
    "canonical_graph",
    "canonical_form",
    "random_dag",
    "FeatureSpace",
    "BucketGenerator",
]

Box = tuple[int, ...]
_MAX_TRIES = 10_000  # random_dag(connected=True) gives up after this many rejected draws


# --- enumeration and random DAGs -----------------------------------------------------------

def _keys_by_size(n: int) -> Iterator[list[_Key]]:
    """The canonical keys of all DAGs on 1, 2, ..., n vertices, one sorted list per size.

    Every DAG on k vertices is a DAG on k − 1 vertices plus a sink with some set of
    predecessors; so adding a vertex ``k − 1`` with every subset of predecessors to each DAG
    on k − 1 vertices, and keeping one graph per canonical key, gives each DAG exactly once.
    """
    keys: list[_Key] = [(("",), ())]
    yield keys
    for k in range(2, n + 1):
        seen = set()
        for _, base in keys:
            arcs = {(u, v): op for u, v, op in base}
            for mask in range(1 << (k - 1)):
                new = {(p, k - 1): "" for p in range(k - 1) if mask >> p & 1}
                seen.add(_canonical_key(k, arcs | new, ("",) * k))
        keys = sorted(seen, key=lambda key: (len(key[1]), key[1]))
        yield keys


def _weakly_connected(n: int, edges: Iterable[Edge]) -> bool:
    g = nx.Graph(edges)
    g.add_nodes_from(range(n))
    return nx.is_connected(g)


def enumerate_dags(n: int, *, min_vertices: int | None = None, connected: bool = False) -> list[ArchGraph]:
    """All non-isomorphic DAGs on ``min_vertices .. n`` unlabelled vertices (only ``n`` by
    default), without ops, each numbered topologically; ``connected=True`` keeps the weakly
    connected ones. Sorted by vertex count, then edge count, then edges.

    Counts (OEIS A003087): 1, 2, 6, 31, 302, 5984 for n = 1..6; weakly connected (A082402):
    1, 1, 4, 24, 267, 5647. Built vertex by vertex (see :func:`canonical_graph`): n = 6 takes
    about 1.7 s on one core, a third of it building the ArchGraphs; n = 7 (243,668) about 90 s.

    >>> [g.edges for g in enumerate_dags(2, min_vertices=1)]
    [(), (), ((0, 1),)]
    >>> len(enumerate_dags(4, connected=True))
    24
    """
    lo = n if min_vertices is None else min_vertices
    if not 1 <= lo <= n:
        raise SettingError(f"need 1 <= min_vertices <= n, got min_vertices={lo}, n={n}")
    graphs = []
    for k, keys in enumerate(_keys_by_size(n), start=1):
        if k >= lo:
            graphs += [_graph_of(key) for key in keys
                       if not connected or _weakly_connected(k, [(u, v) for u, v, _ in key[1]])]
    return graphs


def random_dag(n: int, rng: np.random.Generator, *, edge_prob: float = 0.5, connected: bool = False) -> ArchGraph:
    """A random DAG on ``n`` vertices: each pair ``u < v`` gets the edge ``u → v`` with
    probability ``edge_prob``, independently (so the numbering is topological; this is not the
    uniform distribution over DAGs). ``connected=True`` redraws until the DAG is weakly
    connected, i.e. samples the same distribution conditioned on connectivity.

    >>> import numpy as np
    >>> random_dag(4, np.random.default_rng(0), connected=True).num_nodes
    4
    """
    if n < 1 or not 0.0 <= edge_prob <= 1.0:
        raise SettingError(f"need n >= 1 and 0 <= edge_prob <= 1, got n={n}, edge_prob={edge_prob}")
    if connected and n > 1 and edge_prob == 0.0:
        raise SettingError(f"edge_prob=0 never gives a connected DAG on {n} vertices; raise edge_prob")
    us, vs = np.triu_indices(n, 1)
    for _ in range(_MAX_TRIES):
        keep = rng.random(len(us)) < edge_prob
        edges = list(zip(us[keep].tolist(), vs[keep].tolist()))
        if not connected or _weakly_connected(n, edges):
            return ArchGraph(edges, num_nodes=n)
    raise SettingError(f"no connected DAG on {n} vertices in {_MAX_TRIES} draws with edge_prob={edge_prob}; "
                     "raise edge_prob")


# --- feature space and bucketed generator --------------------------------------------------

class FeatureSpace:
    """A pool of DAGs embedded into ``[0, 1]^k`` and cut into disjoint boxes (FaDE §2.4, §3.2).

    Each graph is embedded by :func:`~archgraph.features.feature_vector` (``values``, raw) and
    every dimension min-max scaled over the pool, ``(x − min) / (max − min)`` (``points``; a
    constant dimension maps to 0), so that steps such as FaDE's ``γ e_k`` mean the same in every
    dimension. Isomorphic duplicates in ``graphs`` are kept once (the first), so drawing from a
    box is uniform over distinct architectures.

    Each dimension is cut into ``bins`` intervals (an int, or one per dimension), half-open
    ``[a, b)`` except the last, ``[a, 1]``: equal widths, or — where the pool has at most
    ``bins`` distinct values in that dimension (``num_vertices`` has a handful) — one interval
    per value, cut halfway between neighbouring values, so no interval is empty and no two
    values share one. The default, 4 bins, trades resolution for empty boxes; on the FaDE space
    (the 342 DAGs with < 6 vertices) 2 or 3 bins leave 5 or 10 non-empty boxes, too coarse to
    steer a search, 5 or more leave at least 84 % of the boxes empty, so that most points fall back
    to a neighbour, and 4 gives 15 non-empty boxes of 64 (median 6 graphs) with a step of 1/4
    moving to the next interval. There ``num_vertices`` has 5 values, so 4 and 5 vertices share
    the top interval; ``bins=(4, 4, 5)`` gives each vertex count its own.

    >>> space = FeatureSpace.enumerate(max_vertices=3)      # 1 + 2 + 6 DAGs
    >>> space.shape                                         # at most 4 values per feature: one bin each
    (3, 3, 3)
    >>> [g.edges for g in space.members(space.box_of([0.0, 0.0, 1.0]))]   # 3 vertices, no variance
    [(), ((0, 1), (0, 2), (1, 2))]
    """

    def __init__(self, graphs: Iterable[ArchGraph], *, features: Sequence[str] = FADE_FEATURES,
                 bins: int | Sequence[int] = 4):
        unique: dict[_Key, ArchGraph] = {}
        for g in graphs:
            unique.setdefault(_key_of(g), g)
        if not unique:
            raise SettingError("a FeatureSpace needs at least one graph")
        self.graphs: tuple[ArchGraph, ...] = tuple(unique.values())
        self.features = tuple(features)
        self.values = np.stack([feature_vector(g, self.features) for g in self.graphs])
        self.low, self.high = self.values.min(axis=0), self.values.max(axis=0)
        self.points = self._scale(self.values)
        counts = [bins] * len(self.features) if isinstance(bins, int) else list(bins)
        if len(counts) != len(self.features) or min(counts) < 1:
            raise SettingError(f"bins must be a positive int or one per feature {self.features}, got {bins}")
        self.bin_edges = tuple(_bin_edges(self.points[:, i], b) for i, b in enumerate(counts))
        self._members: dict[Box, list[int]] = {}
        for i, box in enumerate(self._boxes(self.points)):
            self._members.setdefault(tuple(box.tolist()), []).append(i)
        self._nonempty = np.array(sorted(self._members))
        lower, upper = zip(*(self.box_bounds(tuple(b)) for b in self._nonempty.tolist()))
        self._centres = (np.array(lower) + np.array(upper)) / 2

    @classmethod
    def enumerate(cls, max_vertices: int = 5, min_vertices: int = 1, *, features: Sequence[str] = FADE_FEATURES,
                  bins: int | Sequence[int] = 4, connected: bool = False) -> FeatureSpace:
        """The space of all DAGs on ``min_vertices .. max_vertices`` vertices (FaDE §3: fewer
        than 6), from :func:`enumerate_dags`."""
        return cls(enumerate_dags(max_vertices, min_vertices=min_vertices, connected=connected),
                   features=features, bins=bins)

    @property
    def shape(self) -> tuple[int, ...]:
        """The number of intervals in each dimension."""
        return tuple(len(e) - 1 for e in self.bin_edges)

    def __len__(self) -> int:
        return len(self.graphs)

    def __repr__(self) -> str:
        return f"FeatureSpace({len(self)} graphs, features={self.features}, shape={self.shape})"

    def embed(self, graph: ArchGraph) -> np.ndarray:
        """The scaled point of any graph (outside ``[0, 1]^k`` if beyond the pool's range)."""
        return self._scale(feature_vector(graph, self.features))

    def box_of(self, point: Sequence[float]) -> Box:
        """The box holding ``point`` (scaled coordinates, clipped to ``[0, 1]``)."""
        p = np.asarray(point, dtype=np.float64)
        if p.shape != (len(self.features),) or not np.isfinite(p).all():
            raise ShapeError(f"expected a finite point with {len(self.features)} coordinates, got {point!r}")
        return tuple(self._boxes(np.clip(p, 0.0, 1.0)[None])[0].tolist())

    def box_bounds(self, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """The lower and upper corners of ``box``."""
        self._check(box)
        return (np.array([e[i] for e, i in zip(self.bin_edges, box)]),
                np.array([e[i + 1] for e, i in zip(self.bin_edges, box)]))

    def members(self, box: Box) -> tuple[ArchGraph, ...]:
        """The pool's graphs whose points lie in ``box`` (empty for an empty box)."""
        self._check(box)
        return tuple(self.graphs[i] for i in self._members.get(tuple(box), ()))

    def empty_fraction(self) -> float:
        """The fraction of boxes that hold no graph of the pool."""
        return 1.0 - len(self._members) / float(np.prod(self.shape))

    def nearest_nonempty_box(self, box: Box) -> Box:
        """``box`` if it holds graphs, else the non-empty box whose centre is nearest to its
        centre (Euclidean, scaled coordinates); ties (within 1e-12) go to the lowest box index
        in lexicographic order."""
        lower, upper = self.box_bounds(box)
        d2 = ((self._centres - (lower + upper) / 2) ** 2).sum(axis=1)
        return tuple(self._nonempty[np.flatnonzero(d2 <= d2.min() + 1e-12)[0]].tolist())

    def _scale(self, values: np.ndarray) -> np.ndarray:
        span = self.high - self.low
        return (values - self.low) / np.where(span > 0, span, 1.0)

    def _boxes(self, points: np.ndarray) -> np.ndarray:
        return np.stack([np.searchsorted(e[1:-1], points[:, i], side="right")
                         for i, e in enumerate(self.bin_edges)], axis=1)

    def _check(self, box: Box) -> None:
        if len(box) != len(self.shape) or not all(0 <= b < s for b, s in zip(box, self.shape)):
            raise SettingError(f"box {tuple(box)} is not in the grid of shape {self.shape}; get boxes from box_of(point)")


def _bin_edges(x: np.ndarray, bins: int) -> np.ndarray:
    """Interval edges over [0, 1] for the scaled values ``x`` of one dimension (see FeatureSpace)."""
    values = np.unique(x)
    inner = (values[:-1] + values[1:]) / 2 if len(values) <= bins else np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.concatenate([[0.0], inner, [1.0]])


class BucketGenerator:
    """FaDE's generator ``U ∘ e⁻¹ ∘ interval`` (§2.4, Fig. 3): a point of the feature space goes
    to its box, and a DAG is drawn uniformly from the pool graphs in that box.

    Points are in the space's scaled coordinates, clipped to ``[0, 1]``. An empty box falls back
    to :meth:`FeatureSpace.nearest_nonempty_box` (nearest centre, Euclidean; ties to the lowest
    box index). Deterministic for a seeded ``numpy.random.Generator``.

    >>> import numpy as np
    >>> gen = BucketGenerator(FeatureSpace.enumerate(max_vertices=4))
    >>> [g.num_nodes for g in gen.generate([0.5, 0.5, 0.5], np.random.default_rng(0), 3)]
    [3, 3, 3]
    """

    def __init__(self, space: FeatureSpace):
        self.space = space

    def __repr__(self) -> str:
        return f"BucketGenerator({self.space!r})"

    def bucket(self, point: Sequence[float]) -> Box:
        """The box ``point`` draws from: its own, or the nearest non-empty one."""
        return self.space.nearest_nonempty_box(self.space.box_of(point))

    def __call__(self, point: Sequence[float], rng: np.random.Generator) -> ArchGraph:
        """One DAG drawn uniformly from the bucket of ``point``."""
        return self.generate(point, rng, 1)[0]

    def draw_new(self, point: Sequence[float], rng: np.random.Generator, taken: Sequence[ArchGraph]) -> ArchGraph:
        """One DAG drawn uniformly from the graphs of the bucket of ``point`` that are not in
        ``taken`` (up to isomorphism); from the whole bucket where ``taken`` holds all of them.

        >>> import numpy as np
        >>> gen, rng = BucketGenerator(FeatureSpace.enumerate(max_vertices=4)), np.random.default_rng(0)
        >>> def row_of(point, w):
        ...     row = []
        ...     for _ in range(w):
        ...         row.append(gen.draw_new(point, rng, row))
        ...     return row
        >>> len(gen.space.members(gen.bucket([0.5, 0.5, 0.5]))), len(set(row_of([0.5, 0.5, 0.5], 4)))
        (4, 4)
        >>> len(gen.space.members(gen.bucket([0.0, 0.0, 0.0]))), len(set(row_of([0.0, 0.0, 0.0], 3)))
        (1, 1)
        """
        members = self.space.members(self.bucket(point))
        fresh = [g for g in members if g not in taken] or members
        return fresh[int(rng.integers(len(fresh)))]

    def generate(self, point: Sequence[float], rng: np.random.Generator, k: int) -> list[ArchGraph]:
        """``k`` independent draws (with replacement) from the bucket of ``point``; FaDE §3.2
        scores a point by the median accuracy of 5 such architectures."""
        members = self.space.members(self.bucket(point))
        return [members[i] for i in rng.integers(len(members), size=k).tolist()]
