"""The DARTS search supernet: every edge of a cell a relaxed choice between its candidate ops.

Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019:

* a cell (§2.1) has two input nodes (the outputs of the two previous cells), ``nodes``
  intermediate nodes and an edge from every earlier node into each intermediate node; a node
  sums its incoming edges and the cell concatenates its intermediate nodes;
* each edge is a *mixed operation* (§2.2, eq. 2): the weighted sum of every candidate op,
  weighted by a relaxation of the edge's architecture parameters α — here a
  :class:`~archgraph.relax.Choice`, so softmax (DARTS), hard Gumbel (GDAS), sigmoid (FairDARTS)
  or Dirichlet (DrNAS) all work;
* all normal cells share one α per edge, all reduction cells another (§2.2: α_normal and
  α_reduce); the search network (§3.1.1) stacks 8 cells with 16 initial channels, reduction
  cells at one and two thirds of the depth, after a 3×3 convolution + batch-norm stem, and
  ends in global average pooling and a linear classifier.

As in the reference search model (quark0/darts and automl/RobustDARTS ``model_search.py``),
batch norm inside the cells is not affine and a pooling op is followed by a non-affine batch
norm. The ops an edge chooses between come from a :class:`~archgraph.spaces.Space`: the 8 DARTS
primitives (``"darts"``) or one of the RobustDARTS spaces ``"s1"`` .. ``"s5"`` (Zela et al.
2020, §3), where S1 offers a different pair of ops on every edge.

Each forward pass draws every edge's mixing weights once and uses that draw in every cell of
the type — the same ops run in all of them under hard Gumbel, as in GDAS, and the same
Dirichlet sample weights them under DrNAS. The attribute ``drop_path_prob`` applies drop-path
while training to the output of every mixed edge, where RobustDARTS' search model applies it
(its §5 raises the probability linearly during the search, to at most 0.6).

Examples
--------
>>> import torch
>>> from archgraph.oneshot.supernet import build_supernet
>>> from archgraph.relax import arch_parameters
>>> net = build_supernet("s3", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
>>> net
Supernet(space='s3', C=4, layers=3, nodes=4, cells=1 normal + 2 reduce, relaxation=Softmax(), drop_path_prob=0.0)
>>> net(torch.randn(2, 1, 8, 8)).shape
torch.Size([2, 10])
>>> len(arch_parameters(net)), net.edges("normal")[:3], net.edge_ops("normal", (0, 2))
(28, [(0, 2), (1, 2), (0, 3)], ('none', 'skip_connect', 'sep_conv_3x3'))
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .. import ops
from ..embody._plan import PlannedCell
from ..embody._seeded import seeded_init
from ..embody.darts_skeleton import DartsSkeleton, darts_input
from ..errors import SettingError, SpaceError
from ..relax import Choice, Relaxation, as_relaxation
from ..spaces import Space, load

__all__ = ["CELL_TYPES", "MixedOp", "SearchCell", "Supernet", "build_supernet"]

#: the two cell types of a DARTS network, in the order of a ``(normal, reduce)`` architecture
CELL_TYPES = ("normal", "reduce")

Edge = tuple[int, int]


class _Draws:
    """The mixing weights drawn in the current forward pass, one per edge of a cell type
    (``None`` outside a forward pass of the supernet)."""

    def __init__(self):
        self.values: dict[tuple[str, int], torch.Tensor] | None = None

    @contextmanager
    def scope(self) -> Iterator[None]:
        """One forward pass: draws made inside are shared, and forgotten on leaving."""
        self.values = {}
        try:
            yield
        finally:
            self.values = None


class MixedOp(Choice):
    """A DARTS mixed operation (DARTS §2.2, eq. 2): a :class:`~archgraph.relax.Choice` over one
    edge's candidate ops, named ``names``.

    Inside a forward pass of its :class:`Supernet`, the first cell of a type to run the edge
    draws its weights and every other cell of that type reuses the draw; called on its own it
    draws its own weights like any Choice.
    """

    def __init__(self, candidates: Sequence[nn.Module], names: Sequence[str], relaxation: Relaxation, *,
                 alpha: nn.Parameter | None, init_std: float, generator: torch.Generator | None,
                 draws: _Draws, key: tuple[str, int]):
        super().__init__(candidates, relaxation, alpha=alpha, init_std=init_std, generator=generator)
        self.names = tuple(names)
        self._draws = draws
        self._key = key

    def weights(self) -> torch.Tensor:
        values = self._draws.values
        if values is None:
            return super().weights()
        if self._key not in values:
            values[self._key] = super().weights()
        return values[self._key]

    def extra_repr(self) -> str:
        return f"{', '.join(self.names)}; {super().extra_repr()}"


def _candidate(name: str, C: int, stride: int, dim: int) -> nn.Module:
    """One candidate op of a search cell: non-affine batch norm, pooling followed by one."""
    op = ops.build(name, ops.OpContext(C, C, stride=stride, affine=False, dim=dim))
    if "pool" in ops.parse(name)[0]:
        return nn.Sequential(op, (nn.BatchNorm1d, nn.BatchNorm2d)[dim - 1](C, affine=False))
    return op


class SearchCell(PlannedCell):
    """A DARTS search cell (DARTS §2.1–2.2): every edge ``u → v`` (``u < v``, ``v ≥ 2``) a
    :class:`MixedOp` over ``edge_ops[j]``, the ``j``-th edge in the order of :attr:`edges`.

    ``alphas`` are the shared architecture parameters of the cell type, one per edge (``None``
    draws fresh ones). The inputs are preprocessed as in :class:`~archgraph.embody.DartsCell`,
    without affine batch norm; ``forward(s0, s1, drop_prob)`` returns ``nodes * C`` channels.
    ``dim`` is 2 for images, 1 for signals (every op its 1-d counterpart).
    """

    def __init__(self, edge_ops: Sequence[Sequence[str]], nodes: int, C_prev_prev: int, C_prev: int, C: int, *,
                 reduction: bool, reduction_prev: bool, relaxation: Relaxation,
                 alphas: Sequence[nn.Parameter] | None = None, init_std: float = 1e-3,
                 generator: torch.Generator | None = None, draws: _Draws | None = None, dim: int = 2):
        edges = tuple(cell_edges(nodes))
        if len(edge_ops) != len(edges):
            raise SpaceError(f"a cell with {nodes} intermediate nodes has {len(edges)} edges, "
                             f"got ops for {len(edge_ops)}")
        cell_type = CELL_TYPES[reduction]
        draws = draws if draws is not None else _Draws()
        mixed = []
        for j, ((u, _), names) in enumerate(zip(edges, edge_ops)):
            stride = 2 if reduction and u < 2 else 1
            mixed.append(MixedOp([_candidate(name, C, stride, dim) for name in names], names, relaxation,
                                 alpha=None if alphas is None else alphas[j], init_std=init_std,
                                 generator=generator, draws=draws, key=(cell_type, j)))
        super().__init__(mixed, edges)
        self.edges = edges  # (u, v) of edge_ops[j], by target then source
        self.reduction, self.dim = reduction, dim
        self.nodes = self.multiplier = nodes
        if reduction_prev:
            self.preprocess0 = ops.FactorizedReduce(C_prev_prev, C, affine=False, dim=dim)
        else:
            self.preprocess0 = ops.ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False, dim=dim)
        self.preprocess1 = ops.ReLUConvBN(C_prev, C, 1, 1, 0, affine=False, dim=dim)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = self.walk([self.preprocess0(s0), self.preprocess1(s1)], drop_prob)
        return torch.cat(states[2:], dim=1)

    def extra_repr(self) -> str:
        return f"nodes={self.nodes}, edges={len(self.edges)}, reduction={self.reduction}"


def cell_edges(nodes: int) -> list[Edge]:
    """The edges of a DARTS cell with ``nodes`` intermediate nodes, by target then source.

    >>> cell_edges(2)
    [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    """
    return [(u, v) for v in range(2, 2 + nodes) for u in range(v)]


class Supernet(DartsSkeleton):
    """The DARTS search network (DARTS §3.1.1): the
    :class:`~archgraph.embody.darts_skeleton.DartsSkeleton` with :class:`SearchCell` s, the mixed
    edges of a normal and a reduction cell; see the module docstring. Build it with
    :func:`build_supernet`.

    Parameters
    ----------
    edge_ops:
        Per cell type (``"normal"``, ``"reduce"``), the candidate op names of every edge, in
        the order of :func:`cell_edges`.
    nodes:
        Intermediate nodes per cell.
    in_channels, num_classes, dim:
        Input channels, classes, and the spatial dimension: 2 for images, 1 for signals.
    C, layers, stem_multiplier:
        Initial channels, cells, and the stem's width as a multiple of ``C``.
    relaxation, init_std, generator:
        As for :class:`~archgraph.relax.Choice`: one relaxation for all edges; α drawn from
        ``N(0, init_std²)`` with ``generator``, which also draws the relaxation's noise.
        The weights take torch's default generator (:func:`build_supernet`'s ``seed`` seeds it).
    space:
        The name of the space the ops come from, for the ``repr``.

    Attributes
    ----------
    drop_path_prob:
        Drop-path probability of every mixed edge's output while training (default 0).
    """

    def __init__(self, edge_ops: Mapping[str, Sequence[Sequence[str]]], *, nodes: int, in_channels: int,
                 num_classes: int, C: int = 16, layers: int = 8, stem_multiplier: int = 3,
                 relaxation: str | Relaxation = "softmax", init_std: float = 1e-3,
                 generator: torch.Generator | None = None, space: str = "darts", dim: int = 2):
        if layers < 3:
            raise SettingError(f"a DARTS supernet needs at least 3 cells so that it has normal and reduction "
                             f"cells, got layers={layers}")
        relaxation = as_relaxation(relaxation)
        draws, alphas = _Draws(), {}

        def make_cell(*channels: int, reduction: bool, reduction_prev: bool) -> SearchCell:
            cell_type = CELL_TYPES[reduction]
            cell = SearchCell(edge_ops[cell_type], nodes, *channels, reduction=reduction,
                              reduction_prev=reduction_prev, relaxation=relaxation, alphas=alphas.get(cell_type),
                              init_std=init_std, generator=generator, draws=draws, dim=dim)
            alphas.setdefault(cell_type, [m.alpha for m in cell.edge_ops])  # one α per edge and cell type
            return cell

        super().__init__(make_cell, C=C, layers=layers, num_classes=num_classes, in_channels=in_channels,
                         stem_multiplier=stem_multiplier, dim=dim)
        self.space, self.C, self.nodes, self.relaxation = space, C, nodes, relaxation
        self._draws = draws

    def _forward(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        with self._draws.scope():
            return super()._forward(x, with_aux)

    # --- introspection, for selection ------------------------------------------------------

    @property
    def cell_types(self) -> tuple[str, ...]:
        """``("normal", "reduce")``."""
        return CELL_TYPES

    def edges(self, cell_type: str) -> list[Edge]:
        """The edges ``(u, v)`` of a cell of ``cell_type``, by target then source."""
        return list(self._cells_of(cell_type)[0].edges)

    def edge_ops(self, cell_type: str, edge: Edge) -> tuple[str, ...]:
        """The candidate op names of ``edge``, in the order of its Choice's candidates."""
        return self.choice(cell_type, edge).names

    def choice(self, cell_type: str, edge: Edge) -> MixedOp:
        """The Choice of ``edge`` in the first cell of ``cell_type``: its ``alpha`` is the one
        every cell of that type shares, and in a forward pass it draws the weights they all use."""
        return self.edge_choices(cell_type, edge)[0]

    def edge_choices(self, cell_type: str, edge: Edge) -> list[MixedOp]:
        """The Choices of ``edge`` in every cell of ``cell_type``, in network order."""
        cells = self._cells_of(cell_type)
        edge = tuple(edge)
        if edge not in cells[0].edges:
            raise SpaceError(f"{edge} is not an edge of the {cell_type} cell; its edges: "
                             f"{', '.join(map(str, cells[0].edges))}")
        j = cells[0].edges.index(edge)
        return [cell.edge_ops[j] for cell in cells]

    def _cells_of(self, cell_type: str) -> list[SearchCell]:
        if cell_type not in CELL_TYPES:
            raise SpaceError(f"unknown cell type {cell_type!r}; a DARTS supernet has {', '.join(CELL_TYPES)}")
        return [cell for cell in self.cells if CELL_TYPES[cell.reduction] == cell_type]

    def __repr__(self) -> str:
        counts = " + ".join(f"{len(self._cells_of(t))} {t}" for t in CELL_TYPES)
        return (f"{type(self).__name__}(space={self.space!r}, C={self.C}, layers={len(self.cells)}, "
                f"nodes={self.nodes}, cells={counts}, relaxation={self.relaxation!r}, "
                f"drop_path_prob={self.drop_path_prob})")


def build_supernet(space: str | Space = "darts", *, input_shape: Sequence[int], num_classes: int, C: int = 16,
                   layers: int = 8, nodes: int | None = None, relaxation: str | Relaxation = "softmax",
                   init_std: float = 1e-3, generator: torch.Generator | None = None,
                   stem_multiplier: int = 3, seed: int | None = None) -> Supernet:
    """The DARTS search supernet over the ops of a space with the ``darts`` embodiment, for
    images of ``input_shape = (C, H, W)`` or 1-d signals ``(C, L)`` such as MNIST-1D. On
    signals every op is its 1-d counterpart (:class:`~archgraph.ops.OpContext` ``dim=1``):
    ``sep_conv_KxK`` two depthwise-separable ``Conv1d`` of kernel K, ``dil_conv_KxK`` one of
    kernel K and dilation 2, ``max_pool_3x3``/``avg_pool_3x3`` ``MaxPool1d``/``AvgPool1d`` of
    kernel 3, ``skip_connect`` the identity (a 1-d ``FactorizedReduce`` at stride 2),
    ``none`` and ``noise`` unchanged, batch norms ``BatchNorm1d``. The defaults are the DARTS search setting (§3.1.1:
    8 cells, 16 initial channels, α ~ N(0, 1e-3²)).

    Parameters
    ----------
    space:
        A space name (``"darts"``, ``"s1"`` .. ``"s5"``) or a :class:`~archgraph.spaces.Space`.
    nodes:
        Intermediate nodes per cell; default the space's (``max_vertices - 2``; 4 when the space
        does not bound its cells). With another count, :func:`~archgraph.embody.darts.build_darts`
        still compiles the discretised cells, but the space's ``compile`` rejects them.
    relaxation:
        A :class:`~archgraph.relax.Relaxation` or its name: ``"softmax"`` (DARTS),
        ``Gumbel(tau, hard=True)`` (GDAS), ``"sigmoid"`` (FairDARTS), ``"dirichlet"`` (DrNAS).
    seed:
        Draws the weights, and α where no ``generator`` is given, from a generator seeded with
        it, leaving torch's global generator as it was (``None``: from the global generator), as
        :meth:`Space.compile <archgraph.spaces.Space.compile>` does.

    Raises
    ------
    SpaceError
        If the space is unknown, not a ``darts`` space, or offers no ops for an edge.
    SettingError
        If ``nodes`` or ``layers`` is below what a DARTS supernet needs (1 and 3).
    ShapeError
        If ``input_shape`` is not ``(C, H, W)`` or ``(C, L)``, or a side does not halve twice exactly.

    Examples
    --------
    >>> from archgraph.relax import Gumbel
    >>> net = build_supernet("s5", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3,
    ...                      relaxation=Gumbel(10.0, hard=True))
    >>> net.nodes, net.edges("reduce"), net.edge_ops("reduce", (1, 2))
    (1, [(0, 2), (1, 2)], ('sep_conv_3x3', 'skip_connect', 'max_pool_3x3'))
    >>> build_supernet("s2", input_shape=(40,), num_classes=10)
    Traceback (most recent call last):
    ...
    archgraph.errors.ShapeError: the s2 space takes images (C, H, W) or signals (C, L), got shape (40,)
    >>> build_supernet("s2", input_shape=(1, 40), num_classes=10, C=4, layers=3)(torch.randn(2, 1, 40)).shape
    torch.Size([2, 10])
    """
    space = space if isinstance(space, Space) else load(space)
    if space.embodiment != "darts" or len(space.cells) != 2:
        raise SpaceError(f"a DARTS supernet needs a space of the darts embodiment with a normal and a reduction "
                         f"cell; space {space.name!r} has embodiment {space.embodiment!r} and cells "
                         f"{', '.join(space.cells)}")
    nodes = _nodes(space, nodes)
    in_channels, dim = darts_input(input_shape, space=space.name, halvings=2)
    edge_ops = {cell_type: [_edge_ops(space, cell, edge) for edge in cell_edges(nodes)]
                for cell_type, cell in zip(CELL_TYPES, space.cells)}
    with seeded_init(seed):
        return Supernet(edge_ops, nodes=nodes, in_channels=in_channels, num_classes=num_classes, C=C,
                        layers=layers, stem_multiplier=stem_multiplier, relaxation=relaxation, init_std=init_std,
                        generator=generator, space=space.name, dim=dim)


def _nodes(space: Space, nodes: int | None) -> int:
    if nodes is None:
        return space.max_vertices - 2 if space.max_vertices is not None else 4
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise SettingError(f"a DARTS cell needs at least one intermediate node, got nodes={nodes!r}")
    return nodes


def _edge_ops(space: Space, cell: str, edge: Edge) -> tuple[str, ...]:
    names = space.ops_for(cell, edge)
    if not names:
        raise SpaceError(f"space {space.name!r} names no ops for edge {edge[0]}->{edge[1]} of cell {cell!r}; "
                         "give the space an ops list or an edge_ops entry for that edge")
    return names
