"""The NAS-Bench-201 embodiment: the 4-node cell and its ResNet-like skeleton.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search", ICLR 2020, §2:

* a cell is a complete DAG on 4 nodes: node 0 is the cell's input, every edge ``j → i``
  (``j < i``) carries one of :data:`NB201_OPS`, node ``i`` is the sum of its incoming edges
  and node 3 is the output; channels and resolution stay fixed in a cell;
* the skeleton (§2.1, Fig. 1) is a 3×3 conv stem + BN, ``N`` cells, a residual block that
  halves the resolution and doubles the channels, ``N`` cells, another residual block,
  ``N`` cells, then BN-ReLU, global average pooling and a linear classifier (C = 16, N = 5).

Architectures are written as NAS-Bench-201 strings, ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``
(the ``k``-th group lists the edges into node ``k``). ``none`` edges are dropped at compile
time; a node whose edges are all ``none`` outputs zeros.

Examples
--------
>>> import torch
>>> from archgraph.embody.nb201 import build_nb201, from_nb201_string
>>> cell = from_nb201_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
...                          "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
>>> net = build_nb201(cell, input_shape=(3, 32, 32), num_classes=10, C=4, N=1)
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .. import ops
from ..errors import SpaceError
from ..graph import ArchGraph
from ._plan import PlannedCell, image_shape, node_plan
from ._seeded import seeded_init

__all__ = [
    "EDGES",
    "NB201_OPS",
    "check_nb201_cell",
    "from_nb201_string",
    "to_nb201_string",
    "NB201Cell",
    "NB201Network",
    "NB201Skeleton",
    "build_nb201",
    "xautodl_names",
]

#: The operations of NAS-Bench-201 (§2.1), in the benchmark's order.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

_NUM_NODES = 4
#: the 6 edges ``(j, i)`` of a cell, ``j < i``, in the order of a NAS-Bench-201 string
EDGES = tuple((j, i) for i in range(1, _NUM_NODES) for j in range(i))


def check_nb201_cell(graph: ArchGraph) -> None:
    """Check that ``graph`` is a NAS-Bench-201 cell: 4 vertices, the 6 edges ``j → i``
    (``j < i``), each with an op of :data:`NB201_OPS`, no vertex ops.

    Raises
    ------
    SpaceError
        Naming the vertex count, missing edge or foreign op.

    Examples
    --------
    >>> from archgraph import ArchGraph
    >>> check_nb201_cell(ArchGraph([(0, 1, "nor_conv_3x3")]))
    Traceback (most recent call last):
    ...
    archgraph.errors.SpaceError: a NAS-Bench-201 cell has 4 vertices, got 2; ...
    """
    if graph.num_nodes != _NUM_NODES:
        raise SpaceError(f"a NAS-Bench-201 cell has 4 vertices, got {graph.num_nodes}; "
                         "build it with from_nb201_string('|op~0|+|op~0|op~1|+|op~0|op~1|op~2|')")
    if graph.node_ops:
        raise SpaceError(f"a NAS-Bench-201 cell carries ops on its edges, but vertex {next(iter(graph.node_ops))} "
                         "has one; move it onto the edges")
    for edge in EDGES:
        op = graph.edge_op(*edge)
        if not graph.has_edge(*edge):
            raise SpaceError(f"a NAS-Bench-201 cell has all 6 edges j → i (j < i), but edge {edge} is missing; "
                             "add it with op 'none' to cut it")
        if op is None:
            raise SpaceError(f"edge {edge} has no op; give it one of {', '.join(NB201_OPS)}")
        if op not in NB201_OPS:
            raise SpaceError(f"edge {edge} carries {op!r}, which is not a NAS-Bench-201 op; "
                             f"use one of {', '.join(NB201_OPS)}")


def from_nb201_string(arch: str) -> ArchGraph:
    """The cell of a NAS-Bench-201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

    Examples
    --------
    >>> g = from_nb201_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    >>> g.edge_op(1, 2), g.num_edges
    ('skip_connect', 6)
    """
    groups = arch.strip().split("+")
    if len(groups) != _NUM_NODES - 1:
        raise SpaceError(f"a NAS-Bench-201 string has 3 '+'-separated groups, one per node 1..3, "
                         f"got {len(groups)} in {arch!r}")
    edges = []
    for i, group in enumerate(groups, start=1):
        for token in group.strip("|").split("|"):
            op, _, j = token.partition("~")
            if not j.isdigit():
                raise SpaceError(f"NAS-Bench-201 string {arch!r}: expected 'op~input' in group {i}, got {token!r}")
            edges.append((int(j), i, op))
    if sorted((j, i) for j, i, _ in edges) != sorted(EDGES):
        raise SpaceError(f"NAS-Bench-201 string {arch!r}: group k lists the inputs 0..k-1 of node k once each; "
                         "write '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
    graph = ArchGraph(edges, num_nodes=_NUM_NODES)
    check_nb201_cell(graph)
    return graph


def to_nb201_string(graph: ArchGraph) -> str:
    """The NAS-Bench-201 string of a cell (inverse of :func:`from_nb201_string`).

    Examples
    --------
    >>> s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    >>> to_nb201_string(from_nb201_string(s)) == s
    True
    """
    check_nb201_cell(graph)
    return "+".join(
        "|" + "|".join(f"{graph.edge_op(j, i)}~{j}" for j in range(i)) + "|" for i in range(1, _NUM_NODES)
    )


class _ResidualBlock(nn.Module):
    """The skeleton's reduction: a ResNet basic block with stride 2 (NAS-Bench-201 §2.1):
    ReLU-conv-BN 3×3 (stride 2), ReLU-conv-BN 3×3, plus a 2×2 average-pool + 1×1 conv
    shortcut; no ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ops.ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ops.ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Cell(PlannedCell):
    """A NAS-Bench-201 cell compiled from a graph (§2): ``C`` channels in and out, node 3's
    sum is the output.

    Examples
    --------
    >>> import torch
    >>> cell = NB201Cell(from_nb201_string("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"), 4)
    >>> cell.extra_repr()
    'edges=3'
    >>> cell(torch.randn(2, 4, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
    """

    def __init__(self, graph: ArchGraph, C: int):
        check_nb201_cell(graph)
        plan = node_plan(graph, 1)
        super().__init__((ops.build(op, ops.OpContext(C, C)) for _, _, op in plan), [(u, v) for u, v, _ in plan])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.walk([x])[-1]

    def extra_repr(self) -> str:
        return f"edges={len(self.edge_ops)}"


class NB201Skeleton(nn.Module):
    """The NAS-Bench-201 skeleton (§2.1) around the cells ``make_cell(C)`` builds, each of ``C``
    channels in and out: stem, three stages of ``N`` cells at ``C``, ``2C``, ``4C`` channels joined
    by stride-2 residual blocks, BN-ReLU, global average pooling and a linear classifier.
    ``forward`` returns the logits. The compiled network (:class:`NB201Network`) and the search
    supernet (:class:`~archgraph.oneshot.NB201Supernet`) are this skeleton with different cells.

    Examples
    --------
    >>> net = NB201Skeleton(lambda C: nn.Identity(), C=4, N=1)
    >>> [type(m).__name__ for m in net.cells]
    ['Identity', '_ResidualBlock', 'Identity', '_ResidualBlock', 'Identity']
    """

    def __init__(self, make_cell: Callable[[int], nn.Module], *, C: int = 16, N: int = 5, num_classes: int = 10,
                 in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        c = C
        for stage in range(3):
            if stage:
                layers.append(_ResidualBlock(c, 2 * c))
                c *= 2
            layers += [make_cell(c) for _ in range(N)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(features).flatten(1))


class NB201Network(NB201Skeleton):
    """The NAS-Bench-201 network of one cell: the :class:`NB201Skeleton` with :class:`NB201Cell` s
    compiled from ``cell``.

    Examples
    --------
    >>> net = NB201Network(from_nb201_string("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"), C=4, N=1)
    >>> len(net.cells), sum(p.numel() for p in net.parameters())
    (5, 4894)
    """

    def __init__(self, cell: ArchGraph, *, C: int = 16, N: int = 5, num_classes: int = 10, input_channels: int = 3):
        super().__init__(functools.partial(NB201Cell, cell), C=C, N=N, num_classes=num_classes,
                         in_channels=input_channels)


def build_nb201(arch: ArchGraph | str, *, input_shape: Sequence[int], num_classes: int, C: int = 16,
                N: int = 5, seed: int | None = None) -> NB201Network:
    """Compile a NAS-Bench-201 cell (an ArchGraph or a NAS-Bench-201 string) into a
    :class:`NB201Network` for images of ``input_shape = (C, H, W)``; the defaults are the
    benchmark's C = 16, N = 5. ``seed`` as for :func:`~archgraph.embody.build_fade`.

    Raises
    ------
    ShapeError
        If ``input_shape`` is not ``(C, H, W)`` with H and W multiples of 4.
    SpaceError
        If ``arch`` is not a NAS-Bench-201 cell.

    Examples
    --------
    >>> build_nb201("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", input_shape=(64,), num_classes=10)
    Traceback (most recent call last):
    ...
    archgraph.errors.ShapeError: the nb201 space takes images (C, H, W), got shape (64,); ...
    """
    channels, _, _ = image_shape(input_shape, space="nb201", halvings=2)
    if isinstance(arch, str):
        arch = from_nb201_string(arch)
    if not isinstance(arch, ArchGraph):
        raise SpaceError("the nb201 space takes one ArchGraph cell or a NAS-Bench-201 string, "
                         f"got {type(arch).__name__}")
    with seeded_init(seed):
        return NB201Network(arch, C=C, N=N, num_classes=num_classes, input_channels=channels)


def xautodl_names(net: NB201Skeleton) -> dict[str, str]:
    """The state-dict names of ``net`` in the NAS-Bench-201 authors' ``TinyNetwork`` of the same
    cell (``xautodl.models.cell_infers.tiny_network``): archgraph key → xautodl key.

    Both networks hold the same tensors under different names:

    * the stem, ``lastact``, the classifier and the residual blocks' ``downsample`` keep theirs;
    * the residual blocks' ``conv_a`` and ``conv_b`` and every ReLU-conv-BN on a cell edge are
      ``nn.Sequential`` s here, ``ReLUConvBN`` modules holding one in ``.op`` there: ``.1``
      (conv) and ``.2`` (batch norm) become ``.op.1`` and ``.op.2``;
    * a cell's ``edge_ops.k``, its ``k``-th compiled edge ``u → v`` (sorted by ``(v, u)``,
      ``none`` edges left out), is xautodl's ``layers.L``, ``L`` the index of ``u → v`` in the
      NAS-Bench-201 string (:data:`EDGES`), where every edge has a layer, ``none`` ones too.

    Load ``net``'s weights into xautodl's network with
    ``tiny.load_state_dict({names[k]: v for k, v in net.state_dict().items()})``.

    Raises
    ------
    TypeError
        If ``net`` holds cells other than compiled :class:`NB201Cell` s (a search supernet).

    Examples
    --------
    >>> net = build_nb201("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    ...                   input_shape=(3, 32, 32), num_classes=10, C=4, N=1)
    >>> names = xautodl_names(net)
    >>> names["cells.0.edge_ops.3.1.weight"]                  # the 4th live edge, 2 → 3, is the 6th
    'cells.0.layers.5.op.1.weight'
    >>> names["cells.1.conv_a.2.running_mean"], names["cells.1.downsample.1.weight"]
    ('cells.1.conv_a.op.2.running_mean', 'cells.1.downsample.1.weight')
    """
    names = {}
    for key in net.state_dict():
        parts = key.split(".")
        if parts[0] == "cells":
            cell = net.cells[int(parts[1])]
            if isinstance(cell, NB201Cell):
                k = int(parts[3])
                edge = (cell.sources[k], sum(cell.opens[: k + 1]))  # node v's edges open the v-th group
                parts[2:4] = ["layers", str(EDGES.index(edge)), "op"]
            elif not isinstance(cell, _ResidualBlock):
                raise TypeError(f"xautodl_names maps a network of compiled NB201Cells; cell {parts[1]} is a "
                                f"{type(cell).__name__}")
            elif parts[2] != "downsample":
                parts.insert(3, "op")
        names[key] = ".".join(parts)
    return names
