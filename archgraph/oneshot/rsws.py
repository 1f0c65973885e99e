"""Random search with weight sharing, RS-ws (Li & Talwalkar, "Random Search and Reproducibility
for Neural Architecture Search", UAI 2019, §4.2): the baseline RobustDARTS compares against.

1. Train the supernet's weights with a new uniformly random architecture for every mini-batch:
   in each cell type, each intermediate node keeps ``k`` distinct random inputs, each kept edge
   a random op other than ``none`` (:meth:`~archgraph.relax.Choice.fix`), the other edges are
   masked to zero. No architecture parameters are learned.
2. Score ``samples`` random architectures with the shared weights on one random validation
   mini-batch, re-score the best ``top`` on the whole validation split and return the best.

As in DARTS-PT, scoring runs the supernet in train mode (batch-norm batch statistics) without
gradients and leaves its running statistics as they were. The paper scores each sampled
architecture on its own mini-batch; here all share one, so that they are compared on the same data.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from ..errors import SettingError
from ..graph import ArchGraph
from ..relax import weight_parameters
from ..train import _device, _loader, _run, _seeded_rng, _step
from .bilevel import _cosine
from .perturb import NONE, _Accuracy
from .supernet import Supernet

__all__ = ["RandomSearchResult", "random_cells", "random_search_ws"]


@dataclass
class RandomSearchResult:
    """The best cells ``(normal, reduce)``, the weight-training ``history`` (one row per epoch)
    and the ``top`` finalists as ``(cells, validation accuracy)``, best first."""

    cells: tuple[ArchGraph, ...]
    history: list[dict]
    finalists: list[tuple[tuple[ArchGraph, ...], float]]


def random_cells(supernet: Supernet, rng: np.random.Generator, *, k: int = 2) -> tuple[ArchGraph, ...]:
    """One uniformly random architecture of the supernet's space: per cell type and intermediate
    node, ``k`` distinct inputs (all when fewer), each with an op other than ``none``.

    >>> from archgraph.oneshot.supernet import build_supernet
    >>> net = build_supernet("s3", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    >>> normal, reduce = random_cells(net, np.random.default_rng(0))
    >>> [len(normal.predecessors(v)) for v in range(2, 6)], "none" in normal.edge_ops.values()
    ([2, 2, 2, 2], False)
    """
    cells = []
    for cell_type in supernet.cell_types:
        edges = []
        for v in range(2, supernet.nodes + 2):
            inputs = [u for u, w in supernet.edges(cell_type) if w == v]
            for u in sorted(rng.choice(inputs, size=min(k, len(inputs)), replace=False).tolist()):
                ops = [op for op in supernet.edge_ops(cell_type, (u, v)) if op != NONE]
                edges.append((u, v, ops[int(rng.integers(len(ops)))]))
        cells.append(ArchGraph(edges))
    return tuple(cells)


def random_search_ws(
    supernet: Supernet,
    weight_data: Dataset,
    arch_data: Dataset,
    *,
    epochs: int,
    samples: int = 1000,
    top: int = 10,
    k: int = 2,
    batch_size: int = 64,
    lr: float = 0.025,
    min_lr: float = 0.001,
    weight_decay: float = 3e-4,
    grad_clip: float | None = 5.0,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> RandomSearchResult:
    """RS-ws (Li & Talwalkar 2019, §4.2) on a DARTS supernet; its weights are trained in place.

    The weights train as in DARTS' search (SGD, momentum 0.9, cosine learning rate from
    ``lr`` to ``min_lr``, weight decay 3e-4, gradient clipping 5: the RobustDARTS settings),
    one random architecture per mini-batch; then ``samples`` random architectures are scored
    on one validation mini-batch and the best ``top`` on all of ``arch_data``.

    Examples
    --------
    >>> from archgraph.data import fade_split, load
    >>> from archgraph.oneshot.supernet import build_supernet
    >>> _, arch, weight = fade_split(load("digits").train, seed=0)
    >>> net = build_supernet("s5", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    >>> result = random_search_ws(net, weight, arch, epochs=1, samples=20, top=3, progress=False)
    >>> len(result.finalists), result.cells == result.finalists[0][0]
    (3, True)
    """
    for name, value in (("epochs", epochs), ("samples", samples), ("top", top), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingError(f"{name} must be a positive int, got {value!r}")
    device = _device(supernet, device)
    supernet.to(device)
    rng = np.random.default_rng(seed)
    weights = weight_parameters(supernet)
    optimizer = torch.optim.SGD(weights, lr=lr, momentum=0.9, weight_decay=weight_decay)
    loader = _loader(weight_data, batch_size, device, shuffle_seed=seed)
    history = []
    with _seeded_rng(seed, device):
        for epoch in tqdm(range(epochs), desc="rs-ws", unit="epoch", disable=None if progress else True):
            start = time.perf_counter()
            lr_now = _cosine(lr, min_lr, epoch, epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr_now
            supernet.train()
            with contextlib.ExitStack() as applied:
                batches = _one_architecture_per_batch(supernet, loader, rng, k, applied)
                fit = _run(supernet, batches, device, 0.0, lambda loss: _step(optimizer, weights, grad_clip, loss))
            history.append({"epoch": epoch, "lr": lr_now, "train_loss": fit["loss"],
                            "train_accuracy": fit["accuracy"], "seconds": time.perf_counter() - start})
    batch = Subset(arch_data, rng.permutation(len(arch_data))[:batch_size].tolist())
    candidates = [random_cells(supernet, rng, k=k) for _ in range(samples)]
    quick = _scores(supernet, candidates, batch, batch_size, device)
    finalists = [candidates[i] for i in np.argsort(quick, kind="stable")[::-1][:top]]
    full = _scores(supernet, finalists, arch_data, batch_size, device)
    ranked = sorted(zip(finalists, full), key=lambda pair: -pair[1])
    return RandomSearchResult(ranked[0][0], history, ranked)


def _one_architecture_per_batch(supernet, loader, rng, k, applied: contextlib.ExitStack):
    """The loader's batches, with a fresh random architecture applied before each."""
    for batch in loader:
        applied.close()
        applied.enter_context(_applied(supernet, random_cells(supernet, rng, k=k)))
        yield batch


@contextlib.contextmanager
def _applied(supernet: Supernet, cells: tuple[ArchGraph, ...]):
    """Within the block the supernet computes ``cells``: kept edges fixed to their op, the others masked to zero."""
    with contextlib.ExitStack() as stack:
        for cell_type, cell in zip(supernet.cell_types, cells):
            for edge in supernet.edges(cell_type):
                ops = supernet.edge_ops(cell_type, edge)
                for choice in supernet.edge_choices(cell_type, edge):
                    if cell.has_edge(*edge):
                        choice.fix(ops.index(cell.edge_op(*edge)))
                        stack.callback(choice.fix, None)
                    else:
                        stack.enter_context(choice.masked([0.0] * len(ops)))
        yield


def _scores(supernet: nn.Module, candidates, data: Dataset, batch_size: int, device: torch.device) -> list[float]:
    measure = _Accuracy(supernet, data, batch_size, device)
    scores = []
    for cells in candidates:
        with _applied(supernet, cells):
            scores.append(measure())
    return scores
