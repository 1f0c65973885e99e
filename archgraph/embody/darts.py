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

Cells found by other searches need two more things, both encoded in the graph itself, so that
equality and the canonical hash see them (a DARTS-found cell needs neither, and its graph
stays as it was):

* a node may take one input twice, with two ops (NASNet's node 5 sums two 3×3 average poolings
  of ``c_{k-2}``): that edge's op is a parallel spec, ``"avg_pool_3x3 + avg_pool_3x3"``
  (:func:`archgraph.ops.parallel`), compiled into one module per op;
* a cell may concatenate only some nodes (NASNet, AmoebaNet: the nodes no other node uses):
  the graph then ends in an *output vertex*, the last one, whose incoming edges carry no op and
  come from the concatenated nodes (:func:`darts_concat`). Without one, the cell concatenates
  every intermediate node.

The published genotypes come in the reference tuple format (:class:`Genotype`) as
:data:`DARTS_V1`, :data:`DARTS_V2`, :data:`NASNET`, :data:`AMOEBANET`, :data:`ENAS` and
:data:`PNAS` (all in :data:`GENOTYPES`); :func:`genotype_to_graphs` turns them into
ArchGraphs, which compile as the DARTS reference code (quark0/darts, ``cnn/model.py``)
compiles the genotype.

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
from typing import NamedTuple

import torch

from .. import ops
from ..errors import ShapeError, SpaceError
from ..graph import ArchGraph
from ._plan import PlannedCell, drop_path, node_plan
from ._seeded import seeded_init
from .darts_skeleton import DartsSkeleton, darts_input, reduction_layers

__all__ = [
    "Genotype",
    "DARTS_V1",
    "DARTS_V2",
    "NASNET",
    "AMOEBANET",
    "ENAS",
    "PNAS",
    "GENOTYPES",
    "check_darts_cell",
    "darts_concat",
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

#: NASNet-A (Zoph et al., "Learning Transferable Architectures for Scalable Image
#: Recognition", CVPR 2018), as the DARTS reference code's ``cnn/genotypes.py`` writes it:
#: five nodes; the normal cell concatenates them all, the reduction cell its unused nodes.
NASNET = Genotype(
    normal=[("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
            ("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
            ("sep_conv_3x3", 1), ("skip_connect", 1)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
            ("avg_pool_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2),
            ("sep_conv_3x3", 2), ("max_pool_3x3", 1)],
    reduce_concat=[4, 5, 6],
)

#: AmoebaNet-A (Real et al., "Regularized Evolution for Image Classifier Architecture Search",
#: AAAI 2019), as the DARTS reference code's ``cnn/genotypes.py`` writes it.
AMOEBANET = Genotype(
    normal=[("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1),
            ("skip_connect", 0), ("avg_pool_3x3", 1)],
    normal_concat=[4, 5, 6],
    reduce=[("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
            ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1),
            ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)],
    reduce_concat=[3, 4, 6],
)

#: The ENAS convolutional cells (Pham et al., "Efficient Neural Architecture Search via
#: Parameter Sharing", ICML 2018), as D-X-Y/AutoDL-Projects' DARTS-format genotypes write them.
ENAS = Genotype(
    normal=[("sep_conv_3x3", 1), ("skip_connect", 1), ("sep_conv_5x5", 1), ("skip_connect", 0),
            ("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("avg_pool_3x3", 1),
            ("sep_conv_5x5", 1), ("avg_pool_3x3", 0)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("avg_pool_3x3", 1),
            ("sep_conv_3x3", 1), ("avg_pool_3x3", 1), ("avg_pool_3x3", 1), ("sep_conv_5x5", 4),
            ("sep_conv_3x3", 5), ("sep_conv_5x5", 0)],
    reduce_concat=[2, 3, 4, 5, 6],
)

#: PNASNet-5 (Liu et al., "Progressive Neural Architecture Search", ECCV 2018), one cell used
#: as both normal and reduction cell, as the PNAS authors' PyTorch port (chenxi116/PNASNet.pytorch)
#: and D-X-Y/AutoDL-Projects write it in the DARTS format.
PNAS = Genotype(
    normal=[("sep_conv_5x5", 0), ("max_pool_3x3", 0), ("sep_conv_7x7", 1), ("max_pool_3x3", 1),
            ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
            ("sep_conv_3x3", 0), ("skip_connect", 1)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 0), ("max_pool_3x3", 0), ("sep_conv_7x7", 1), ("max_pool_3x3", 1),
            ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
            ("sep_conv_3x3", 0), ("skip_connect", 1)],
    reduce_concat=[2, 3, 4, 5, 6],
)

#: The published genotypes by name.
GENOTYPES: dict[str, Genotype] = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2, "NASNET": NASNET,
                                  "AMOEBANET": AMOEBANET, "ENAS": ENAS, "PNAS": PNAS}


# --- cells as graphs -----------------------------------------------------------------------

def check_darts_cell(graph: ArchGraph) -> int:
    """Check that ``graph`` follows the DARTS cell convention; return its number of
    intermediate nodes (the output vertex, if any, not counted).

    Raises
    ------
    SpaceError
        If the graph has fewer than 3 vertices, an edge into vertex 0 or 1, an edge from a
        higher to a lower id, an edge without an op (other than into an output vertex), a
        vertex op, an intermediate node without inputs, or an output vertex that takes an
        input vertex or every intermediate node.

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
    output = _output_vertex(graph)
    for u, v in graph.edges:
        if v < 2:
            raise SpaceError(f"DARTS cell: edge ({u}, {v}) enters input vertex {v}; vertices 0 and 1 are the "
                             "cell's inputs and take no edges: renumber the intermediate nodes from 2")
        if u > v:
            raise SpaceError(f"DARTS cell: edge ({u}, {v}) goes from a higher to a lower id; number the "
                             "intermediate nodes in topological order")
        if graph.edge_op(u, v) is None and (v != output or u < 2):
            raise SpaceError(f"DARTS cell: edge ({u}, {v}) has no op; give every edge one, e.g. "
                             f"({u}, {v}, 'sep_conv_3x3') (op-less edges only enter an output vertex, the last, "
                             "from the intermediate nodes it concatenates)")
    last = n if output is None else output  # the edges into an output vertex come from nodes 2..last - 1
    for v in range(2, last):
        if not graph.predecessors(v):
            raise SpaceError(f"DARTS cell: intermediate node {v} has no input; add an edge into it "
                             "from a lower vertex, or remove the vertex")
    if output is not None and len(graph.predecessors(output)) == last - 2:
        raise SpaceError(f"DARTS cell: output vertex {output} concatenates every intermediate node, which a cell "
                         "without an output vertex does; remove the vertex")
    return last - 2


def darts_concat(graph: ArchGraph) -> tuple[int, ...]:
    """The nodes a DARTS cell concatenates into its output, in id order: the predecessors
    of its output vertex, or, without one, every intermediate node.

    Examples
    --------
    >>> normal, reduce = genotype_to_graphs(NASNET)
    >>> darts_concat(normal), darts_concat(reduce), reduce.num_nodes
    ((2, 3, 4, 5, 6), (4, 5, 6), 8)
    """
    nodes = check_darts_cell(graph)
    output = _output_vertex(graph)
    return tuple(range(2, 2 + nodes)) if output is None else graph.predecessors(output)


def _output_vertex(graph: ArchGraph) -> int | None:
    """The last vertex if it has inputs and none of its incoming edges carries an op."""
    v = graph.num_nodes - 1
    inputs = graph.predecessors(v)
    return v if inputs and all(graph.edge_op(u, v) is None for u in inputs) else None


def genotype_to_graphs(genotype: Genotype | Sequence) -> tuple[ArchGraph, ArchGraph]:
    """The ``(normal, reduce)`` ArchGraphs of a genotype in the reference tuple format.

    Two pairs of a node with the same input become one edge with a parallel op; a concat
    list that leaves out intermediate nodes becomes an output vertex (see the module
    docstring).

    Raises
    ------
    SpaceError
        If a node does not list two pairs, names an input that is not before it, or a
        concat list is empty, unsorted, repeats a node or names one that is not an
        intermediate node.

    Examples
    --------
    >>> normal, reduce = genotype_to_graphs(DARTS_V2)
    >>> normal.num_nodes, normal.edge_op(2, 5)
    (6, 'dil_conv_3x3')
    >>> normal, reduce = genotype_to_graphs(NASNET)
    >>> normal.edge_op(0, 5), reduce.predecessors(7)
    ('avg_pool_3x3 + avg_pool_3x3', (4, 5, 6))
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
    concat = [int(c) for c in concat]
    if not concat or concat != sorted(set(concat)) or not set(concat) <= set(nodes):
        raise SpaceError(f"genotype {which}_concat is {concat}; list intermediate nodes of {nodes}, each once, "
                         "in increasing order")
    ops_of: dict[tuple[int, int], list[str]] = {}
    for v, node_pairs in zip(nodes, zip(pairs[::2], pairs[1::2])):
        for op, j in node_pairs:
            if not 0 <= j < v:
                raise SpaceError(f"genotype {which} cell: node {v} takes input {j}; inputs are the vertices 0..{v - 1}")
            ops_of.setdefault((j, v), []).append(ops.check(op))  # a genotype is read: its ops checked here
    edges = [(j, v, tuple(names)) for (j, v), names in ops_of.items()]
    output = [] if concat == nodes else [(c, 2 + len(nodes)) for c in concat]
    graph = ArchGraph(edges + output, num_nodes=2 + len(nodes) + bool(output))
    check_darts_cell(graph)
    return graph


def _pairs_from_cell(graph: ArchGraph, which: str) -> tuple[list[tuple[str, int]], list[int]]:
    concat = darts_concat(graph)
    pairs = []
    for v in range(2, 2 + check_darts_cell(graph)):
        inputs = [(op, u) for u in graph.predecessors(v) for op in ops.split(graph.edge_op(u, v))]
        if len(inputs) != 2:
            raise SpaceError(f"{which} cell: node {v} has {len(inputs)} inputs (ops on its incoming edges), but the "
                             "genotype format holds exactly two per node; compile the graph directly instead")
        pairs += inputs
    return pairs, list(concat)


class DartsCell(PlannedCell):
    """A DARTS cell compiled from a graph (DARTS §2.1).

    The inputs are preprocessed to ``C`` channels (a :class:`~archgraph.ops.FactorizedReduce`
    for ``s0`` when the previous cell was a reduction, else a 1×1
    :class:`~archgraph.ops.ReLUConvBN`); each edge's op (each part of a parallel op) is built
    by :func:`archgraph.ops.build` from ``C`` to ``C`` channels, with stride 2 on edges
    leaving the inputs of a reduction cell; with ``dim=1`` every op is its 1-d counterpart
    (:class:`~archgraph.ops.OpContext`). ``forward(s0, s1, drop_prob=0.0)`` applies
    drop-path to every non-identity op while training; the output concatenates the nodes
    :attr:`concat` (:func:`darts_concat`) and has ``multiplier * C`` channels.

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
                 reduction: bool = False, reduction_prev: bool = False, dim: int = 2):
        nodes = check_darts_cell(graph)
        plan = node_plan(graph, 2, 2 + nodes)
        super().__init__(
            (ops.build(op, ops.OpContext(C, C, stride=2 if reduction and u < 2 else 1, dim=dim)) for u, _, op in plan),
            [(u, v) for u, v, _ in plan],
        )
        self.reduction = reduction
        self.nodes = nodes
        self.concat: list[int] = list(darts_concat(graph))
        self.multiplier = len(self.concat)
        if reduction_prev:
            self.preprocess0 = ops.FactorizedReduce(C_prev_prev, C, dim=dim)
        else:
            self.preprocess0 = ops.ReLUConvBN(C_prev_prev, C, 1, 1, 0, dim=dim)
        self.preprocess1 = ops.ReLUConvBN(C_prev, C, 1, 1, 0, dim=dim)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = self.walk([self.preprocess0(s0), self.preprocess1(s1)], drop_prob)
        return torch.cat([states[i] for i in self.concat], dim=1)

    def extra_repr(self) -> str:
        concat = "" if self.multiplier == self.nodes else f", concat={self.concat}"
        return f"nodes={self.nodes}{concat}, edges={len(self.edge_ops)}, reduction={self.reduction}"


class DartsNetwork(DartsSkeleton):
    """The DARTS CIFAR evaluation network (DARTS §3.2, App. A.2): the
    :class:`~archgraph.embody.darts_skeleton.DartsSkeleton` with :class:`DartsCell` s compiled
    from a normal and a reduction cell.

    Stem (3×3 conv to ``3 C`` channels + BN), ``layers`` cells with reduction cells at
    ``layers // 3`` and ``2 * layers // 3`` (channels doubled there), global average pooling
    and a linear classifier. With ``auxiliary=True`` an auxiliary head reads the output of
    cell ``2 * layers // 3`` (it expects 8×8 maps, i.e. 32×32 inputs).

    ``forward(x)`` returns the logits, in every mode, so the module exports with torch.fx,
    TorchScript and ONNX. ``forward_with_aux(x)`` returns ``(logits, aux_logits)``, where
    ``aux_logits`` is ``None`` unless the network is training and has the auxiliary head:
    train with ``loss = ce(logits) + 0.4 * ce(aux_logits)`` as DARTS does. Set the attribute
    ``drop_path_prob`` to schedule drop-path (DARTS raises it linearly to 0.2 over training).
    ``dim=1`` builds it for 1-d signals (see :mod:`~archgraph.embody.darts_skeleton`).

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
                 drop_path_prob: float = 0.0, dim: int = 2):
        def make_cell(*channels: int, reduction: bool, reduction_prev: bool) -> DartsCell:
            return DartsCell(reduce if reduction else normal, *channels, reduction=reduction,
                             reduction_prev=reduction_prev, dim=dim)

        super().__init__(make_cell, C=C, layers=layers, num_classes=num_classes, in_channels=input_channels,
                         auxiliary=auxiliary, drop_path_prob=drop_path_prob, dim=dim)


def build_darts(arch: Sequence[ArchGraph], *, input_shape: Sequence[int], num_classes: int, C: int = 36,
                layers: int = 20, auxiliary: bool = False, drop_path_prob: float = 0.0,
                seed: int | None = None) -> DartsNetwork:
    """Compile a ``(normal, reduce)`` pair of DARTS cells into a :class:`DartsNetwork` for
    images of ``input_shape = (C, H, W)`` or 1-d signals ``(C, L)`` (MNIST-1D: each op its
    1-d counterpart, :mod:`~archgraph.embody.darts_skeleton`). The defaults are the CIFAR-10 evaluation
    setting of DARTS §3.2 (36 channels, 20 cells). ``seed`` as for
    :func:`~archgraph.embody.build_fade`.

    Raises
    ------
    ShapeError
        If ``input_shape`` is not ``(C, H, W)`` or ``(C, L)``, a side does not halve exactly at every
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
    archgraph.errors.ShapeError: the darts space takes images (C, H, W) or signals (C, L), got shape (40,)
    >>> build_darts(genotype_to_graphs(DARTS_V1), input_shape=(1, 40), num_classes=10, C=2, layers=3).stem[0]
    Conv1d(1, 6, kernel_size=(3,), stride=(1,), padding=(1,), bias=False)
    """
    cells = (arch,) if isinstance(arch, ArchGraph) else tuple(arch)
    if len(cells) != 2 or not all(isinstance(c, ArchGraph) for c in cells):
        raise SpaceError(f"the darts space takes a (normal, reduce) pair of ArchGraphs, got {len(cells)} item(s) "
                         f"of type {', '.join(sorted({type(c).__name__ for c in cells}))}")
    halvings = len(reduction_layers(layers)) if layers >= 1 else 0
    channels, dim = darts_input(input_shape, space="darts", halvings=halvings)
    if auxiliary and dim == 2 and tuple(s >> halvings for s in input_shape[1:]) != (8, 8):
        h, w = input_shape[1:]
        raise ShapeError(f"the DARTS auxiliary head reads 8×8 maps after the last reduction (32×32 inputs), "
                         f"but input {h}×{w} gives {h >> halvings}×{w >> halvings}; pass auxiliary=False")
    with seeded_init(seed):
        return DartsNetwork(*cells, C=C, num_classes=num_classes, layers=layers, auxiliary=auxiliary,
                            input_channels=channels, drop_path_prob=drop_path_prob, dim=dim)
