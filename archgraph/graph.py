"""``ArchGraph``: an architecture as a validated, immutable DAG.

Vertices are the integers ``0 .. n-1``; vertices and edges may carry an ``op`` (an op spec
of :mod:`archgraph.ops`). There is at most one edge per pair of vertices; several ops between
the same pair (a cell node taking one input twice, as in NASNet's cells) are one edge whose op
is a *parallel* spec, ``"sep_conv_3x3 + skip_connect"``: the multiset of the ops, written
sorted (:func:`archgraph.ops.parallel`), so that equality and the canonical hash see exactly
which ops an edge holds, and graphs of one op per edge keep their form and hash.
The graph is plain data: compiling it into a module is the job of
:mod:`archgraph.embody`, changing it the job of :mod:`archgraph.mutate` (which returns new
graphs). Equality is isomorphism with equal vertex and edge ops, decided exactly through the
canonical labelling of :mod:`archgraph.canonical`; the hash is that labelling's.

Examples
--------
>>> from archgraph import ArchGraph
>>> g = ArchGraph([(0, 1), (1, 2), (0, 2)])
>>> g.num_nodes, g.num_edges, g.sources, g.sinks
(3, 3, (0,), (2,))
>>> g == ArchGraph([(2, 1), (1, 0), (2, 0)])   # the same DAG, vertices renamed
True
>>> ArchGraph.from_json(g.to_json()) == g
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import networkx as nx
import numpy as np

from . import ops as _ops
from ._labelling import _form_of, _Key, _key_of
from .errors import InvalidGraphError

__all__ = ["ArchGraph"]

Edge = tuple[int, int]


class ArchGraph:
    """A directed acyclic graph with optional ops on vertices and edges.

    Parameters
    ----------
    edges:
        Pairs ``(u, v)`` or triples ``(u, v, op)``.
    num_nodes:
        Number of vertices. Without it, the vertices are ``0 .. max id`` and every one of
        them must appear in an edge or in ``node_ops`` (otherwise it is a dangling id).
    node_ops, edge_ops:
        Op specs keyed by vertex and by ``(u, v)``. A graph is data: the names are checked
        against :mod:`archgraph.ops` where the graph is compiled (or read from a file,
        :meth:`from_dict`), so a graph may name ops registered later. An edge's op may be a
        sequence of specs or a parallel spec (``"a + b"``): the ops side by side on that edge,
        stored as :func:`~archgraph.ops.parallel` writes them.

    Raises
    ------
    InvalidGraphError
        For an empty graph, a cycle (named in the message), a vertex id outside
        ``0 .. n-1``, a duplicated edge or an op on a vertex/edge that does not exist.
    UnknownOpError
        For an op spec that does not parse (``"conv(5) +"``).
    """

    __slots__ = ("_n", "_edges", "_node_ops", "_edge_ops", "_nx", "_key", "_hash")

    def __init__(
        self,
        edges: Iterable[Sequence] = (),
        *,
        num_nodes: int | None = None,
        node_ops: Mapping[int, str] | None = None,
        edge_ops: Mapping[Edge, str | Sequence[str]] | None = None,
    ):
        pairs, ops_from_triples = _split_edges(edges)
        node_ops = {_vertex_id(v): str(op) for v, op in (node_ops or {}).items() if op is not None}
        edge_ops = {**{tuple(e): _edge_op(op) for e, op in (edge_ops or {}).items() if op is not None},
                    **ops_from_triples}
        n = _vertex_count(pairs, node_ops, num_nodes)
        _check_edges(pairs, n)
        _check_op_keys(node_ops, edge_ops, set(pairs), n)
        for v, op in node_ops.items():
            if len(_ops.split(op)) > 1:
                raise InvalidGraphError(f"vertex {v} carries the parallel op {op!r}; only edges hold several ops: "
                                        "put them on the vertex's incoming edge")

        g = nx.DiGraph()
        g.add_nodes_from(range(n))
        g.add_edges_from(pairs)
        _check_acyclic(g)
        nx.set_node_attributes(g, node_ops, "op")
        nx.set_edge_attributes(g, edge_ops, "op")

        self._n = n
        self._edges = tuple(sorted(pairs))
        self._node_ops = MappingProxyType(dict(sorted(node_ops.items())))
        self._edge_ops = MappingProxyType(dict(sorted(edge_ops.items())))
        self._nx = nx.freeze(g)
        self._key: _Key | None = None   # canonical key and hash, computed on first use
        self._hash: str | None = None

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_adjacency(cls, matrix, *, node_ops: Mapping[int, str] | None = None) -> ArchGraph:
        """From a square matrix whose entry ``[u][v]`` is truthy for an edge u→v; a string
        entry is taken as the edge's op, except ``""``, ``"0"`` and ``"none"`` (the zero
        op), which mean no edge.

        >>> ArchGraph.from_adjacency([[0, 1], [0, 0]]).edges
        ((0, 1),)
        """
        rows = [list(r) for r in matrix]
        n = len(rows)
        if any(len(r) != n for r in rows):
            raise InvalidGraphError(
                f"an adjacency matrix must be square, got rows of lengths {[len(r) for r in rows]}"
            )
        edges = [
            (u, v, x) if isinstance(x, str) else (u, v)
            for u, r in enumerate(rows) for v, x in enumerate(r) if _truthy(x)
        ]
        return cls(edges, num_nodes=n, node_ops=node_ops)

    @classmethod
    def from_networkx(cls, graph: nx.DiGraph) -> ArchGraph:
        """From a networkx ``DiGraph`` (``op`` attributes kept). Vertices are renumbered
        ``0 .. n-1`` in sorted order (insertion order where labels do not sort).

        >>> import networkx as nx
        >>> ArchGraph.from_networkx(nx.DiGraph([("a", "b")])).edges
        ((0, 1),)
        """
        if not graph.is_directed():
            raise InvalidGraphError("an ArchGraph is directed; convert with graph.to_directed() and drop back edges")
        try:
            order = sorted(graph.nodes)
        except TypeError:
            order = list(graph.nodes)
        index = {v: i for i, v in enumerate(order)}
        return cls(
            [(index[u], index[v]) for u, v in graph.edges],
            num_nodes=len(order),
            node_ops={index[v]: op for v, op in graph.nodes(data="op") if op is not None},
            edge_ops={(index[u], index[v]): op for u, v, op in graph.edges(data="op") if op is not None},
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchGraph:
        """Inverse of :meth:`to_dict`. As the reader of architecture files, it also checks that
        every op is registered (:func:`archgraph.ops.check_parts`)."""
        if not isinstance(data, Mapping):
            raise InvalidGraphError(f"a graph is a dict with the keys 'num_nodes' and 'edges', got {data!r}")
        if missing := [repr(key) for key in ("num_nodes", "edges") if key not in data]:
            raise InvalidGraphError(f"a graph dict needs the keys 'num_nodes' and 'edges'; {missing[0]} is missing")
        graph = cls([tuple(e) for e in data["edges"]], num_nodes=data["num_nodes"],
                    node_ops={int(v): op for v, op in data.get("node_ops", {}).items()})
        for op in dict.fromkeys((*graph.node_ops.values(), *graph.edge_ops.values())):  # each distinct op once
            _ops.check_parts(op)  # outside any KeyError handler: an UnknownOpError (a KeyError) speaks for itself
        return graph

    @classmethod
    def from_json(cls, text: str) -> ArchGraph:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> ArchGraph:
        """Read a graph written by :meth:`save`."""
        return cls.from_json(Path(path).read_text())

    # --- conversion ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``num_nodes``, ``edges`` (``[u, v]`` or ``[u, v, op]``), ``node_ops``."""
        data: dict[str, Any] = {
            "num_nodes": self._n,
            "edges": [[u, v, self._edge_ops[(u, v)]] if (u, v) in self._edge_ops else [u, v] for u, v in self._edges],
        }
        if self._node_ops:
            data["node_ops"] = {str(v): op for v, op in self._node_ops.items()}
        return data

    def to_json(self, **kwargs) -> str:
        """The graph as a JSON string (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write the graph as JSON to ``path``."""
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    def to_networkx(self) -> nx.DiGraph:
        """A mutable networkx copy, with ``op`` attributes where set."""
        return nx.DiGraph(self._nx)

    def to_pyg(self, op_vocabulary: Sequence[str] | None = None):
        """A ``torch_geometric.data.Data`` with ``edge_index`` and ``num_nodes``.

        With ``op_vocabulary``, ``x`` holds one-hot node ops and ``edge_attr`` one-hot edge
        ops (all-zero rows where there is no op; a parallel op counts each of its parts);
        without it ``x`` is a column of ones.
        """
        import torch
        from torch_geometric.data import Data

        edge_index = torch.tensor(self._edges, dtype=torch.long).reshape(-1, 2).t().contiguous()
        data = Data(edge_index=edge_index, num_nodes=self._n)
        if op_vocabulary is None:
            data.x = torch.ones(self._n, 1)
            return data
        index = {op: i for i, op in enumerate(op_vocabulary)}

        def one_hot(labels):
            out = torch.zeros(len(labels), len(index))
            for row, op in enumerate(labels):
                for part in () if op is None else _ops.split(op):
                    if part not in index:
                        raise InvalidGraphError(f"op {part!r} is not in op_vocabulary {list(op_vocabulary)}")
                    out[row, index[part]] += 1.0
            return out

        data.x = one_hot([self._node_ops.get(v) for v in range(self._n)])
        data.edge_attr = one_hot([self._edge_ops.get(e) for e in self._edges])
        return data

    def adjacency(self) -> np.ndarray:
        """The ``n × n`` 0/1 adjacency matrix (``[u, v] = 1`` for an edge u→v)."""
        a = np.zeros((self._n, self._n), dtype=np.int64)
        for u, v in self._edges:
            a[u, v] = 1
        return a

    # --- structure ----------------------------------------------------------------------

    @property
    def num_nodes(self) -> int:
        return self._n

    @property
    def num_edges(self) -> int:
        return len(self._edges)

    @property
    def nodes(self) -> range:
        return range(self._n)

    @property
    def edges(self) -> tuple[Edge, ...]:
        """All edges, sorted."""
        return self._edges

    @property
    def node_ops(self) -> Mapping[int, str]:
        return self._node_ops

    @property
    def edge_ops(self) -> Mapping[Edge, str]:
        return self._edge_ops

    def node_op(self, v: int, default: str | None = None) -> str | None:
        return self._node_ops.get(v, default)

    def edge_op(self, u: int, v: int, default: str | None = None) -> str | None:
        return self._edge_ops.get((u, v), default)

    def predecessors(self, v: int) -> tuple[int, ...]:
        return tuple(sorted(self._nx.predecessors(v)))

    def successors(self, v: int) -> tuple[int, ...]:
        return tuple(sorted(self._nx.successors(v)))

    @property
    def sources(self) -> tuple[int, ...]:
        """Vertices without incoming edges (isolated vertices included)."""
        return tuple(v for v in range(self._n) if self._nx.in_degree(v) == 0)

    @property
    def sinks(self) -> tuple[int, ...]:
        """Vertices without outgoing edges (isolated vertices included)."""
        return tuple(v for v in range(self._n) if self._nx.out_degree(v) == 0)

    def topological_order(self) -> tuple[int, ...]:
        """A topological order, the smallest id first among the ready vertices."""
        return tuple(nx.lexicographical_topological_sort(self._nx))

    def has_edge(self, u: int, v: int) -> bool:
        return self._nx.has_edge(u, v)

    # --- identity -----------------------------------------------------------------------

    def canonical_hash(self) -> str:
        """A hex string equal for two graphs exactly when they are isomorphic with equal vertex
        and edge ops: the SHA-1 of :func:`~archgraph.canonical.canonical_form`. Stable across
        runs and processes, so usable as a key on disk.

        >>> ArchGraph([(0, 1), (0, 2)]).canonical_hash() == ArchGraph([(2, 0), (2, 1)]).canonical_hash()
        True
        """
        if self._hash is None:
            self._hash = hashlib.sha1(_form_of(self._canonical_key()).encode()).hexdigest()
        return self._hash

    def _canonical_key(self) -> _Key:
        if self._key is None:
            self._key = _key_of(self._n, self._edges, self._edge_ops, self._node_ops)
        return self._key

    def __hash__(self) -> int:
        return hash(self.canonical_hash())

    def __eq__(self, other: object) -> bool:
        """Isomorphic with equal ops, decided exactly by comparing canonical keys."""
        if not isinstance(other, ArchGraph):
            return NotImplemented
        if (self._n, len(self._edges)) != (other._n, len(other._edges)):
            return False
        if self._edges == other._edges and self._node_ops == other._node_ops and self._edge_ops == other._edge_ops:
            return True
        return self._canonical_key() == other._canonical_key()

    def is_identical(self, other: ArchGraph) -> bool:
        """Equal with the same vertex numbering (stricter than ``==``)."""
        return (self._n, self._edges, dict(self._node_ops), dict(self._edge_ops)) == (
            other._n, other._edges, dict(other._node_ops), dict(other._edge_ops))

    def __reduce__(self):  # pickling (MappingProxyType fields do not pickle)
        return ArchGraph.from_dict, (self.to_dict(),)

    def __copy__(self) -> ArchGraph:  # immutable: a copy is the graph itself
        return self

    def __deepcopy__(self, memo) -> ArchGraph:
        return self

    def __repr__(self) -> str:
        parts = [f"num_nodes={self._n}", f"edges={list(self._edges)}"]
        if self._node_ops:
            parts.append(f"node_ops={dict(self._node_ops)}")
        if self._edge_ops:
            parts.append(f"edge_ops={dict(self._edge_ops)}")
        return f"ArchGraph({', '.join(parts)})"


# --- validation helpers ------------------------------------------------------------------

def _truthy(x) -> bool:
    return bool(x) if not isinstance(x, str) else x not in ("", "none", "0")


def _split_edges(edges: Iterable[Sequence]) -> tuple[list[Edge], dict[Edge, str]]:
    pairs: list[Edge] = []
    seen: set[Edge] = set()
    ops: dict[Edge, str] = {}
    for e in edges:
        if isinstance(e, str) or len(e) not in (2, 3):
            raise InvalidGraphError(f"an edge is a pair (u, v) or a triple (u, v, op), got {e!r}")
        pair = (_vertex_id(e[0], e), _vertex_id(e[1], e))
        if pair in seen:
            raise InvalidGraphError(f"edge {pair} is given twice; an ArchGraph has at most one edge per pair: for "
                                    f"several ops between them give one edge all of them, {(*pair, ('op_a', 'op_b'))}")
        seen.add(pair)
        pairs.append(pair)
        if len(e) == 3 and e[2] is not None:
            ops[pair] = _edge_op(e[2])
    return pairs, ops


def _edge_op(op) -> str:
    """An edge's op as stored: a spec, or a sequence of specs as one parallel spec."""
    return _ops.parallel(*map(str, op)) if isinstance(op, (list, tuple)) else _ops.parallel(str(op))


def _vertex_id(x, edge=None) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        where = f"edge {tuple(edge)!r}" if edge is not None else f"vertex {x!r}"
        raise InvalidGraphError(f"vertex ids are integers 0..n-1, got {where}")
    return int(x)


def _vertex_count(pairs: list[Edge], node_ops: Mapping[int, str], num_nodes: int | None) -> int:
    ids = {v for e in pairs for v in e} | set(node_ops)
    if num_nodes is not None:
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)):
            raise InvalidGraphError(f"num_nodes must be an integer, got {num_nodes!r}")
        if num_nodes < 1:
            raise InvalidGraphError(f"empty graph: num_nodes must be at least 1, got {num_nodes}")
        return int(num_nodes)
    if not ids:
        raise InvalidGraphError("empty graph: give at least one edge, or num_nodes=1 for a single vertex")
    if min(ids) < 0:
        raise InvalidGraphError(f"vertex ids are 0..n-1, got {min(ids)}")
    n = max(ids) + 1
    missing = sorted(set(range(n)) - ids)
    if missing:
        raise InvalidGraphError(
            f"dangling vertex ids: {missing} appear in no edge, yet vertex {n - 1} exists; "
            f"renumber the vertices 0..{len(ids) - 1}, or pass num_nodes={n} if isolated vertices are meant"
        )
    return n


def _check_edges(pairs: list[Edge], n: int) -> None:
    for u, v in pairs:
        for x in (u, v):
            if not 0 <= x < n:
                raise InvalidGraphError(
                    f"edge ({u}, {v}) names vertex {x}, but the graph has vertices 0..{n - 1}; "
                    "fix the edge or raise num_nodes"
                )


def _check_op_keys(node_ops: Mapping[int, str], edge_ops: Mapping[Edge, str], pairs: set[Edge], n: int) -> None:
    for v in node_ops:
        if not 0 <= v < n:
            raise InvalidGraphError(f"node_ops names vertex {v}, but the graph has vertices 0..{n - 1}")
    for e in edge_ops:
        if e not in pairs:
            raise InvalidGraphError(f"edge_ops names edge {e}, which is not an edge of the graph; add the edge first")


def _check_acyclic(g: nx.DiGraph) -> None:
    if nx.is_directed_acyclic_graph(g):  # cheap; find_cycle only to name the cycle
        return
    cycle = nx.find_cycle(g)
    path = "→".join(str(u) for u, _ in cycle) + f"→{cycle[0][0]}"
    raise InvalidGraphError(
        f"edge {cycle[-1][:2]} closes a cycle {path}; an architecture must be acyclic: remove one of these edges"
    )
