"""FaDE hyper-architectures: a d×w matrix of DAG cells relaxed into one trainable module.

Neumeier, Stier & Granitzer, "Efficient NAS with FaDE on Hierarchical Spaces", §2.2 and
Fig. 1: in a chained space S^d, a hyper-architecture H ∈ S^{d×w} holds a pool of w cells
per depth; it stands for the w^d architectures of the cross product of its rows. Row i is a
:class:`~archgraph.relax.Choice` over its w cells, relaxed by hard Gumbel-softmax with
temperature 10 (FaDE §3), trained "with DARTS": a weight step runs one sampled path; an α step
runs every cell of each row on its input along the sampled path, and the straight-through
one-hot weights give each α the first-order change of the loss had its cell been drawn
(``Gumbel(estimator="all")``, see :mod:`archgraph.relax`). The GDAS trick of running the
sampled cells alone in α steps too (``estimator="sampled"``) gives every unchosen α the same
gradient: on digits its FaDE-ranks came out anti-correlated with trained accuracy
(benchmarks/fade_correlation.py). The rows are chained by the skeleton of
:class:`~archgraph.embody.FadeNetwork` (:class:`~archgraph.embody.fade_skeleton.FadeSkeleton`:
max pooling between rows, global average pooling, one linear classifier shared by all paths),
so a path extracted is the compiled network of its cells.

Two implementations (``shared``):

* separate paths — every pool DAG compiled to its own :class:`~archgraph.embody.FadeCell`;
* one weight-shared :class:`HyperCell` per row (FaDE §2.2 "Weight Sharing"): the fully
  connected DAG G_max, every pool DAG a :class:`MaskedCell` running only its edges of G_max.

Examples
--------
>>> import torch
>>> from archgraph import ArchGraph
>>> from archgraph.hyper import build_hyper
>>> row = [ArchGraph([(0, 1)]), ArchGraph([(0, 1), (0, 2), (1, 2)])]
>>> hyper = build_hyper("fade", [row] * 4, input_shape=(1, 8, 8), num_classes=10,
...                     channels=2, kernel_size=3, shared=True)
>>> hyper(torch.randn(5, 1, 8, 8)).shape
torch.Size([5, 10])
>>> hyper.probabilities().shape          # (d, w): softmax(α) per row
torch.Size([4, 2])
>>> [g.num_nodes for g in hyper.architecture((1, 0, 0, 1))]   # one cell per row
[3, 2, 2, 3]
>>> net = hyper.extract(hyper.best_path())   # a standalone FadeNetwork carrying the shared weights
>>> type(net).__name__
'FadeNetwork'"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from .embody._plan import PlannedCell
from .embody._seeded import seeded_init
from .embody.fade import FadeCell, FadeNetwork, _cell_plan, _edge_channels, _edge_module, build_fade
from .embody.fade_skeleton import FadeSkeleton
from .errors import ShapeError, SpaceError
from .graph import ArchGraph
from .relax import Choice, Gumbel, Relaxation, as_relaxation
from .spaces import Space, builder_options, load

__all__ = ["HyperArchitecture", "HyperCell", "MaskedCell", "build_hyper"]

Pool = tuple[tuple[ArchGraph, ...], ...]

_FADE_DEFAULTS = builder_options(build_fade)  # channels, kernel_size, pool, weights_per_cell


class HyperCell(PlannedCell):
    """G_max of FaDE §2.2: the fully connected DAG on ``max_vertices`` vertices, compiled like
    a :class:`~archgraph.embody.FadeCell`.

    Positions: 0 = input vertex, feeding every vertex 1..n; vertex i feeds every j > i; every
    vertex feeds the output vertex n + 1. Each edge carries a convolution; a vertex sums its
    inputs, then applies ReLU. Calling the cell runs all of G_max; :class:`MaskedCell` runs a
    pool DAG's edges only.
    """

    def __init__(self, max_vertices: int, in_channels: int, out_channels: int, *,
                 kernel_size: int = 5, dim: int = 2):
        n = int(max_vertices)
        if n < 1:
            raise SpaceError(f"G_max needs at least one vertex, got max_vertices={max_vertices}")
        plan = [(u, v) for v in range(1, n + 2) for u in range(v) if (u, v) != (0, n + 1)]
        super().__init__((_edge_module(None, *_edge_channels(u, v, n + 1, in_channels, out_channels, out_channels),
                                       kernel_size=kernel_size, dim=dim) for u, v in plan), plan, activate=True)
        self.max_vertices = n
        self.edges = tuple(plan)  # the G_max edges (u, v), in the order of edge_ops
        self._index = {e: j for j, e in enumerate(plan)}

    @property
    def output(self) -> int:
        """The position of the output vertex, ``max_vertices + 1``."""
        return self.max_vertices + 1

    def edge(self, u: int, v: int) -> nn.Module:
        """The convolution on the G_max edge between positions ``u → v``."""
        return self.edge_ops[self._index[(u, v)]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.walk([x])[-1]

    def extra_repr(self) -> str:
        return f"max_vertices={self.max_vertices}, edges={len(self.edge_ops)}"


class MaskedCell(PlannedCell):
    """A pool DAG as a mask of a :class:`HyperCell` (FaDE §2.2 "Weight Sharing").

    The DAG's vertices take the G_max positions 1..n in ``graph.topological_order()`` (as in a
    FadeCell); enabled are the edges input → sources, the DAG's edges and sinks → output. The
    cell walks the FadeCell plan of ``graph`` with the hyper-cell's modules of those edges, so
    it costs what the FadeCell costs, and its ``state_dict`` loads into that FadeCell.
    """

    def __init__(self, hyper_cell: HyperCell, graph: ArchGraph):
        if graph.edge_ops:
            raise SpaceError(f"{graph!r} carries edge ops, but a weight-shared hyper-cell has one convolution "
                             "per G_max edge; drop the edge ops or use separate paths (shared=False)")
        n = graph.num_nodes
        if n > hyper_cell.max_vertices:
            raise SpaceError(f"{graph!r} has {n} vertices, more than the hyper-cell's G_max "
                             f"({hyper_cell.max_vertices}); build the hyper-cell with max_vertices >= {n}")
        plan = [(u, v) for u, v, _ in _cell_plan(graph)]
        enabled = tuple((u, v if v <= n else hyper_cell.output) for u, v in plan)
        super().__init__((hyper_cell.edge(*e) for e in enabled), plan, activate=True)
        self.graph = graph
        self.enabled = enabled  # the G_max edges this DAG runs, in plan order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.walk([x])[-1]

    def extra_repr(self) -> str:
        return f"vertices={self.graph.num_nodes}, edges={len(self.edge_ops)}"


class HyperArchitecture(FadeSkeleton):
    """A d×w hyper-architecture of FaDE cells (FaDE §2.2, Fig. 1); see the module docstring.

    Parameters
    ----------
    pool:
        d rows of w ArchGraphs; row i is the pool of cells at depth i.
    input_shape, num_classes:
        As for :func:`~archgraph.embody.build_fade`.
    relaxation:
        A :class:`~archgraph.relax.Relaxation` or its name, shared by every row; default
        ``Gumbel(tau=10, hard=True, estimator="all")`` (FaDE §3, see the module docstring).
    shared:
        One weight-shared :class:`HyperCell` per row instead of a FadeCell per pool DAG.
    init_std:
        Standard deviation of the initial α (FaDE §3: N(0, 0.5)).
    generator:
        ``torch.Generator`` for α's initialisation and the Gumbel noise. Weights take torch's
        default generator (Kaiming, FaDE §3), as :class:`~archgraph.embody.FadeNetwork` does;
        :func:`build_hyper`'s ``seed`` seeds them.
    max_vertices:
        The vertex count n_max of the hyper-cells' G_max (``shared=True``); default the largest
        graph of each row. :func:`build_hyper` passes the space's bound instead.
    **params:
        ``channels``, ``kernel_size``, ``pool``, ``weights_per_cell`` of
        :func:`~archgraph.embody.build_fade`. ``weights_per_cell`` gives every DAG of a row the
        same number of weights (FaDE §3.1) by choosing its width; separate paths only.
    """

    def __init__(self, pool: Sequence[Sequence[ArchGraph]], /, *, input_shape: Sequence[int], num_classes: int,
                 relaxation: str | Relaxation | None = None, shared: bool = False, init_std: float = 0.5,
                 generator: torch.Generator | None = None, max_vertices: int | None = None, **params):
        if unknown := set(params) - set(_FADE_DEFAULTS):
            raise TypeError(f"unknown parameter(s) {sorted(unknown)}; the fade cells take {', '.join(_FADE_DEFAULTS)}")
        pool, shared, params = _as_pool(pool), bool(shared), {**_FADE_DEFAULTS, **params}
        relaxation = Gumbel(tau=10.0, hard=True, estimator="all") if relaxation is None else as_relaxation(relaxation)
        kernel_size = params["kernel_size"]
        if shared and params["weights_per_cell"] is not None:
            raise SpaceError("weights_per_cell (equal-size cells) needs separate paths (shared=False): the masks "
                             "of one weight-shared hyper-cell all have G_max's channels, so their sizes cannot be "
                             "evened out by choosing each DAG's width")

        def make_row(i: int, c_in: int, c_out: int, *, weights: int | None, dim: int) -> Choice:
            """Row i: a Choice over its pool's FadeCells, or over masks of a new HyperCell (shared)."""
            if shared:
                n_max = max_vertices if max_vertices is not None else max(g.num_nodes for g in pool[i])
                self.hyper_cells.append(HyperCell(n_max, c_in, c_out, kernel_size=kernel_size, dim=dim))
                candidates = [MaskedCell(self.hyper_cells[-1], g) for g in pool[i]]
            else:
                candidates = [FadeCell.of_size(g, c_in, c_out, weights, kernel_size=kernel_size, dim=dim)
                              for g in pool[i]]
            return Choice(candidates, relaxation, init_std=init_std, generator=generator)

        super().__init__(make_row, len(pool), input_shape=input_shape, num_classes=num_classes,
                         channels=params["channels"], pool=params["pool"], weights_per_cell=params["weights_per_cell"])
        self.pool: Pool = pool
        self.shared = shared
        self.num_classes = int(num_classes)
        self.params = params

    def _hold(self, rows: Iterable[Choice]) -> None:
        """``hyper_cells`` (shared: each row's G_max, appended as its row is built), then ``rows``:
        the state_dict, the parameters and the initialisation take them in this order."""
        self.hyper_cells = nn.ModuleList()
        self.rows = nn.ModuleList(rows)

    def chain(self) -> list[nn.Module]:
        """The rows, first to last."""
        return list(self.rows)

    @property
    def shape(self) -> tuple[int, int]:
        """``(d, w)``: rows (depth) and graphs per row."""
        return len(self.pool), len(self.pool[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, row in enumerate(self.rows):
            if i and self.downsample is not None:
                x = self.downsample(x)
            x = row(x)
        return self.head(x)

    def probabilities(self) -> torch.Tensor:
        """The ``(d, w)`` matrix of each row's noise-free preference (``softmax(α)`` for Gumbel),
        detached: FaDE's α of §2.3, whose products along a path are FaDE-ranks."""
        return torch.stack([row.probabilities() for row in self.rows]).detach()

    def best_path(self) -> tuple[int, ...]:
        """The path of the highest FaDE-rank ∏_i α_{i,k_i} (§2.3): the most preferred cell per row."""
        return tuple(self.probabilities().argmax(dim=1).tolist())

    def sample_path(self, generator: torch.Generator | None = None) -> tuple[int, ...]:
        """A path drawn row by row from :meth:`probabilities`, i.e. with probability its FaDE-rank."""
        return tuple(torch.multinomial(self.probabilities(), 1, generator=generator).squeeze(1).tolist())

    def architecture(self, path: Sequence[int]) -> tuple[ArchGraph, ...]:
        """The cells of ``path``: ``path[i]`` indexes row i."""
        return tuple(row[k] for row, k in zip(self.pool, self._check(path)))

    def extract(self, path: Sequence[int]) -> FadeNetwork:
        """The standalone :class:`~archgraph.embody.FadeNetwork` of ``path``, carrying this
        hyper-architecture's weights (cells and classifier). Both are the FaDE skeleton with the
        same parameters, so the network's chain has row i's cell ``path[i]`` in place of the
        row: it computes what this module computes when every row's Choice picks ``path``."""
        path, like = self._check(path), self.classifier.weight
        net = build_fade(self.architecture(path), input_shape=self.input_shape, num_classes=self.num_classes,
                         seed=0, **self.params).to(device=like.device, dtype=like.dtype)  # weights overwritten below
        for cell, row, k in zip(net.chain(), self.chain(), path, strict=True):
            cell.load_state_dict(row.candidates[k].state_dict())
        net.classifier.load_state_dict(self.classifier.state_dict())
        return net

    def warm_start(self, previous: HyperArchitecture) -> HyperArchitecture:
        """Copy trained weights from ``previous`` (FaDE's hyper-architecture of the last outer
        step, §2.4) and return ``self``; α stay as they are, since the pool changed.

        Shared: every hyper-cell and the classifier (``previous`` must be shared too). Separate
        paths: the classifier and each cell whose graph is identical
        (:meth:`~archgraph.ArchGraph.is_identical`) to one in the same row of ``previous``.
        Raises :class:`~archgraph.ShapeError` where shapes or kinds (shared or not) differ.
        """
        if len(previous.rows) != len(self.rows):
            raise ShapeError(f"cannot warm-start a hyper-architecture of {len(self.rows)} rows "
                             f"from one of {len(previous.rows)}; build both in the same space")
        if self.shared:
            if not previous.shared:
                raise ShapeError("a weight-shared hyper-architecture warm-starts from a shared one only; "
                                 "separate paths hold no G_max weights")
            _copy(self.hyper_cells, previous.hyper_cells, "the hyper-cells")
        else:
            for i, (row, old_row) in enumerate(zip(self.rows, previous.rows)):
                for g, cell in zip(self.pool[i], row.candidates):
                    if (j := next((j for j, h in enumerate(previous.pool[i]) if h.is_identical(g)), None)) is not None:
                        _copy(cell, old_row.candidates[j], f"row {i}'s cell {g!r}")
        _copy(self.classifier, previous.classifier, "the classifier")
        return self

    def _check(self, path: Sequence[int]) -> tuple[int, ...]:
        d, w = self.shape
        path = tuple(int(k) for k in path)
        if len(path) != d or not all(0 <= k < w for k in path):
            raise SpaceError(f"a path picks one of {w} cells in each of {d} rows: {d} indices in 0..{w - 1}, "
                             f"got {path}")
        return path

    def extra_repr(self) -> str:
        d, w = self.shape
        return f"d={d}, w={w}, shared={self.shared}"


def build_hyper(space: Space | str, pool: Sequence[Sequence[ArchGraph]], /, *, input_shape: Sequence[int],
                num_classes: int, relaxation: str | Relaxation | None = None, shared: bool = False,
                init_std: float = 0.5, generator: torch.Generator | None = None, seed: int | None = None,
                **space_params) -> HyperArchitecture:
    """A :class:`HyperArchitecture` over ``pool`` in a chained FaDE space (FaDE §2.2).

    ``space`` is a :class:`~archgraph.spaces.Space` or its name; ``pool`` has one row per cell
    of the space, each graph within the space's vertex bounds. ``space_params`` override the
    space's compile parameters, as in :meth:`~archgraph.spaces.Space.compile`. The hyper-cells'
    G_max has the space's ``max_vertices``, so their shapes depend on the space only and any
    later pool of it can :meth:`~HyperArchitecture.warm_start` from this one (FaDE §2.4 moves
    the pool every outer step); without a bound, G_max is each row's largest graph.

    ``seed`` draws the initial weights, and α where no ``generator`` is given, from a generator
    seeded with it, leaving torch's global generator as it was, as
    :meth:`Space.compile <archgraph.spaces.Space.compile>` does; ``None``: the global generator.
    """
    space = load(space) if isinstance(space, str) else space
    if space.embodiment != "fade":
        raise SpaceError(f"a hyper-architecture chains FaDE cells, but space {space.name!r} has the "
                         f"{space.embodiment!r} embodiment; use a space with embodiment = 'fade'")
    rows = _as_pool(pool)
    if len(rows) != len(space.cells):
        raise SpaceError(f"space {space.name!r} chains {len(space.cells)} cells ({', '.join(space.cells)}), "
                         f"so the pool needs {len(space.cells)} rows; got {len(rows)}")
    for k, column in enumerate(zip(*rows)):
        try:
            space.validate(column)
        except SpaceError as e:
            raise SpaceError(f"pool column {k}: {e}") from None
    space.check_params(space_params)
    with seeded_init(seed):
        return HyperArchitecture(rows, input_shape=input_shape, num_classes=num_classes, relaxation=relaxation,
                                 shared=shared, init_std=init_std, generator=generator,
                                 max_vertices=space.max_vertices, **{**space.params, **space_params})


def _as_pool(pool: Sequence[Sequence[ArchGraph]]) -> Pool:
    """``pool`` as a rectangular tuple of tuples of ArchGraphs, or a SpaceError naming the row."""
    rows = tuple(tuple(row) for row in pool)
    if not rows or not rows[0]:
        raise SpaceError("a hyper-architecture needs at least one row of at least one graph")
    for i, row in enumerate(rows):
        if len(row) != len(rows[0]):
            raise SpaceError(f"the pool must be rectangular: row 0 has {len(rows[0])} graphs, row {i} has "
                             f"{len(row)}; give every row the same number w of graphs")
        if not all(isinstance(g, ArchGraph) for g in row):
            raise TypeError(f"row {i} of the pool holds a non-ArchGraph: {row!r}")
    return rows


def _copy(target: nn.Module, source: nn.Module, what: str) -> None:
    """Load ``source``'s state into ``target``, or a ShapeError naming the first mismatch."""
    mine, theirs = target.state_dict(), source.state_dict()
    for name in [*mine, *(theirs.keys() - mine.keys())]:
        here, there = (tuple(sd[name].shape) if name in sd else "missing" for sd in (mine, theirs))
        if here != there:
            raise ShapeError(f"cannot warm-start {what}: {name} has shape {here} here, {there} in the previous "
                             "hyper-architecture; build both with the same space, input_shape, channels and "
                             "kernel_size")
    target.load_state_dict(theirs)
