"""Discretisation of a trained supernet: the ``(normal, reduce)`` cells its α point at.

* :func:`magnitude` — DARTS §2.4: in each cell, every intermediate node keeps the ``k`` input
  edges whose strongest op other than ``none`` weighs most, and each kept edge that op;
* :func:`threshold` — FairDARTS (Chu et al. 2020, §4; reference xiaomi-automl/FairDARTS,
  ``threshold_sparse``): the same top-``k`` edges, but an edge stays only if its op's
  σ(α) reaches ``threshold`` (0.85).

Both read each edge's noise-free preference, :meth:`~archgraph.relax.Choice.probabilities`
(``softmax(α)``, or ``sigmoid(α)`` for FairDARTS), of the α every cell of a type shares, and
return ArchGraphs that :func:`~archgraph.embody.darts.build_darts` and the space's
``compile`` accept, ops named as :mod:`archgraph.ops` names them.

Examples
--------
>>> import torch
>>> from archgraph.embody.darts import graphs_to_genotype
>>> from archgraph.oneshot.supernet import build_supernet
>>> net = build_supernet("s2", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
>>> with torch.no_grad():                          # prefer sep_conv_3x3 (index 1) on edges from input 1
...     for edge in net.edges("normal"):
...         _ = net.choice("normal", edge).alpha.copy_(torch.tensor([0.0, 1.0 if edge[0] == 1 else 0.5]))
>>> normal, reduce = magnitude(net)
>>> graphs_to_genotype(normal, reduce).normal[:4]
[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)]
"""

from __future__ import annotations

from .. import ops
from ..errors import SettingError, SpaceError
from ..graph import ArchGraph
from .supernet import Edge, Supernet

__all__ = ["magnitude", "threshold"]


def magnitude(supernet: Supernet, *, k: int = 2) -> tuple[ArchGraph, ArchGraph]:
    """The ``(normal, reduce)`` cells of DARTS' magnitude-based discretisation (DARTS §2.4).

    Per intermediate node, the ``k`` incoming edges whose strongest non-``none`` op has the
    largest probability (all of them when the node has fewer), each with that op. Ties go to
    the lower input id and the earlier op, as in the reference code.

    Raises
    ------
    SettingError
        If ``k`` is below 1 or above the most inputs a node of the supernet has.
    SpaceError
        If some node has no input edge offering an op other than ``none``.

    Examples
    --------
    >>> from archgraph.oneshot.supernet import build_supernet
    >>> net = build_supernet("s5", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    >>> normal, reduce = magnitude(net)
    >>> normal.num_nodes, normal.num_edges
    (3, 2)
    >>> magnitude(net, k=3)
    Traceback (most recent call last):
    ...
    archgraph.errors.SettingError: k=3, but a node of this supernet has at most 2 input edges; pass 1 <= k <= 2
    """
    return tuple(_discretise(supernet, cell_type, k, None) for cell_type in _cell_types(supernet, k))


def threshold(supernet: Supernet, *, k: int = 2, threshold: float = 0.85) -> tuple[ArchGraph, ArchGraph]:
    """The ``(normal, reduce)`` cells of FairDARTS' discretisation (Chu et al. 2020, §4).

    Per intermediate node, the ``k`` incoming edges of largest strongest-op weight, as in
    :func:`magnitude`; each keeps its strongest op only if its weight — σ(α) for a sigmoid
    supernet — is at least ``threshold``, else the edge is dropped. A node none of whose
    candidate edges passes keeps its single strongest edge, so that every node still has an
    input and the cell compiles (the reference code would leave the node without inputs).

    Raises
    ------
    SettingError
        If ``k`` is out of range (see :func:`magnitude`) or ``threshold`` is not in [0, 1].

    Examples
    --------
    >>> import torch
    >>> from archgraph.oneshot.supernet import build_supernet
    >>> net = build_supernet("s5", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3,
    ...                      relaxation="sigmoid")
    >>> with torch.no_grad():                       # σ(3) = 0.95 on edge 0->2, σ(1) = 0.73 on 1->2
    ...     _ = net.choice("normal", (0, 2)).alpha.copy_(torch.tensor([3.0, 0.0, 0.0]))
    ...     _ = net.choice("normal", (1, 2)).alpha.copy_(torch.tensor([0.0, 1.0, 0.0]))
    >>> normal, _ = threshold(net)
    >>> normal.edge_ops
    mappingproxy({(0, 2): 'sep_conv_3x3'})
    """
    if not 0.0 <= threshold <= 1.0:
        raise SettingError(f"threshold is a weight in [0, 1] (FairDARTS: 0.85), got {threshold}")
    return tuple(_discretise(supernet, cell_type, k, threshold) for cell_type in _cell_types(supernet, k))


def _cell_types(supernet: Supernet, k: int) -> tuple[str, ...]:
    if not isinstance(supernet, Supernet):
        raise TypeError(f"expected a Supernet (see archgraph.oneshot.supernet.build_supernet), "
                        f"got {type(supernet).__name__}")
    most = max(v for cell_type in supernet.cell_types for _, v in supernet.edges(cell_type))
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= most:
        raise SettingError(f"k={k!r}, but a node of this supernet has at most {most} input edges; pass 1 <= k <= {most}")
    return supernet.cell_types


def _discretise(supernet: Supernet, cell_type: str, k: int, cut: float | None) -> ArchGraph:
    """One cell: per node the top-``k`` edges by strongest non-``none`` op, those below ``cut`` dropped."""
    best = {edge: _strongest(supernet, cell_type, edge) for edge in supernet.edges(cell_type)}
    kept: list[tuple[int, int, str]] = []
    for v in range(2, 2 + supernet.nodes):
        ranked = sorted((edge for edge in best if edge[1] == v and best[edge] is not None),
                        key=lambda edge: -best[edge][1])
        if not ranked:
            raise SpaceError(f"{cell_type} cell: node {v} has no input edge offering an op other than 'none'; "
                             "a discretised cell needs one")
        top = ranked[:k]
        passing = top if cut is None else [edge for edge in top if best[edge][1] >= cut] or top[:1]
        kept += [(u, v, best[(u, v)][0]) for u, _ in sorted(passing)]
    return ArchGraph(kept, num_nodes=2 + supernet.nodes)


def _strongest(supernet: Supernet, cell_type: str, edge: Edge) -> tuple[str, float] | None:
    """The op other than ``none`` of largest probability on ``edge``, with it (first on ties)."""
    probs = supernet.choice(cell_type, edge).probabilities().detach().tolist()
    candidates = [(name, p) for name, p in zip(supernet.edge_ops(cell_type, edge), probs)
                  if ops.parse(name)[0] != "none"]
    return max(candidates, key=lambda c: c[1]) if candidates else None
