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
* channels and feature-map size are fixed within a cell; between cells the channels roughly
  double and max pooling (2×2, stride 2) halves the feature map;
* Kaiming initialisation (§3).

An edge of the DAG that carries an op spec uses that op instead of the default convolution.
The network ends in global average pooling and a linear classifier. Feature maps may be 2-d
images ``(C, H, W)`` or 1-d signals ``(C, L)`` such as MNIST-1D.

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

from collections.abc import Sequence

import torch
from torch import nn

from .. import ops
from ..errors import ShapeError
from ..graph import ArchGraph
from ._plan import PlannedCell

__all__ = ["FadeCell", "FadeNetwork", "build_fade", "chain_channels"]


class FadeCell(PlannedCell):
    """One DAG cell, FaDE §2.4: input vertex → DAG → output vertex, an op on every edge.

    The forward pass walks a plan fixed at construction (see ``_plan.py``): edges sorted by
    the topological position of their target.
    """

    def __init__(self, graph: ArchGraph, in_channels: int, out_channels: int, *,
                 kernel_size: int = 5, dim: int = 2):
        plan = _cell_plan(graph)
        super().__init__(
            (_edge_module(op, src, in_channels, out_channels, kernel_size=kernel_size, dim=dim) for src, _, op in plan),
            [(src, dst) for src, dst, _ in plan],
            activate=True,
        )
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.walk([x])[-1]

    def extra_repr(self) -> str:
        return f"vertices={self.graph.num_nodes}, edges={len(self.edge_ops)}"


class FadeNetwork(nn.Module):
    """A chain of :class:`FadeCell` s with pooling between cells, then global average
    pooling and a linear classifier (FaDE §2.4, §3)."""

    def __init__(self, cells: Sequence[ArchGraph], *, input_shape: Sequence[int], num_classes: int,
                 channels: int | Sequence[int] = 16, kernel_size: int = 5, pool: str | None = "max"):
        super().__init__()
        cells = _as_cells(cells)
        dim = _spatial_dim(input_shape)
        widths = chain_channels(channels, len(cells))
        layers: list[nn.Module] = []
        c_in = int(input_shape[0])
        for i, (cell, c_out) in enumerate(zip(cells, widths)):
            if i > 0 and pool is not None:
                layers.append(_pooling(pool, dim))
            layers.append(FadeCell(cell, c_in, c_out, kernel_size=kernel_size, dim=dim))
            c_in = c_out
        self.cells = nn.Sequential(*layers)
        self.global_pool = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)[dim - 1](1)
        self.classifier = nn.Linear(c_in, num_classes)
        self.input_shape = tuple(int(s) for s in input_shape)
        _kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pool(self.cells(x)).flatten(1))


def build_fade(cells: Sequence[ArchGraph], *, input_shape: Sequence[int], num_classes: int,
               channels: int | Sequence[int] = 16, kernel_size: int = 5, pool: str | None = "max") -> FadeNetwork:
    """Compile a chain of DAG cells into a :class:`FadeNetwork`.

    ``channels`` is the first cell's channel count, doubled for each following cell, or one
    count per cell. The FaDE paper used 5×5 kernels and 16 or 32 channels in the deepest
    cell (§3).
    """
    return FadeNetwork(cells, input_shape=input_shape, num_classes=num_classes,
                       channels=channels, kernel_size=kernel_size, pool=pool)


def chain_channels(channels: int | Sequence[int], num_cells: int) -> list[int]:
    """Per-cell channel counts: an int doubles from cell to cell, a sequence is taken as is.

    >>> chain_channels(4, 4)
    [4, 8, 16, 32]
    """
    if isinstance(channels, int):
        return [channels * 2**i for i in range(num_cells)]
    widths = [int(c) for c in channels]
    if len(widths) != num_cells:
        raise ValueError(f"channels lists one count per cell: expected {num_cells}, got {len(widths)}")
    return widths


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


def _edge_module(op: str | None, source: int, in_channels: int, out_channels: int, *,
                 kernel_size: int, dim: int) -> nn.Module:
    """The module on an edge leaving position ``source``: ``op``, else ``conv(kernel_size)``;
    edges leaving the input vertex (position 0) take the cell's input channels."""
    context = ops.OpContext(in_channels if source == 0 else out_channels, out_channels, dim=dim)
    return ops.build(op or f"conv({kernel_size})", context)


def _as_cells(cells) -> tuple[ArchGraph, ...]:
    cells = (cells,) if isinstance(cells, ArchGraph) else tuple(cells)
    if not cells or not all(isinstance(c, ArchGraph) for c in cells):
        raise TypeError("a FaDE network takes a non-empty sequence of ArchGraph cells")
    return cells


def _spatial_dim(input_shape: Sequence[int]) -> int:
    if len(input_shape) not in (2, 3):
        raise ShapeError(
            f"the fade embodiment takes images (C, H, W) or signals (C, L), got input shape {tuple(input_shape)}; "
            "reshape flat features to (1, L), or use the mlp space for tabular data"
        )
    return len(input_shape) - 1


def _pooling(kind: str, dim: int) -> nn.Module:
    pools = {"max": (nn.MaxPool1d, nn.MaxPool2d), "avg": (nn.AvgPool1d, nn.AvgPool2d)}
    if kind not in pools:
        raise ValueError(f"pool must be 'max', 'avg' or None, got {kind!r}")
    return pools[kind][dim - 1](2, stride=2, ceil_mode=True)


def _kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal weights for convolutions and linear layers, zero biases (FaDE §3)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
