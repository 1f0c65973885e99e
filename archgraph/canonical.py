"""Exact canonical labelling of DAGs with vertex and edge ops.

:func:`canonical_graph` renumbers a graph so that two graphs come out identical exactly when
they are isomorphic with equal vertex and edge ops; :func:`canonical_form` writes that graph
as a string. ``ArchGraph``'s ``==`` and ``hash`` are built on the same key, and
:mod:`archgraph.generate` dedupes with it.

The labelling is a nauty-style individualisation-refinement search (McKay & Piperno,
"Practical graph isomorphism, II", J. Symb. Comput. 60, 2014), specialised to DAGs: the
initial colours use longest-path levels, so the canonical numbering is topological.

Several ops between one pair of vertices are one edge labelled with a parallel spec, the
multiset of its ops written in sorted order (:func:`archgraph.ops.parallel`); equal multisets
give equal labels, so the labelling is exact for such graphs too, as it is for the multigraph
they stand for.

Examples
--------
>>> from archgraph import ArchGraph
>>> from archgraph.canonical import canonical_form, canonical_graph
>>> canonical_graph(ArchGraph([(2, 1), (1, 0), (2, 0)])).edges
((0, 1), (0, 2), (1, 2))
>>> canonical_form(ArchGraph([(0, 2), (1, 2)])) == canonical_form(ArchGraph([(1, 0), (2, 0)]))
True
"""

from __future__ import annotations

from ._labelling import _form_of, _Key
from ._labelling import _key_of as _key_of_data
from .graph import ArchGraph

__all__ = ["canonical_graph", "canonical_form"]


def _key_of(graph: ArchGraph) -> _Key:
    """The canonical key of ``graph``: equal for two graphs exactly when they are isomorphic
    with equal ops."""
    return _key_of_data(graph.num_nodes, graph.edges, graph.edge_ops, graph.node_ops)


def _graph_of(key: _Key) -> ArchGraph:
    """The ``ArchGraph`` a key describes (numbered canonically)."""
    labels, arcs = key
    return ArchGraph([(u, v, op or None) for u, v, op in arcs], num_nodes=len(labels),
                     node_ops={v: op for v, op in enumerate(labels) if op})


def canonical_graph(graph: ArchGraph) -> ArchGraph:
    """``graph`` renumbered canonically: two graphs give identical results (``is_identical``)
    exactly when they are isomorphic with equal vertex and edge ops. The numbering is
    topological (every edge ``u → v`` has ``u < v``).

    Exact: the smallest relabelling over a nauty-style individualisation-refinement search
    (colours from levels, ops and degrees, refined by neighbour colours; symmetric branches
    pruned by automorphisms). Made for cell-sized graphs: about 0.1 ms for six vertices, under
    1 ms for 20 random vertices or 7 parallel two-edge branches; graphs with many symmetries
    that refinement cannot split cost more (20 disjoint copies of one edge: about 60 ms).

    >>> from archgraph import ArchGraph
    >>> canonical_graph(ArchGraph([(2, 1), (1, 0), (2, 0)]))
    ArchGraph(num_nodes=3, edges=[(0, 1), (0, 2), (1, 2)])
    """
    return _graph_of(_key_of(graph))


def canonical_form(graph: ArchGraph) -> str:
    """A string equal for two graphs exactly when they are isomorphic with equal ops: the
    compact JSON of :func:`canonical_graph` (keys sorted). Usable as an exact hash;
    ``ArchGraph.canonical_hash`` is its SHA-1.

    >>> from archgraph import ArchGraph
    >>> canonical_form(ArchGraph([(1, 0, "conv(3)")]))
    '{"edges":[[0,1,"conv(3)"]],"num_nodes":2}'
    """
    return _form_of(_key_of(graph))
