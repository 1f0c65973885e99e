"""The DARTS embodiment: two-input cells and the CIFAR evaluation network.

Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019:

* a cell (§2.1) is a DAG whose vertices ``0`` and ``1`` are the outputs of the two previous
  cells, ``c_{k-2}`` and ``c_{k-1}``, and whose vertices ``2 .. n-1`` are intermediate nodes;
  every edge ``u → v`` (``u < v``) carries an op, a node is the sum of its incoming edges, and
  the cell's output concatenates all intermediate nodes along the channels;
* the evaluation network (§3.2, App. A.2) stacks ``layers`` cells after a 3×3 stem; the
  cells at one and two thirds of the depth are *reduction* cells (ops on edges leaving the
  inputs have stride 2, channels double), the others *normal* cells; an auxiliary head may
  read the features after the second reduction; path dropout (drop-path) regularises it.

``none`` edges are dropped at compile time (they add zeros). A node whose edges are all
``none`` keeps one, so it still outputs zeros of the right shape.

The published genotypes come as :data:`DARTS_V1` and :data:`DARTS_V2` in the reference
tuple format (:class:`Genotype`); :func:`genotype_to_graphs` turns them into ArchGraphs.

Examples
--------
>>> import torch
>>> from archgraph.embody.darts import DARTS_V2, build_darts, genotype_to_graphs
>>> net = build_darts(genotype_to_graphs(DARTS_V2), input_shape=(3, 16, 16), num_classes=10,
...                   C=4, layers=3)
>>> net.eval()(torch.randn(2, 3, 16, 16)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Optional

import torch
from torch import nn

from .. import ops
from ..errors import ShapeError, SpaceError
from ..graph import ArchGraph
from ._plan import PlannedCell, drop_path, image_shape, node_plan

__all__ = [
    "Genotype",
    "DARTS_V1",
    "DARTS_V2",
    "check_darts_cell",
    "genotype_to_graphs",
    "graphs_to_genotype",
    "drop_path",
    "DartsCell",
    "DartsNetwork",
    "build_darts",
]


class Genotype(NamedTuple):
    """A DARTS architecture in the reference tuple format: per cell, two ``(op, input)``
    pairs per intermediate node (inputs numbered as cell vertices) and the concatenated
    nodes."""

    normal: list[tuple[str, int]]
    normal_concat: list[int]
    reduce: list[tuple[str, int]]
    reduce_concat: list[int]


#: The cells found by first-order DARTS (Liu et al. 2019, Table 1, "DARTS (first order)").
DARTS_V1 = Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5],
)

#: The cells found by second-order DARTS (Liu et al. 2019, Figs. 4-5; Table 1: 3.3M
#: parameters in the CIFAR-10 evaluation network).
DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)


# --- cells as graphs -----------------------------------------------------------------------

def check_darts_cell(graph: ArchGraph) -> int:
    """Check that ``graph`` follows the DARTS cell convention; return its number of
    intermediate nodes.

    Raises
    ------
    SpaceError
        If the graph has fewer than 3 vertices, an edge into vertex 0 or 1, an edge from a
        higher to a lower id, an edge without an op, a vertex op, or an intermediate node
        without inputs.

    Examples
    --------
    >>> from archgraph import ArchGraph
    >>> check_darts_cell(ArchGraph([(0, 2, "sep_conv_3x3"), (1, 2, "skip_connect")]))
    1
    >>> check_darts_cell(ArchGraph([(0, 1, "sep_conv_3x3")]))
    Traceback (most recent call last):
    ...
    archgraph.errors.SpaceError: DARTS cell: a cell has inputs 0 and 1 and intermediate nodes 2.., got 2 vertices; ...
    """
    n = graph.num_nodes
    if n < 3:
        raise SpaceError(f"DARTS cell: a cell has inputs 0 and 1 and intermediate nodes 2.., got {n} vertices; "
                         "add an intermediate node with edges from the inputs")
    if graph.node_ops:
        v, op = next(iter(graph.node_ops.items()))
        raise SpaceError(f"DARTS cell: vertex {v} carries op {op!r}, but DARTS ops sit on edges; "
                         "move it onto the vertex's incoming edges")
    for u, v in graph.edges:
        if v < 2:
            raise SpaceError(f"DARTS cell: edge ({u}, {v}) enters input vertex {v}; vertices 0 and 1 are the "
                             "cell's inputs and take no edges: renumber the intermediate nodes from 2")
        if u > v:
            raise SpaceError(f"DARTS cell: edge ({u}, {v}) goes from a higher to a lower id; number the "
                             "intermediate nodes in topological order")
        if graph.edge_op(u, v) is None:
            raise SpaceError(f"DARTS cell: edge ({u}, {v}) has no op; give every edge one, "
                             f"e.g. ({u}, {v}, 'sep_conv_3x3')")
    for v in range(2, n):
        if not graph.predecessors(v):
            raise SpaceError(f"DARTS cell: intermediate node {v} has no input; add an edge into it "
                             "from a lower vertex, or remove the vertex")
    return n - 2


def genotype_to_graphs(genotype: Genotype | Sequence) -> tuple[ArchGraph, ArchGraph]:
    """The ``(normal, reduce)`` ArchGraphs of a genotype in the reference tuple format.

    Raises
    ------
    SpaceError
        If a node does not list two pairs, takes the same input twice, names an input that
        is not before it, or a concat list leaves out an intermediate node (archgraph's
        cell concatenates them all, as every DARTS-found genotype does).

    Examples
    --------
    >>> normal, reduce = genotype_to_graphs(DARTS_V2)
    >>> normal.num_nodes, normal.edge_op(2, 5)
    (6, 'dil_conv_3x3')
    """
    normal, normal_concat, reduce, reduce_concat = genotype
    return _cell_from_pairs(normal, normal_concat, "normal"), _cell_from_pairs(reduce, reduce_concat, "reduce")


def graphs_to_genotype(normal: ArchGraph, reduce: ArchGraph) -> Genotype:
    """The reference tuple format of a ``(normal, reduce)`` pair of cells with two inputs
    per intermediate node (pairs listed by input id).

    Examples
    --------
    >>> g = graphs_to_genotype(*genotype_to_graphs(DARTS_V2))
    >>> g.normal[4:6], g.normal_concat
    ([('skip_connect', 0), ('sep_conv_3x3', 1)], [2, 3, 4, 5])
    >>> genotype_to_graphs(g) == genotype_to_graphs(DARTS_V2)
    True
    """
    normal_pairs, normal_concat = _pairs_from_cell(normal, "normal")
    reduce_pairs, reduce_concat = _pairs_from_cell(reduce, "reduce")
    return Genotype(normal_pairs, normal_concat, reduce_pairs, reduce_concat)


def _cell_from_pairs(pairs: Sequence[tuple[str, int]], concat: Sequence[int], which: str) -> ArchGraph:
    pairs = [(op, int(j)) for op, j in pairs]
    if not pairs or len(pairs) % 2:
        raise SpaceError(f"genotype {which} cell: expected two (op, input) pairs per node, got {len(pairs)} pairs")
    nodes = list(range(2, 2 + len(pairs) // 2))
    if list(concat) != nodes:
        raise SpaceError(f"genotype {which}_concat is {list(concat)}, but an archgraph DARTS cell concatenates "
                         f"every intermediate node {nodes}; genotypes found by DARTS all do")
    edges = []
    for v, ((op_a, a), (op_b, b)) in zip(nodes, zip(pairs[::2], pairs[1::2])):
        if a == b:
            raise SpaceError(f"genotype {which} cell: node {v} takes input {a} twice ({op_a}, {op_b}); "
                             "an ArchGraph has one edge per pair of vertices")
        for op, j in ((op_a, a), (op_b, b)):
            if not 0 <= j < v:
                raise SpaceError(f"genotype {which} cell: node {v} takes input {j}; inputs are the vertices 0..{v - 1}")
            edges.append((j, v, op))
    graph = ArchGraph(edges, num_nodes=2 + len(nodes))
    check_darts_cell(graph)
    return graph


def _pairs_from_cell(graph: ArchGraph, which: str) -> tuple[list[tuple[str, int]], list[int]]:
    check_darts_cell(graph)
    pairs = []
    for v in range(2, graph.num_nodes):
        inputs = graph.predecessors(v)
        if len(inputs) != 2:
            raise SpaceError(f"{which} cell: node {v} has {len(inputs)} inputs, but the genotype format holds "
                             "exactly two per node; compile the graph directly instead")
        pairs += [(graph.edge_op(u, v), u) for u in inputs]
    return pairs, list(range(2, graph.num_nodes))


class DartsCell(PlannedCell):
    """A DARTS cell compiled from a graph (DARTS §2.1).

    The inputs are preprocessed to ``C`` channels (a :class:`~archgraph.ops.FactorizedReduce`
    for ``s0`` when the previous cell was a reduction, else a 1×1
    :class:`~archgraph.ops.ReLUConvBN`); each edge's op is built by :func:`archgraph.ops.build`
    from ``C`` to ``C`` channels, with stride 2 on edges leaving the inputs of a reduction
    cell. ``forward(s0, s1, drop_prob=0.0)`` applies drop-path to every non-identity op
    while training; the output has ``multiplier * C`` channels.

    Examples
    --------
    >>> import torch
    >>> from archgraph import ArchGraph
    >>> cell = DartsCell(ArchGraph([(0, 2, "sep_conv_3x3"), (1, 2, "max_pool_3x3"), (2, 3, "skip_connect"),
    ...                             (0, 3, "none")]), 6, 6, 4, reduction=True)
    >>> cell.extra_repr()
    'nodes=2, edges=3, reduction=True'
    >>> cell(torch.randn(2, 6, 8, 8), torch.randn(2, 6, 8, 8)).shape
    torch.Size([2, 8, 4, 4])
    """

    def __init__(self, graph: ArchGraph, C_prev_prev: int, C_prev: int, C: int, *,
                 reduction: bool = False, reduction_prev: bool = False):
        multiplier = check_darts_cell(graph)
        plan = node_plan(graph, 2)
        super().__init__(
            (ops.build(op, ops.OpContext(C, C, stride=2 if reduction and u < 2 else 1)) for u, _, op in plan),
            [(u, v) for u, v, _ in plan],
        )
        self.reduction = reduction
        self.multiplier = multiplier
        if reduction_prev:
            self.preprocess0 = ops.FactorizedReduce(C_prev_prev, C)
        else:
            self.preprocess0 = ops.ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ops.ReLUConvBN(C_prev, C, 1, 1, 0)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = self.walk([self.preprocess0(s0), self.preprocess1(s1)], drop_prob)
        return torch.cat(states[2:], dim=1)

    def extra_repr(self) -> str:
        return f"nodes={self.multiplier}, edges={len(self.edge_ops)}, reduction={self.reduction}"


class _AuxiliaryHead(nn.Module):
    """The auxiliary classifier of the DARTS CIFAR network, for 8×8 feature maps
    (App. A.2, after Szegedy et al. 2015)."""

    def __init__(self, C: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),  # 8×8 → 2×2
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """The DARTS CIFAR evaluation network (DARTS §3.2, App. A.2) over a normal and a
    reduction cell.

    Stem (3×3 conv to ``3 C`` channels + BN), ``layers`` cells with reduction cells at
    ``layers // 3`` and ``2 * layers // 3`` (channels doubled there), global average pooling
    and a linear classifier. With ``auxiliary=True`` an auxiliary head reads the output of
    cell ``2 * layers // 3`` (it expects 8×8 maps, i.e. 32×32 inputs).

    ``forward(x)`` returns the logits, in every mode, so the module exports with torch.fx,
    TorchScript and ONNX. ``forward_with_aux(x)`` returns ``(logits, aux_logits)``, where
    ``aux_logits`` is ``None`` unless the network is training and has the auxiliary head:
    train with ``loss = ce(logits) + 0.4 * ce(aux_logits)`` as DARTS does. Set the attribute
    ``drop_path_prob`` to schedule drop-path (DARTS raises it linearly to 0.2 over training).

    Examples
    --------
    >>> import torch
    >>> net = DartsNetwork(*genotype_to_graphs(DARTS_V2), C=4, layers=3, auxiliary=True)
    >>> logits, aux = net.train().forward_with_aux(torch.randn(2, 3, 32, 32))
    >>> logits.shape, aux.shape
    (torch.Size([2, 10]), torch.Size([2, 10]))
    """

    def __init__(self, normal: ArchGraph, reduce: ArchGraph, *, C: int = 36, num_classes: int = 10,
                 layers: int = 20, auxiliary: bool = False, input_channels: int = 3,
                 drop_path_prob: float = 0.0):
        super().__init__()
        if layers < 1:
            raise ValueError(f"a DARTS network needs at least one cell, got layers={layers}")
        c_stem = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(input_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        reductions = _reduction_layers(layers)
        self.aux_index = reductions[-1]
        c_prev_prev, c_prev, c_cell = c_stem, c_stem, C
        cells, reduction_prev = [], False
        for i in range(layers):
            reduction = i in reductions
            c_cell = 2 * c_cell if reduction else c_cell
            cell = DartsCell(reduce if reduction else normal, c_prev_prev, c_prev, c_cell,
                             reduction=reduction, reduction_prev=reduction_prev)
            cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_cell
            if i == self.aux_index:
                c_aux = c_prev
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = _AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.drop_path_prob = float(drop_path_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x, False)[0]

    @torch.jit.export
    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(logits, aux_logits)``; ``aux_logits`` is ``None`` unless training with the head."""
        return self._forward(x, True)

    def _forward(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        aux: Optional[torch.Tensor] = None
        s0 = self.stem(x)
        s1 = s0
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if self.auxiliary_head is not None:
                if with_aux and self.training and i == self.aux_index:
                    aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, aux

    def extra_repr(self) -> str:
        return f"layers={len(self.cells)}, auxiliary={self.auxiliary_head is not None}"


def build_darts(arch: Sequence[ArchGraph], *, input_shape: Sequence[int], num_classes: int, C: int = 36,
                layers: int = 20, auxiliary: bool = False, drop_path_prob: float = 0.0) -> DartsNetwork:
    """Compile a ``(normal, reduce)`` pair of DARTS cells into a :class:`DartsNetwork` for
    images of ``input_shape = (C, H, W)``. The defaults are the CIFAR-10 evaluation
    setting of DARTS §3.2 (36 channels, 20 cells).

    Raises
    ------
    ShapeError
        If ``input_shape`` is not ``(C, H, W)``, H or W does not halve exactly at every
        reduction, or the auxiliary head would not see 8×8 maps.
    SpaceError
        If ``arch`` is not a pair of valid DARTS cells.

    Examples
    --------
    >>> net = build_darts(genotype_to_graphs(DARTS_V1), input_shape=(1, 8, 8), num_classes=10,
    ...                   C=2, layers=2)
    >>> net.stem[0].in_channels, [cell.reduction for cell in net.cells]
    (1, [True, True])
    >>> build_darts(genotype_to_graphs(DARTS_V1), input_shape=(40,), num_classes=10)
    Traceback (most recent call last):
    ...
    archgraph.errors.ShapeError: the darts space takes images (C, H, W), got shape (40,); ...
    """
    cells = (arch,) if isinstance(arch, ArchGraph) else tuple(arch)
    if len(cells) != 2 or not all(isinstance(c, ArchGraph) for c in cells):
        raise SpaceError(f"the darts space takes a (normal, reduce) pair of ArchGraphs, got {len(cells)} item(s) "
                         f"of type {', '.join(sorted({type(c).__name__ for c in cells}))}")
    halvings = len(_reduction_layers(layers)) if layers >= 1 else 0
    channels, h, w = image_shape(input_shape, space="darts", halvings=halvings)
    if auxiliary and (h >> halvings, w >> halvings) != (8, 8):
        raise ShapeError(f"the DARTS auxiliary head reads 8×8 maps after the last reduction (32×32 inputs), "
                         f"but input {h}×{w} gives {h >> halvings}×{w >> halvings}; pass auxiliary=False")
    return DartsNetwork(*cells, C=C, num_classes=num_classes, layers=layers, auxiliary=auxiliary,
                        input_channels=channels, drop_path_prob=drop_path_prob)


def _reduction_layers(layers: int) -> list[int]:
    """The indices of the reduction cells: one and two thirds of the depth (DARTS §3.2)."""
    return sorted({layers // 3, 2 * layers // 3})
