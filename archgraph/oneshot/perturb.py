"""Perturbation-based architecture selection, DARTS-PT (Wang et al., "Rethinking Architecture
Selection in Differentiable NAS", ICLR 2021; Wang's thesis §3.1, Algorithm 1).

DARTS keeps the op with the largest α on each edge; DARTS-PT keeps the op the *trained
supernet* needs most. On a trained supernet, repeatedly:

1. pick an undecided edge at random (one of the normal and one of the reduction cell per round,
   as the reference code ruocwang/darts-pt does);
2. for each candidate op, set its weight to 0 in the current mixing weights — no
   renormalisation — and measure the supernet's accuracy on the validation (architecture)
   split, in train mode (batch-norm batch statistics) without gradients;
3. keep the op whose removal lowers the accuracy most: the edge is *projected* onto it
   (:meth:`archgraph.relax.Choice.fix`, one-hot weights);
4. tune the supernet (weights and the remaining α, bi-level) ``tune_epochs`` epochs.

Once every edge has its op, the topology is chosen the same way: per intermediate node with
more than ``k`` inputs (a random node per cell type and round), repeatedly remove the input
edge whose removal gives the *highest* accuracy until ``k`` remain, then tune again.

``none`` (the zero op) is never kept: like magnitude selection it is not an op an edge can be
decided for; the edge is instead removed or kept in the topology step. The reference code's
tuning follows one cosine schedule at a tenth of the search learning rate over all rounds;
here each tuning is a call of :func:`~archgraph.oneshot.train_bilevel` with the caller's
settings, the n-th on the absolute epochs ``n · tune_epochs ..`` (its ``start_epoch``) of a
schedule as long as all tunings together, so its schedules run on across rounds while the
optimiser state starts afresh each time.

The reference tunes after every round that leaves an edge undecided (13 in a DARTS cell of 14
edges), 5 epochs each: 65 epochs, more than the search itself. ``tune_rounds`` tunes after
fewer of them, spread evenly, so that a short search (``archgraph darts --epochs``) is not
followed by hours of tuning.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import SettingError, SpaceError
from ..graph import ArchGraph
from ..train import _device, _kept_buffers, _loader, _run
from .bilevel import train_bilevel

__all__ = ["Decision", "PerturbationResult", "perturbation_select"]

NONE = "none"


@dataclass(frozen=True)
class Decision:
    """One projection: on ``cell_type``'s ``edge``, the validation ``accuracies`` with each
    candidate removed (``None`` for ``none``, never measured) and the op kept; or, in the
    topology step, the edges of ``node`` kept (``op`` is ``None``)."""

    cell_type: str
    edge: tuple[int, int] | None
    op: str | None
    accuracies: dict
    node: int | None = None


@dataclass
class PerturbationResult:
    """The discretised cells ``(normal, reduce)`` and every decision in the order taken."""

    cells: tuple[ArchGraph, ...]
    decisions: list[Decision] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


def perturbation_select(
    supernet: nn.Module,
    weight_data: Dataset,
    arch_data: Dataset,
    *,
    k: int = 2,
    tune_epochs: int = 5,
    tune_rounds: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
    **train_kwargs,
) -> PerturbationResult:
    """Discretise a trained DARTS supernet by perturbation (DARTS-PT, Wang et al. 2021, Alg. 1).

    Parameters
    ----------
    supernet:
        A trained :class:`~archgraph.oneshot.supernet.Supernet`; it is changed in place (its
        edges end fixed and tuned).
    weight_data, arch_data:
        The splits of the search: tuning trains ω on ``weight_data`` and α on ``arch_data``;
        accuracies are measured on ``arch_data`` (the reference's validation queue).
    k:
        Input edges kept per intermediate node (DARTS: 2).
    tune_epochs:
        Bi-level epochs of each tuning (the reference: 5).
    tune_rounds:
        After how many rounds of projections the supernet is tuned: ``None`` after every round
        that leaves an edge undecided (the reference); fewer are spread evenly over those
        rounds, the last of them included. Tuning takes at most ``tune_rounds · tune_epochs``
        epochs.
    batch_size, seed, device, progress, train_kwargs:
        Passed to :func:`~archgraph.oneshot.train_bilevel` for tuning (``seed`` also picks the
        edges); ``tune_epochs=0`` decides without tuning.

    Returns
    -------
    PerturbationResult
        ``cells`` compile with the space's DARTS embodiment.

    Examples
    --------
    >>> from archgraph.data import fade_split, load
    >>> from archgraph.oneshot.supernet import build_supernet
    >>> test, arch, weight = fade_split(load("digits").train, seed=0)
    >>> net = build_supernet("s5", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    >>> result = perturbation_select(net, weight, arch, tune_epochs=0)
    >>> [d.cell_type for d in result.decisions]
    ['normal', 'reduce', 'normal', 'reduce']
    >>> result.cells[0].num_edges
    2
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SettingError(f"k is the number of input edges kept per node, a positive int; got {k!r}")
    if isinstance(tune_epochs, bool) or not isinstance(tune_epochs, int) or tune_epochs < 0:
        raise SettingError(f"tune_epochs is a non-negative int (0: no tuning between projections); got {tune_epochs!r}")
    if tune_rounds is not None and (isinstance(tune_rounds, bool) or not isinstance(tune_rounds, int)
                                    or tune_rounds < 0):
        raise SettingError(f"tune_rounds is a non-negative int (0: no tuning) or None (after every round); "
                         f"got {tune_rounds!r}")
    device = _device(supernet, device)
    supernet.to(device)
    rng = np.random.default_rng(seed)
    cell_types = list(supernet.cell_types)
    undecided = {t: list(supernet.edges(t)) for t in cell_types}
    open_nodes = {t: sorted({v for _, v in supernet.edges(t) if _in_degree(supernet, t, v) > k}) for t in cell_types}
    op_rounds = max(len(e) for e in undecided.values())
    rounds = op_rounds + max(len(n) for n in open_nodes.values())
    tuned = _tuned_rounds(op_rounds - 1, tune_rounds) if tune_epochs else []  # after the last op round: all fixed
    result = PerturbationResult(cells=())
    measure = _Accuracy(supernet, arch_data, batch_size, device)
    with contextlib.ExitStack() as removed:
        for round_ in range(rounds):
            for cell_type in cell_types:
                if undecided[cell_type]:
                    edge = undecided[cell_type].pop(int(rng.integers(len(undecided[cell_type]))))
                    result.decisions.append(_project_op(supernet, cell_type, edge, measure))
                elif open_nodes[cell_type]:
                    node = open_nodes[cell_type].pop(int(rng.integers(len(open_nodes[cell_type]))))
                    result.decisions.append(_project_node(supernet, cell_type, node, k, measure, removed))
            if round_ in tuned:
                start = tuned.index(round_) * tune_epochs
                fit = train_bilevel(supernet, weight_data, arch_data, epochs=len(tuned) * tune_epochs,
                                    start_epoch=start, batch_size=batch_size, seed=seed + round_, device=device,
                                    progress=progress,
                                    on_epoch=lambda row, model, last=start + tune_epochs - 1: row["epoch"] >= last,
                                    **train_kwargs)
                result.history += fit.history
        result.cells = tuple(_cell(supernet, t, result.decisions) for t in cell_types)
    return result


def _tuned_rounds(tunable: int, count: int | None) -> list[int]:
    """``count`` of the rounds ``0 .. tunable - 1`` (all of them for ``None`` or more), evenly
    spread, the last included.

    >>> _tuned_rounds(13, 4), _tuned_rounds(3, None), _tuned_rounds(3, 0)
    ([3, 6, 9, 12], [0, 1, 2], [])
    """
    count = tunable if count is None else min(count, tunable)
    return [-(-(i + 1) * tunable // count) - 1 for i in range(count)]


class _Accuracy:
    """The supernet's accuracy on ``data`` in train mode without gradients, the way DARTS-PT
    measures it; batch-norm running statistics are restored afterwards, so measuring leaves
    the supernet as it was."""

    def __init__(self, supernet: nn.Module, data: Dataset, batch_size: int, device: torch.device):
        self.supernet, self.device = supernet, device
        self.loader = _loader(data, batch_size, device)

    def __call__(self) -> float:
        self.supernet.train()
        with _kept_buffers(self.supernet), torch.no_grad():
            return _run(self.supernet, self.loader, self.device, 0.0)["accuracy"]


def _project_op(supernet: nn.Module, cell_type: str, edge: tuple[int, int], measure: _Accuracy) -> Decision:
    """Fix ``edge`` to the op whose removal hurts the supernet's accuracy most."""
    ops = supernet.edge_ops(cell_type, edge)
    shared = supernet.edge_choices(cell_type, edge)
    accuracies: dict[str, float | None] = {}
    for i, op in enumerate(ops):
        if op == NONE:
            accuracies[op] = None
            continue
        mask = [float(j != i) for j in range(len(ops))]
        with contextlib.ExitStack() as stack:
            for choice in shared:
                stack.enter_context(choice.masked(mask))
            accuracies[op] = measure()
    measured = {op: a for op, a in accuracies.items() if a is not None}
    if not measured:
        raise SpaceError(f"{cell_type} edge {edge} offers only {NONE!r}; DARTS-PT needs an op to keep")
    kept = min(measured, key=measured.get)
    for choice in shared:
        choice.fix(ops.index(kept))
    return Decision(cell_type, edge, kept, accuracies)


def _project_node(supernet: nn.Module, cell_type: str, node: int, k: int, measure: _Accuracy,
                  removed: contextlib.ExitStack) -> Decision:
    """Remove ``node``'s input edges one at a time, each time the one whose removal leaves the
    highest accuracy, until ``k`` remain; the removed edges stay masked for the rest of the run."""
    inputs = [e for e in supernet.edges(cell_type) if e[1] == node]
    accuracies = {}
    while len(inputs) > k:
        scores = {}
        for edge in inputs:
            with contextlib.ExitStack() as stack:
                _remove(supernet, cell_type, edge, stack)
                scores[edge] = measure()
        worst = max(scores, key=scores.get)
        accuracies[worst] = scores[worst]
        _remove(supernet, cell_type, worst, removed)
        inputs.remove(worst)
    return Decision(cell_type, None, None, accuracies, node=node)


def _remove(supernet: nn.Module, cell_type: str, edge: tuple[int, int], stack: contextlib.ExitStack) -> None:
    for choice in supernet.edge_choices(cell_type, edge):
        stack.enter_context(choice.masked([0.0] * len(choice)))


def _in_degree(supernet: nn.Module, cell_type: str, node: int) -> int:
    return sum(v == node for _, v in supernet.edges(cell_type))


def _cell(supernet: nn.Module, cell_type: str, decisions: list[Decision]) -> ArchGraph:
    """The decided cell: every edge not removed by a topology decision, with its op."""
    ops = {d.edge: d.op for d in decisions if d.cell_type == cell_type and d.op is not None}
    removed = {e for d in decisions if d.cell_type == cell_type and d.node is not None for e in d.accuracies}
    return ArchGraph([(*edge, ops[edge]) for edge in supernet.edges(cell_type) if edge not in removed])
