"""The FaDE embodiment: DAG cells of convolutions, chained with pooling in between.

Neumeier, Stier & Granitzer, "Efficient NAS with FaDE on Hierarchical Spaces", §2.4
("Search Space") and §3:

* an input vertex is prepended that feeds every source of the DAG, and an output vertex is
  appended that every sink feeds;
* every edge carries the same convolution (``conv(k)``, 'same' padding), except the edges
  leaving the input vertex: those map the cell's input channels to its own channel count
  (our reading of "identical convolutions on all edges except those leaving the input
  vertex": they are the only convolutions of a different shape);
* a vertex sums its inputs, then applies ReLU (vertices with one input just apply ReLU);
* channels and feature-map size are fixed within a cell.

The cells are chained by the FaDE skeleton (:mod:`archgraph.embody.fade_skeleton`: pooling
between cells, global average pooling, a linear classifier, Kaiming initialisation), which the hyper-architectures of
:mod:`archgraph.hyper` share.

Equal-size cells (§3.1: "once embedded, each DAG comes with the same number of weights"): a
cell's *width* — the channels of its DAG's vertices — may differ from the channels it passes
on. Edges leaving the input vertex map the cell's input channels to its width, the DAG's edges
keep the width, and the edges into the output vertex map it to the cell's output channels, so
cells of one row stay interchangeable. :func:`equal_size_width` picks the width that gives a DAG
a chosen number of weights; ``weights_per_cell`` of :func:`build_fade` applies it to every cell.

An edge of the DAG that carries an op spec uses that op instead of the default convolution.

Examples
--------
>>> import torch
>>> from archgraph import ArchGraph
>>> from archgraph.embody import build_fade
>>> cell = ArchGraph([(0, 1), (0, 2), (1, 2)])
>>> net = build_fade([cell, cell], input_shape=(1, 8, 8), num_classes=10, channels=4)
>>> net(torch.randn(5, 1, 8, 8)).shape
torch.Size([5, 10])
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

from .. import ops
from ..errors import SpaceError
from ..graph import ArchGraph
from ._plan import PlannedCell
from ._seeded import seeded_init
from .fade_skeleton import FadeSkeleton

__all__ = ["FadeCell", "FadeNetwork", "build_fade", "cell_weights", "equal_size_width"]

#: How far (relative) an equal-size cell's weight count may lie from its target.
EQUAL_SIZE_TOLERANCE = 0.05


class FadeCell(PlannedCell):
    """One DAG cell, FaDE §2.4: input vertex → DAG → output vertex, an op on every edge.

    The forward pass walks a plan fixed at construction (see ``_plan.py``): edges sorted by
    the topological position of their target. ``width`` is the channel count of the DAG's
    vertices (default ``out_channels``); see the module docstring.
    """

    def __init__(self, graph: ArchGraph, in_channels: int, out_channels: int, *, width: int | None = None,
                 kernel_size: int = 5, dim: int = 2):
        plan = _cell_plan(graph)
        width = out_channels if width is None else width
        out = graph.num_nodes + 1
        super().__init__(
            (_edge_module(op, *_edge_channels(src, dst, out, in_channels, width, out_channels),
                          kernel_size=kernel_size, dim=dim) for src, dst, op in plan),
            [(src, dst) for src, dst, _ in plan],
            activate=True,
        )
        self.graph = graph
        self.width = width

    @classmethod
    def of_size(cls, graph: ArchGraph, in_channels: int, out_channels: int, weights: int | None, *,
                kernel_size: int = 5, dim: int = 2) -> FadeCell:
        """The cell of ``graph`` whose width gives it ``weights`` weights (:func:`equal_size_width`);
        with ``weights=None``, of width ``out_channels``."""
        width = None if weights is None else equal_size_width(graph, in_channels, out_channels, weights,
                                                               kernel_size=kernel_size, dim=dim)
        return cls(graph, in_channels, out_channels, width=width, kernel_size=kernel_size, dim=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.walk([x])[-1]

    def extra_repr(self) -> str:
        return f"vertices={self.graph.num_nodes}, edges={len(self.edge_ops)}, width={self.width}"


class FadeNetwork(FadeSkeleton):
    """The compiled FaDE network: the :class:`~archgraph.embody.fade_skeleton.FadeSkeleton` with
    one :class:`FadeCell` per graph of ``cells`` (FaDE §2.4, §3)."""

    def __init__(self, cells: Sequence[ArchGraph], *, input_shape: Sequence[int], num_classes: int,
                 channels: int | Sequence[int] = 16, kernel_size: int = 5, pool: str | None = "max",
                 weights_per_cell: int | Sequence[int] | None = None):
        cells = _as_cells(cells)

        def make_cell(i: int, c_in: int, c_out: int, *, weights: int | None, dim: int) -> FadeCell:
            return FadeCell.of_size(cells[i], c_in, c_out, weights, kernel_size=kernel_size, dim=dim)

        super().__init__(make_cell, len(cells), input_shape=input_shape, num_classes=num_classes,
                         channels=channels, pool=pool, weights_per_cell=weights_per_cell)


def build_fade(cells: Sequence[ArchGraph], *, input_shape: Sequence[int], num_classes: int,
               channels: int | Sequence[int] = 16, kernel_size: int = 5, pool: str | None = "max",
               weights_per_cell: int | Sequence[int] | None = None, seed: int | None = None) -> FadeNetwork:
    """Compile a chain of DAG cells into a :class:`FadeNetwork`.

    ``channels`` is the first cell's channel count, doubled for each following cell, or one
    count per cell. The FaDE paper used 5×5 kernels and 16 or 32 channels in the deepest
    cell (§3). ``weights_per_cell`` (one count, or one per cell) makes the cells equal-size
    (§3.1): each cell's width is chosen by :func:`equal_size_width` so that it carries that
    many weights, whatever its DAG; ``channels`` are then the channels passed between cells.
    ``seed`` draws the initial weights from a generator seeded with it, leaving torch's global
    generator as it was (``None``: from the global generator; see :mod:`archgraph.embody._seeded`).
    """
    with seeded_init(seed):
        return FadeNetwork(cells, input_shape=input_shape, num_classes=num_classes, channels=channels,
                           kernel_size=kernel_size, pool=pool, weights_per_cell=weights_per_cell)


def cell_weights(graph: ArchGraph, in_channels: int, out_channels: int, width: int, *, kernel_size: int = 5,
                 dim: int = 2) -> int:
    """The number of weights (parameters) of ``FadeCell(graph, in_channels, out_channels,
    width=width, ...)``, counted without building it.

    >>> cell_weights(ArchGraph([], num_nodes=1), 1, 4, 10, kernel_size=3)   # 3×3 convolutions 1→10, 10→4
    464
    """
    out = graph.num_nodes + 1
    return sum(_edge_weights(op, *_edge_channels(src, dst, out, in_channels, width, out_channels), kernel_size, dim)
               for src, dst, op in _cell_plan(graph))


def equal_size_width(graph: ArchGraph, in_channels: int, out_channels: int, weights: int, *, kernel_size: int = 5,
                     dim: int = 2, tolerance: float = EQUAL_SIZE_TOLERANCE) -> int:
    """The width (channels of the DAG's vertices) at which ``graph``'s cell carries the number
    of weights closest to ``weights`` (FaDE §3.1's equal-size cells); the smaller width on a tie.

    Raises :class:`~archgraph.SpaceError` where even the closest width misses ``weights`` by more
    than ``tolerance`` (relative): whole channels move a many-edged DAG's count in coarse steps
    at small sizes, so the message names the width's count and asks for a larger size.

    >>> chain, full = ArchGraph([(0, 1)]), ArchGraph([(0, 1), (0, 2), (1, 2)])
    >>> [equal_size_width(g, 1, 8, 20000, kernel_size=3) for g in (chain, full)]
    [43, 26]
    >>> [cell_weights(g, 1, 8, w, kernel_size=3) for g, w in ((chain, 43), (full, 26))]
    [20218, 20470]
    """
    if weights <= 0:
        raise SpaceError(f"weights_per_cell must be positive, got {weights}")

    def count(width: int) -> int:
        return cell_weights(graph, in_channels, out_channels, width, kernel_size=kernel_size, dim=dim)

    low, high = 1, 2
    while count(high) < weights:  # the count grows with the width: bracket, then bisect
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) < weights else (low, middle)
    width = min((low, high), key=lambda w: abs(count(w) - weights))
    if abs(count(width) - weights) > tolerance * weights:
        raise SpaceError(
            f"no width gives {graph!r} {weights} weights within {tolerance:.0%}: width {width} gives "
            f"{count(width)}, width {width + 1} gives {count(width + 1)}; choose a larger weights_per_cell "
            "(whole channels move a many-edged cell's count in coarse steps at small sizes)")
    return width


def _cell_plan(graph: ArchGraph) -> list[tuple[int, int, str | None]]:
    """The edges ``(source, target, op)`` of ``graph``'s cell by vertex position — 0 = the input
    vertex, 1..n = the DAG's vertices in ``graph.topological_order()``, n + 1 = the output
    vertex — sorted by target, then source: the order a :class:`FadeCell` runs them in.

    >>> _cell_plan(ArchGraph([(1, 0)]))
    [(0, 1, None), (1, 2, None), (2, 3, None)]
    """
    position = {v: i + 1 for i, v in enumerate(graph.topological_order())}
    out = graph.num_nodes + 1
    edges = [(0, position[s], None) for s in graph.sources]
    edges += [(position[u], position[v], graph.edge_op(u, v)) for u, v in graph.edges]
    edges += [(position[t], out, None) for t in graph.sinks]
    return sorted(edges, key=lambda e: (e[1], e[0]))


def _edge_channels(source: int, target: int, output: int, in_channels: int, width: int,
                   out_channels: int) -> tuple[int, int]:
    """``(in, out)`` channels of the edge ``source → target`` of a cell whose output vertex sits
    at position ``output``: the input vertex (0) holds ``in_channels``, the output vertex
    ``out_channels``, the DAG's vertices ``width``."""
    return (in_channels if source == 0 else width), (out_channels if target == output else width)


def _edge_module(op: str | None, in_channels: int, out_channels: int, *, kernel_size: int, dim: int) -> nn.Module:
    """The module on an edge: ``op``, else ``conv(kernel_size)``."""
    return ops.build(op or f"conv({kernel_size})", ops.OpContext(in_channels, out_channels, dim=dim))


@functools.lru_cache(maxsize=65536)
def _edge_weights(op: str | None, in_channels: int, out_channels: int, kernel_size: int, dim: int) -> int:
    """The weight count of :func:`_edge_module`, from a module built on the meta device."""
    with torch.device("meta"):
        module = _edge_module(op, in_channels, out_channels, kernel_size=kernel_size, dim=dim)
    return sum(p.numel() for p in module.parameters())


def _as_cells(cells) -> tuple[ArchGraph, ...]:
    cells = (cells,) if isinstance(cells, ArchGraph) else tuple(cells)
    if not cells or not all(isinstance(c, ArchGraph) for c in cells):
        raise TypeError("a FaDE network takes a non-empty sequence of ArchGraph cells")
    return cells
