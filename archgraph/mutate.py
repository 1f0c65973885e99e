"""Mutation operators: pure functions that take an :class:`~archgraph.ArchGraph` first and
return a new, valid one (networkx style; the input is never changed).

Each operator either returns a graph or raises :class:`~archgraph.InvalidGraphError` naming
the vertex, edge or cycle at fault. :func:`random_mutation` draws one applicable mutation
with an explicit ``numpy.random.Generator``, the move of an evolutionary or local search.

Examples
--------
>>> from archgraph import ArchGraph, mutate
>>> g = ArchGraph([(0, 1), (1, 2)])
>>> mutate.add_edge(g, 0, 2).edges
((0, 1), (0, 2), (1, 2))
>>> mutate.remove_vertex(g, 1)
ArchGraph(num_nodes=2, edges=[])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import networkx as nx
import numpy as np

from . import ops as _ops
from .errors import InvalidGraphError, SettingError
from .graph import ArchGraph, Edge

__all__ = ["KINDS", "add_edge", "remove_edge", "add_vertex", "remove_vertex", "change_op", "random_mutation"]

KINDS = ("add_edge", "remove_edge", "add_vertex", "remove_vertex", "change_op")
"""The mutation kinds :func:`random_mutation` draws from."""


def add_edge(graph: ArchGraph, u: int, v: int, op: str | None = None) -> ArchGraph:
    """The graph with the edge ``u → v`` (carrying ``op``, if given) added.

    Raises :class:`~archgraph.InvalidGraphError` if the edge exists or would close a cycle,
    :class:`~archgraph.UnknownOpError` if ``op`` is not registered.

    Examples
    --------
    >>> from archgraph import ArchGraph, mutate
    >>> mutate.add_edge(ArchGraph([(0, 1)], num_nodes=3), 1, 2, "conv(3)").edge_ops
    mappingproxy({(1, 2): 'conv(3)'})
    >>> mutate.add_edge(ArchGraph([(0, 1), (1, 2)]), 2, 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    archgraph.errors.InvalidGraphError: edge (2, 0) would close the cycle 2→0→1→2; ...
    """
    _check_vertex(graph, u)
    _check_vertex(graph, v)
    if graph.has_edge(u, v):
        raise InvalidGraphError(f"edge ({u}, {v}) already exists; change its op with change_op(graph, ({u}, {v}), op)")
    cycle = _cycle_through(graph.to_networkx(), u, v)
    if cycle:
        raise InvalidGraphError(
            f"edge ({u}, {v}) would close the cycle {cycle}; an architecture must stay acyclic: "
            "add edges along graph.topological_order()"
        )
    edges, node_ops = _parts(graph)
    return _build(graph.num_nodes, {**edges, (u, v): _checked(op)}, node_ops)


def remove_edge(graph: ArchGraph, u: int, v: int) -> ArchGraph:
    """The graph without the edge ``u → v`` (and its op); the vertices stay.

    Examples
    --------
    >>> from archgraph import ArchGraph, mutate
    >>> mutate.remove_edge(ArchGraph([(0, 1), (1, 2)]), 0, 1)
    ArchGraph(num_nodes=3, edges=[(1, 2)])
    """
    if not graph.has_edge(u, v):
        raise InvalidGraphError(f"the graph has no edge ({u}, {v}); its edges are {list(graph.edges)}")
    edges, node_ops = _parts(graph)
    del edges[(u, v)]
    return _build(graph.num_nodes, edges, node_ops)


def add_vertex(
    graph: ArchGraph,
    *,
    predecessors: Iterable[int] | Mapping[int, str | None] = (),
    successors: Iterable[int] | Mapping[int, str | None] = (),
    op: str | None = None,
) -> ArchGraph:
    """The graph with a new vertex ``n = graph.num_nodes`` carrying ``op``, with edges
    ``p → n`` for every predecessor ``p`` and ``n → s`` for every successor ``s``.

    ``predecessors`` and ``successors`` may map each vertex to the op of its new edge.
    Raises :class:`~archgraph.InvalidGraphError` if some successor reaches some predecessor,
    which would close a cycle through the new vertex.

    Examples
    --------
    >>> from archgraph import ArchGraph, mutate
    >>> g = mutate.add_vertex(ArchGraph([(0, 1)]), predecessors={0: "conv(3)"}, successors=[1])
    >>> g.edges, g.edge_ops[(0, 2)]
    (((0, 1), (0, 2), (2, 1)), 'conv(3)')
    """
    preds, succs = _as_op_map(predecessors), _as_op_map(successors)
    for w in (*preds, *succs):
        _check_vertex(graph, w)
    n, g = graph.num_nodes, graph.to_networkx()
    for p in preds:
        for s in succs:
            cycle = _cycle_through(g, p, s, via=n)
            if cycle:
                raise InvalidGraphError(
                    f"new vertex {n} between predecessor {p} and successor {s} would close the cycle {cycle}; "
                    f"drop {p} from the predecessors or {s} from the successors"
                )
    edges, node_ops = _parts(graph)
    edges.update({(p, n): e_op for p, e_op in preds.items()})
    edges.update({(n, s): e_op for s, e_op in succs.items()})
    return _build(n + 1, edges, {**node_ops, n: op})


def remove_vertex(graph: ArchGraph, v: int) -> ArchGraph:
    """The graph without vertex ``v`` and its edges; the vertices after ``v`` move down by one
    (order and ops kept). The last vertex cannot be removed.

    Examples
    --------
    >>> from archgraph import ArchGraph, mutate
    >>> mutate.remove_vertex(ArchGraph([(0, 1), (1, 2, "conv(3)"), (0, 2)]), 0)
    ArchGraph(num_nodes=2, edges=[(0, 1)], edge_ops={(0, 1): 'conv(3)'})
    """
    _check_vertex(graph, v)
    if graph.num_nodes == 1:
        raise InvalidGraphError(f"removing vertex {v} would leave an empty graph; an ArchGraph keeps one vertex at least")
    edges, node_ops = _parts(graph)

    def new(w: int) -> int:
        return w - (w > v)

    return _build(
        graph.num_nodes - 1,
        {(new(a), new(b)): op for (a, b), op in edges.items() if v not in (a, b)},
        {new(w): op for w, op in node_ops.items() if w != v},
    )


def change_op(graph: ArchGraph, v_or_edge: int | Edge, op: str | None) -> ArchGraph:
    """The graph with the op of vertex ``v_or_edge`` (an int) or of edge ``v_or_edge`` (a pair
    ``(u, v)``) set to ``op``; ``None`` removes it. Unknown ops raise
    :class:`~archgraph.UnknownOpError`.

    Examples
    --------
    >>> from archgraph import ArchGraph, mutate
    >>> g = ArchGraph([(0, 1, "conv(3)")])
    >>> mutate.change_op(g, (0, 1), "skip_connect").edge_ops
    mappingproxy({(0, 1): 'skip_connect'})
    >>> mutate.change_op(g, 1, "max_pool").node_ops
    mappingproxy({1: 'max_pool'})
    """
    edges, node_ops = _parts(graph)
    if _is_id(v_or_edge):
        _check_vertex(graph, v_or_edge)
        node_ops[v_or_edge] = _checked(op)
    elif isinstance(v_or_edge, Sequence) and len(v_or_edge) == 2 and all(map(_is_id, v_or_edge)):
        edge = (int(v_or_edge[0]), int(v_or_edge[1]))
        if not graph.has_edge(*edge):
            raise InvalidGraphError(f"the graph has no edge {edge}; add it with add_edge(graph, {edge[0]}, {edge[1]}, op)")
        edges[edge] = _checked(op)
    else:
        raise InvalidGraphError(f"change_op takes a vertex id or an edge (u, v), got {v_or_edge!r}")
    return _build(graph.num_nodes, edges, node_ops)


def random_mutation(
    graph: ArchGraph,
    rng: np.random.Generator,
    *,
    ops: Sequence[str] | None = None,
    max_nodes: int | None = None,
    kinds: Sequence[str] = KINDS,
) -> ArchGraph:
    """A random mutation of ``graph``: a valid graph unequal to it.

    A kind is drawn uniformly among the ``kinds`` that apply, then one mutation of that kind
    uniformly. With ``u`` before ``w`` in ``graph.topological_order()``:

    - ``add_edge``: a new edge ``u → w`` (so never a cycle);
    - ``remove_edge``: any edge;
    - ``add_vertex``: a new vertex on a path ``u → new → w`` (only below ``max_nodes``);
    - ``remove_vertex``: an inner vertex, one with predecessors and successors (the inverse
      of ``add_vertex``, so sources and sinks are never removed);
    - ``change_op`` (only with ``ops``): an op of ``ops`` for an element whose op differs.

    Ops sit where the graph carries them: on vertices if it has node ops only, else on edges
    (also for a graph without ops). With ``ops``, new edges and vertices at those sites get a
    random op of ``ops``.

    Raises
    ------
    InvalidGraphError
        When no mutation of ``kinds`` applies (e.g. a single vertex with ``max_nodes=1``);
        allow more kinds, raise ``max_nodes`` or pass ``ops``.

    Examples
    --------
    >>> import numpy as np
    >>> from archgraph import ArchGraph, mutate
    >>> g = ArchGraph([(0, 1, "conv(3)"), (1, 2, "conv(3)")])
    >>> h = mutate.random_mutation(g, np.random.default_rng(0), ops=["conv(3)", "skip_connect"])
    >>> h != g, h == mutate.random_mutation(g, np.random.default_rng(0), ops=["conv(3)", "skip_connect"])
    (True, True)
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise SettingError(f"unknown mutation kinds {unknown}; known kinds: {', '.join(KINDS)}")
    ops = tuple(str(_ops.check(op)) for op in (() if ops is None else ops))
    on_nodes = bool(graph.node_ops)
    on_edges = bool(graph.edge_ops) or not on_nodes
    order = graph.topological_order()
    ordered_pairs = [(u, w) for i, u in enumerate(order) for w in order[i + 1:]]
    sites = [*(graph.nodes if on_nodes else ()), *(graph.edges if on_edges else ())]
    options = {
        "add_edge": [(u, w) for u, w in ordered_pairs if not graph.has_edge(u, w)],
        "remove_edge": list(graph.edges),
        "add_vertex": ordered_pairs if max_nodes is None or graph.num_nodes < max_nodes else [],
        "remove_vertex": [v for v in graph.nodes if graph.predecessors(v) and graph.successors(v)],
        "change_op": [(x, op) for x in sites for op in ops if op != _op_of(graph, x)],
    }
    applicable = [k for k in KINDS if k in kinds and options[k]]
    if not applicable:
        raise InvalidGraphError(
            f"no mutation of kinds {tuple(kinds)} applies to {graph!r} (max_nodes={max_nodes}, ops={list(ops)}); "
            "allow more kinds, raise max_nodes or pass ops"
        )
    kind = applicable[rng.integers(len(applicable))]
    choice = options[kind][rng.integers(len(options[kind]))]

    def new_op(at_site: bool) -> str | None:
        return ops[rng.integers(len(ops))] if ops and at_site else None

    if kind == "add_edge":
        return add_edge(graph, *choice, op=new_op(on_edges))
    if kind == "remove_edge":
        return remove_edge(graph, *choice)
    if kind == "add_vertex":
        u, w = choice
        return add_vertex(graph, predecessors={u: new_op(on_edges)}, successors={w: new_op(on_edges)},
                          op=new_op(on_nodes))
    if kind == "remove_vertex":
        return remove_vertex(graph, choice)
    return change_op(graph, *choice)


# --- helpers ------------------------------------------------------------------------------

def _parts(graph: ArchGraph) -> tuple[dict[Edge, str | None], dict[int, str]]:
    """Mutable copies: every edge with its op (``None`` without one), and the node ops."""
    return {e: graph.edge_op(*e) for e in graph.edges}, dict(graph.node_ops)


def _build(num_nodes: int, edges: Mapping[Edge, str | None], node_ops: Mapping[int, str | None]) -> ArchGraph:
    return ArchGraph([(u, v, op) for (u, v), op in edges.items()], num_nodes=num_nodes, node_ops=node_ops)


def _checked(op: str | None) -> str | None:
    """``op`` checked against the op registry, so that a mutation with an unknown op fails where
    the name is given rather than when the graph is compiled."""
    return None if op is None else _ops.check_parts(op)


def _is_id(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_vertex(graph: ArchGraph, v) -> None:
    if not _is_id(v) or not 0 <= v < graph.num_nodes:
        raise InvalidGraphError(f"vertex {v!r} is not in the graph; its vertices are 0..{graph.num_nodes - 1}")


def _as_op_map(vertices: Iterable[int] | Mapping[int, str | None]) -> dict[int, str | None]:
    return dict(vertices) if isinstance(vertices, Mapping) else dict.fromkeys(vertices)


def _cycle_through(g: nx.DiGraph, u: int, v: int, via: int | None = None) -> str:
    """The cycle ``u → (via →) v → … → u`` that linking ``u`` to ``v`` would close, as text,
    or ``""`` if ``v`` does not reach ``u``."""
    if not nx.has_path(g, v, u):
        return ""
    path = [u, *([] if via is None else [via]), *nx.shortest_path(g, v, u)]
    return "→".join(map(str, path))


def _op_of(graph: ArchGraph, x: int | Edge) -> str | None:
    return graph.node_op(x) if _is_id(x) else graph.edge_op(*x)
