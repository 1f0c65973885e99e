"""The NAS-Bench-201 search supernet: every edge of the cell a Choice between the five ops.

Dong & Yang, "NAS-Bench-201", ICLR 2020, §2 (cell and skeleton) and §5 (the weight-sharing
searches run on it), built as the authors' reference search models (``xautodl``'s
``TinyNetworkDarts`` and ``TinyNetworkGDAS``) build it:

* the skeleton, :class:`~archgraph.embody.nb201.NB201Skeleton`: stem, ``N`` cells at ``C``,
  ``2C`` and ``4C`` channels joined by residual blocks, BN-ReLU, pooling, classifier;
* each edge ``j → i`` of a cell is a :class:`~archgraph.relax.Choice` over
  :data:`~archgraph.embody.nb201.NB201_OPS`; convolutions are ReLU-conv-BN with non-affine
  batch norm, pooling has no batch norm;
* one α per edge (6 × 5), shared by all cells, and one draw of the mixing weights per forward
  pass, shared by all cells: softmax for DARTS, hard Gumbel for GDAS, where only the sampled op
  runs and the unchosen weights are added (:func:`~archgraph.relax.unchosen`).

xautodl's search cells give their convolutions a bias (``bias = not affine``). In front of a
batch norm, which subtracts the channel mean, a bias changes nothing and never trains, so it is
left out: 6,720 fewer weights than xautodl at C = 16, N = 5 (NNI's cells have affine batch norm
instead: 13,440 more).

Fast path
---------
With ``fused=True`` (the default) a cell runs by source node instead of by edge, computing the
same function with less work (the test suite checks outputs, gradients and batch-norm statistics
against the per-edge Choices to 1e-6):

* ``none`` is never computed (its weighted zeros add nothing);
* a node's ReLU runs once for all the convolutions on its outgoing edges;
* the convolutions of one kind on a node's outgoing edges run as one convolution with their
  kernels stacked, followed by one batch norm over the stacked channels (per channel, so
  identical to separate ones; the running statistics are written back to each op);
* an edge's mixing weight of a convolution becomes the scale of its batch norm, which is
  otherwise not affine: ``w · BN(z)`` costs no extra pass over the feature map;
* a parameter-free op (skip, pooling) runs once per node, whatever the number of edges using it.

With ``channels_last=True`` (the default) the weights and activations are kept in the
channels-last memory format, which the CPU convolutions run faster on (``benchmarks/peers.py``
measures both settings; on a GPU, check there before keeping it).

Examples
--------
>>> import torch
>>> from archgraph.oneshot.nb201 import build_nb201_supernet
>>> net = build_nb201_supernet(input_shape=(3, 8, 8), num_classes=10, C=4, N=1)
>>> net(torch.randn(2, 3, 8, 8)).shape, net.choice("cell", (0, 3)).names[3]
(torch.Size([2, 10]), 'nor_conv_3x3')
>>> len(net.arch_parameters()), net.arch().num_edges
(6, 6)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..embody._plan import image_shape
from ..embody._seeded import seeded_init
from ..embody.nb201 import EDGES, NB201_OPS, NB201Skeleton
from ..errors import SpaceError
from ..graph import ArchGraph
from ..relax import Relaxation, as_relaxation
from .supernet import MixedOp, _Draws

__all__ = ["NB201SearchCell", "NB201Supernet", "build_nb201_supernet"]

#: the one cell type of a NAS-Bench-201 supernet
CELL = "cell"

Edge = tuple[int, int]


class _SharedEdges:
    """What every search cell of one supernet shares: the relaxation, the α of each edge
    (filled by the first cell), and the draws of the current forward pass."""

    def __init__(self, relaxation: Relaxation, init_std: float, generator: torch.Generator | None):
        self.relaxation, self.init_std, self.generator = relaxation, init_std, generator
        self.alphas: list[nn.Parameter] | None = None
        self.draws = _Draws()


class NB201SearchCell(nn.Module):
    """A NAS-Bench-201 search cell of ``C`` channels (§2): edge ``EDGES[j]`` a
    :class:`~archgraph.oneshot.supernet.MixedOp` over :data:`NB201_OPS`, node ``i`` the sum of
    its incoming edges, node 3 the output. ``fused`` picks the fast path of the module
    docstring (default) or the plain one, each edge's Choice called on its input."""

    def __init__(self, C: int, shared: _SharedEdges, *, fused: bool = True):
        super().__init__()
        self.mixed = nn.ModuleList(
            MixedOp([ops.build(name, ops.OpContext(C, C, affine=False)) for name in NB201_OPS], NB201_OPS,
                    shared.relaxation, alpha=None if shared.alphas is None else shared.alphas[j],
                    init_std=shared.init_std, generator=shared.generator, draws=shared.draws, key=(CELL, j))
            for j in range(len(EDGES)))
        if shared.alphas is None:
            shared.alphas = [m.alpha for m in self.mixed]
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._by_node(x) if self.fused else self._by_edge(x)

    def _by_edge(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for i in range(1, 4):
            nodes.append(sum(self.mixed[j](nodes[u]) for j, (u, v) in enumerate(EDGES) if v == i))
        return nodes[-1]

    def _by_node(self, x: torch.Tensor) -> torch.Tensor:
        weights = [m.weights() for m in self.mixed]
        active = [m.active(w) for m, w in zip(self.mixed, weights)]
        terms: list[list[torch.Tensor]] = [[] for _ in range(4)]
        nodes = [x]
        for u in range(3):
            out_edges = [j for j, (source, _) in enumerate(EDGES) if source == u]
            wanted = {(j, k): weights[j][k] for j in out_edges for k in active[j][0]}
            outputs = self._weighted_outputs(nodes[u], wanted)
            nones = [key for key in wanted if key not in outputs]
            if nones:  # w · none(x) as a scalar: zero gradients to w, and to x if nothing else reads it
                anchor = nodes[u].new_zeros(()) if outputs else nodes[u].sum() * 0
                outputs.update((key, wanted[key] * anchor) for key in nones)
            for (j, _), y in outputs.items():
                terms[EDGES[j][1]].append(y)
            for j in out_edges:
                if active[j][1] is not None:  # a hard edge's unchosen weights (relax.unchosen)
                    terms[EDGES[j][1]].append(active[j][1])
            nodes.append(_node_sum(terms[u + 1], x))  # every edge into node u + 1 leaves a node ≤ u
        return nodes[-1]

    def _weighted_outputs(self, h: torch.Tensor, wanted: dict[tuple[int, int], torch.Tensor]
                          ) -> dict[tuple[int, int], torch.Tensor]:
        """``w · candidate_k(h)`` for each wanted ``(j, k) → w`` (candidate ``k`` of edge ``j``), by
        source node: ``none`` skipped, one ReLU, stacked convolutions with the weights folded into
        their batch norm, a parameter-free op run once."""
        outputs: dict[tuple[int, int], torch.Tensor] = {}
        relu = None
        for k in range(len(NB201_OPS)):
            edges = sorted(j for j, kk in wanted if kk == k)
            modules = [self.mixed[j].candidates[k] for j in edges]
            scales = [wanted[j, k] for j in edges]
            if not edges or isinstance(modules[0], ops.Zero):
                continue
            if isinstance(modules[0], ops.ReLUConvBN):
                relu = torch.relu(h) if relu is None else relu
                results = _scaled_conv_bn(relu, modules, scales, self.training)
            else:  # parameter-free: computed once for every edge
                shared = modules[0](h)
                results = [w * shared for w in scales]
            outputs.update(((j, k), y) for j, y in zip(edges, results))
        return outputs

    def extra_repr(self) -> str:
        return f"fused={self.fused}"


def _node_sum(terms: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """A node's state: the sum of its terms, zeros of ``x``'s shape (plus any scalar terms) when
    only ``none`` ops came in."""
    if any(t.dim() for t in terms):
        return sum(terms)
    return sum(terms, torch.zeros_like(x))


def _scaled_conv_bn(relu: torch.Tensor, blocks: Sequence[ops.ReLUConvBN], scales: Sequence[torch.Tensor],
                    training: bool) -> list[torch.Tensor]:
    """``scale · block(x)`` for ReLU-conv-BN ``blocks`` sharing their input ``x``, given ``relu(x)``:
    one convolution with the kernels stacked, one batch norm over the stacked channels with the
    scales as its affine weight (``w · BN(z)`` is a batch norm scaled by ``w``); the running
    statistics are written back to each block's batch norm."""
    convs, norms = [b[1] for b in blocks], [b[2] for b in blocks]
    conv, bn = convs[0], norms[0]
    y = F.conv2d(relu, torch.cat([c.weight for c in convs]), None, conv.stride, conv.padding)
    mean, var = torch.cat([n.running_mean for n in norms]), torch.cat([n.running_var for n in norms])
    gamma = torch.cat([w.expand(n.num_features) for w, n in zip(scales, norms)])
    y = F.batch_norm(y, mean, var, gamma, None, training, bn.momentum, bn.eps)
    if training:
        for n, m, v in zip(norms, mean.chunk(len(norms)), var.chunk(len(norms))):
            n.running_mean.copy_(m)
            n.running_var.copy_(v)
            n.num_batches_tracked.add_(1)
    return list(y.chunk(len(blocks), dim=1))


class NB201Supernet(NB201Skeleton):
    """The NAS-Bench-201 search network: the :class:`~archgraph.embody.nb201.NB201Skeleton` with
    :class:`NB201SearchCell` s; see the module docstring. Build it with :func:`build_nb201_supernet`.

    Its introspection matches :class:`~archgraph.oneshot.supernet.Supernet`'s, with the one
    cell type ``"cell"``, so that selection and the α tools work on both.
    """

    def __init__(self, *, C: int = 16, N: int = 5, num_classes: int = 10, input_channels: int = 3,
                 relaxation: str | Relaxation = "softmax", init_std: float = 1e-3,
                 generator: torch.Generator | None = None, fused: bool = True, channels_last: bool = True):
        shared = _SharedEdges(as_relaxation(relaxation), init_std, generator)
        super().__init__(lambda c: NB201SearchCell(c, shared, fused=fused), C=C, N=N, num_classes=num_classes,
                         in_channels=input_channels)
        self._fused, self._shared = fused, shared
        self.C, self.N = C, N
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._shared.draws.scope():
            return super().forward(x.contiguous(memory_format=self.memory_format))

    @property
    def relaxation(self) -> Relaxation:
        """The relaxation of every edge."""
        return self._shared.relaxation

    @property
    def fused(self) -> bool:
        """Whether the cells take the fast path (settable)."""
        return self._fused

    @fused.setter
    def fused(self, value: bool) -> None:
        self._fused = bool(value)
        for cell in self._search_cells():
            cell.fused = self._fused

    def arch_parameters(self) -> list[nn.Parameter]:
        """The 6 shared α, one per edge in the order of :data:`~archgraph.embody.nb201.EDGES`."""
        return list(self._shared.alphas)

    def arch(self) -> ArchGraph:
        """The discrete cell: each edge's most preferred op (§5: the argmax of α)."""
        best = [self.choice(CELL, edge) for edge in EDGES]
        return ArchGraph([(u, v, c.names[int(c.probabilities().argmax())]) for (u, v), c in zip(EDGES, best)],
                         num_nodes=4)

    # --- introspection, as Supernet's ------------------------------------------------------

    @property
    def cell_types(self) -> tuple[str, ...]:
        """``("cell",)``."""
        return (CELL,)

    def edges(self, cell_type: str = CELL) -> list[Edge]:
        """The 6 edges ``(j, i)`` of the cell."""
        self._check(cell_type)
        return list(EDGES)

    def edge_ops(self, cell_type: str, edge: Edge) -> tuple[str, ...]:
        """The candidate op names of ``edge``: :data:`~archgraph.embody.nb201.NB201_OPS`."""
        return self.choice(cell_type, edge).names

    def choice(self, cell_type: str, edge: Edge) -> MixedOp:
        """The Choice of ``edge`` in the first cell; its ``alpha`` is the one all cells share."""
        return self.edge_choices(cell_type, edge)[0]

    def edge_choices(self, cell_type: str, edge: Edge) -> list[MixedOp]:
        """The Choices of ``edge`` in every cell, in network order."""
        self._check(cell_type)
        edge = tuple(edge)
        if edge not in EDGES:
            raise SpaceError(f"{edge} is not an edge of a NAS-Bench-201 cell; its edges: {', '.join(map(str, EDGES))}")
        j = EDGES.index(edge)
        return [cell.mixed[j] for cell in self._search_cells()]

    def _search_cells(self) -> list[NB201SearchCell]:
        return [cell for cell in self.cells if isinstance(cell, NB201SearchCell)]

    def _check(self, cell_type: str) -> None:
        if cell_type != CELL:
            raise SpaceError(f"unknown cell type {cell_type!r}; a NAS-Bench-201 supernet has the one type {CELL!r}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(C={self.C}, N={self.N}, relaxation={self.relaxation!r}, fused={self.fused}, "
                f"channels_last={self.memory_format == torch.channels_last})")


def build_nb201_supernet(*, input_shape: Sequence[int], num_classes: int, C: int = 16, N: int = 5,
                         relaxation: str | Relaxation = "softmax", init_std: float = 1e-3,
                         generator: torch.Generator | None = None, fused: bool = True,
                         channels_last: bool = True, seed: int | None = None) -> NB201Supernet:
    """The NAS-Bench-201 search supernet for images of ``input_shape = (C, H, W)``; the defaults
    are the benchmark's C = 16, N = 5 and DARTS' α ~ N(0, 1e-3²).

    Parameters
    ----------
    relaxation:
        ``"softmax"`` (DARTS), ``Gumbel(tau, hard=True)`` (GDAS; §5 and its code anneal τ from
        10 to 0.1), ``"sigmoid"`` or ``"dirichlet"``, as for :class:`~archgraph.relax.Choice`.
    generator:
        Draws α and the relaxation's noise; the weights come from ``seed``.
    seed:
        Draws the weights, and α where no ``generator`` is given, from a generator seeded with
        it, leaving torch's global generator as it was (``None``: from the global generator).
    fused:
        The fast path of the module docstring (default) or the plain per-edge one.
    channels_last:
        Keep weights and activations channels-last (default), or in torch's default layout.

    Raises
    ------
    ShapeError
        If ``input_shape`` is not ``(C, H, W)`` with H and W multiples of 4.

    Examples
    --------
    >>> from archgraph.relax import Gumbel
    >>> net = build_nb201_supernet(input_shape=(3, 32, 32), num_classes=10, relaxation=Gumbel(10.0, hard=True))
    >>> net
    NB201Supernet(C=16, N=5, relaxation=Gumbel(tau=10.0, hard=True), fused=True, channels_last=True)
    >>> sum(p.numel() for p in net.parameters()) - sum(a.numel() for a in net.arch_parameters())
    1686106
    """
    channels, _, _ = image_shape(input_shape, space="nb201", halvings=2)
    with seeded_init(seed):
        return NB201Supernet(C=C, N=N, num_classes=num_classes, input_channels=channels, relaxation=relaxation,
                             init_std=init_std, generator=generator, fused=fused, channels_last=channels_last)
