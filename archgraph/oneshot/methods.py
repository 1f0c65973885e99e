"""DARTS and its robust variants side by side: each method a configuration of one search.

:func:`search_darts` builds a DARTS supernet over a space (``darts``, RobustDARTS' ``s1`` ..
``s5``), or the NAS-Bench-201 supernet (``nb201``, :func:`~archgraph.oneshot.build_nb201_supernet`,
as NAS-Bench-201 §5 runs DARTS, GDAS and others on it), trains it bi-level with
:func:`~archgraph.oneshot.train_bilevel` and discretises it.
The methods (:data:`METHODS`) only change the relaxation, the trainer's settings, a
regulariser or the driver around the trainer:

========  ======================================================================================
darts     softmax, DARTS' settings (Liu et al. 2019 §3.1.1; RobustDARTS' code: SGD 0.025 cosine
          → 0.001, momentum 0.9, weight decay 3e-4, clip 5; α: Adam 3e-4, betas (0.5, 0.999),
          weight decay 1e-3; batch 64)
es        DARTS-ES (RobustDARTS §4.3): stop when λ_max grows too fast, keep epoch i − k
ada       DARTS-ADA (§5.2): roll back and multiply the weights' L2 factor by η instead
rdarts    R-DARTS(L2) (§5.1): one search per L2 factor, the best after a short retraining
fair      FairDARTS (Chu et al. 2020): sigmoid, zero-one loss (w = 10), no ``none`` op,
          threshold 0.85 discretisation
drnas     DrNAS (Chen et al. 2021): Dirichlet relaxation, α Adam 6e-4, L2 1e-3 on α (the
          reference code's default regulariser), one stage on all channels
gdas      GDAS (Dong & Yang 2019): hard Gumbel-softmax (one op per edge runs), τ 10 → 0.1
rsws      random search with weight sharing (Li & Talwalkar 2019 §4.2), the baseline
rdarts-dp R-DARTS(DP) (§5.1): one search per ScheduledDropPath probability (0, 0.2, 0.4,
          0.6), cutout alongside as in the reference's DP runs, the best after a short retraining
drnas-    DrNAS as its reference code runs it on the DARTS space
progres-  (:mod:`~archgraph.oneshot.progressive`): partial channels K = 6 then 4, every edge
sive      pruned to its 4 strongest ops between the two stages, 10 of every 25 epochs α
          warm-up, SGD 0.1 cosine → 0 over both stages; ``C`` a multiple of 12
========  ======================================================================================

Every method steps α with Adam, or with DSCD around that Adam (``arch_optimizer="dscd"``,
:func:`~archgraph.oneshot.train_bilevel`).

``select`` is ``"magnitude"`` (DARTS §2.4; FairDARTS' threshold for ``fair``; on ``nb201``
each edge's argmax of α, NAS-Bench-201 §5) or ``"pt"`` (DARTS-PT's perturbation-based
selection, :func:`~archgraph.oneshot.perturb.perturbation_select`; on ``nb201`` its six op
projections without the topology step, as the DARTS-PT reference code runs it there).
``fair``, ``rsws``, ``rdarts-dp`` and ``drnas-progressive`` need the DARTS cell (FairDARTS drops
``none``, RS-ws samples two inputs per node, the NAS-Bench-201 supernet has no drop-path and
no partial channels) and are not run on ``nb201``.

:func:`search_darts` leaves the caller's random number generators as they were: it draws
from torch's global generator only inside :func:`torch.random.fork_rng`, seeded with ``seed``,
and from numpy only through its own ``numpy.random.default_rng`` generators.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..errors import SettingError, SpaceError
from ..graph import ArchGraph
from ..relax import Gumbel
from ..spaces import Space, load
from ..train import _seeded_rng, evaluate, train
from .bilevel import ARCH_OPTIMIZERS, train_bilevel
from .early_stop import (
    DROP_PATH_PROBS,
    L2_FACTORS,
    DartsES,
    EigenvalueTracker,
    chain_callbacks,
    check_sweep,
    darts_ada,
    rdarts,
    rdarts_dp,
)
from .hessian import arch_eigenvalue
from .nb201 import build_nb201_supernet
from .perturb import NONE, perturbation_select
from .progressive import DRNAS_STAGES, train_progressive
from .regularize import Cutout, ZeroOneLoss
from .rsws import random_search_ws
from .select import magnitude, threshold
from .supernet import build_supernet

__all__ = ["DARTS_TRAINING", "ES_WINDOW", "METHODS", "SELECTIONS", "DartsSearch", "Method", "check_options", "retrain",
           "search_darts"]

#: DARTS' search settings for :func:`~archgraph.oneshot.train_bilevel` (RobustDARTS' code)
DARTS_TRAINING: Mapping = {
    "optimizer": "sgd", "lr": 0.025, "schedule": "cosine", "min_lr": 0.001, "weight_decay": 3e-4,
    "grad_clip": 5.0, "arch_lr": 3e-4, "arch_betas": (0.5, 0.999), "arch_weight_decay": 1e-3,
}


@dataclass(frozen=True)
class Method:
    """How one method differs from DARTS: its relaxation, trainer settings, α regulariser,
    whether it drops the ``none`` op, and its magnitude-style discretisation."""

    relaxation: Callable[[], object] | str = "softmax"
    training: Mapping = field(default_factory=dict)
    regularizer: Callable[[], object] | None = None
    without_none: bool = False
    discretise: Callable = magnitude


METHODS: Mapping[str, Method] = {
    "darts": Method(),
    "es": Method(),
    "ada": Method(),
    "rdarts": Method(),
    "fair": Method("sigmoid", regularizer=lambda: ZeroOneLoss(10.0), without_none=True, discretise=threshold),
    "drnas": Method("dirichlet", training={"arch_lr": 6e-4}),
    "gdas": Method(lambda: Gumbel(10.0, hard=True), training={"temperature": (10.0, 0.1)}),
    "rsws": Method(),
    "rdarts-dp": Method(),
    # DrNAS' DARTS-space search (reference DARTS-space/train_search.py): SGD lr 0.1 cosine to 0
    "drnas-progressive": Method("dirichlet", training={"arch_lr": 6e-4, "lr": 0.1, "min_lr": 0.0}),
}
SELECTIONS = ("magnitude", "pt")
#: the methods that need the DARTS cell, and so do not run on the NAS-Bench-201 supernet
_DARTS_CELL_ONLY = ("fair", "rsws", "rdarts-dp", "drnas-progressive")
#: DARTS-ES' window k (RobustDARTS §4.3: λ_max averaged over k = 5 epochs, compared with k epochs before)
ES_WINDOW = 5
#: validation samples λ_max is measured on, during DARTS-ES and at the end alike (RobustDARTS' code: a batch of 64)
EIGEN_BATCH = 64


@dataclass
class DartsSearch:
    """The outcome of :func:`search_darts`.

    Attributes
    ----------
    cells:
        The discretised ``(normal, reduce)`` cells; compile them with the space.
    history:
        The trainer's rows, every epoch run (DARTS-ADA: again after each rollback; R-DARTS:
        the best search's), plus ``eigenvalue`` where λ_max was tracked.
    eigenvalue:
        λ_max of ``∇²_α L_valid`` of the final supernet (R-DARTS: the chosen search's) on one
        validation batch of :data:`EIGEN_BATCH` samples (``None`` for RS-ws).
    seconds:
        Wall time of the search and the discretisation.
    details:
        Method-specific facts: DARTS-ES's ``stop_epoch``, DARTS-ADA's ``rollbacks`` and final
        ``weight_decay``, R-DARTS' ``scores`` per L2 factor.
    """

    method: str
    select: str
    cells: tuple[ArchGraph, ...]
    history: list[dict]
    eigenvalue: float | None
    seconds: float
    details: dict = field(default_factory=dict)


def search_darts(
    space: str | Space = "s2",
    method: str = "darts",
    *,
    weight_data: Dataset,
    arch_data: Dataset,
    input_shape,
    num_classes: int,
    select: str = "magnitude",
    epochs: int = 50,
    C: int = 16,
    layers: int = 8,
    batch_size: int = 64,
    order: int = 1,
    tune_epochs: int = 5,
    tune_rounds: int | None = None,
    retrain_epochs: int = 10,
    samples: int = 1000,
    arch_optimizer: str = "adam",
    es_window: int | None = None,
    l2_factors: Sequence[float] | None = None,
    drop_path_probs: Sequence[float] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_epoch: Callable | None = None,
    **training,
) -> DartsSearch:
    """Search a DARTS space with ``method`` and discretise the result by ``select``.

    Parameters
    ----------
    space:
        A space with the DARTS embodiment (``"darts"``, ``"s1"`` .. ``"s5"``), ``"nb201"``, or
        such a Space.
    method:
        A key of :data:`METHODS`.
    weight_data, arch_data:
        The weights' and α's splits (DARTS: halves of the training set).
    input_shape, num_classes:
        Of the task.
    select:
        ``"magnitude"`` or ``"pt"`` (DARTS-PT, with ``tune_epochs`` of tuning after each of
        ``tune_rounds`` rounds of projections, ``None``: after every round, as
        :func:`~archgraph.oneshot.perturb.perturbation_select` says).
    epochs, C, layers, batch_size, order:
        The search (DARTS §3.1.1: 50 epochs, 16 channels, 8 cells, batch 64, first order). On
        ``nb201``, ``layers`` is N, the cells per stage (NAS-Bench-201: C = 16, N = 5).
    retrain_epochs:
        R-DARTS' short retraining of each candidate, scored on ``arch_data``.
    arch_optimizer:
        ``"adam"`` (DARTS: Adam 3e-4, betas (0.5, 0.999), weight decay 1e-3, or the method's
        own) or ``"dscd"``: DSCD's global coordinate steps alternated with that Adam
        (Bodin et al.; :func:`~archgraph.oneshot.train_bilevel`'s ``arch_optimizer``), for
        every method that trains α (not ``rsws``).
    es_window:
        DARTS-ES' k for ``es`` and ``ada``: λ_max averaged over k epochs and compared with
        the average k epochs before, the architecture of epoch i − k kept (``None``: the
        paper's 5, :data:`ES_WINDOW`).
    l2_factors:
        ``rdarts``' L2 factors, one search each (``None``: the paper's 3i·1e-4,
        i ∈ {1, 3, 9, 27, 81}, :data:`~archgraph.oneshot.early_stop.L2_FACTORS`).
    drop_path_probs:
        ``rdarts-dp``'s largest drop-path probabilities, one search each, in ``[0, 1)``
        (``None``: the paper's 0, 0.2, 0.4, 0.6,
        :data:`~archgraph.oneshot.early_stop.DROP_PATH_PROBS`). The searches with a positive
        probability also cut out the weight batches (RobustDARTS' DP runs: a 16-pixel square on
        32 × 32 images; here half the image side, or half the length of a 1-d signal, unless
        ``cutout`` is given).
    samples:
        RS-ws: architectures scored with the shared weights (Li & Talwalkar: 1,000).
    seed, device, progress, on_epoch:
        As for :func:`~archgraph.oneshot.train_bilevel`.
    **training:
        Overrides of :data:`DARTS_TRAINING` and the method's settings.

    Raises
    ------
    SettingError
        For an unknown method, selection or α optimiser, an ``es_window``, ``l2_factors`` or
        ``drop_path_probs`` that is out of range or given to a method that does not use it,
        or (``drnas-progressive``) a ``C`` that is not a multiple of 12.
    SpaceError
        For a method that needs the DARTS cell on ``nb201``.

    Examples
    --------
    >>> from archgraph.data import fade_split, load
    >>> _, arch, weight = fade_split(load("digits").train, seed=0)
    >>> result = search_darts("s5", "darts", weight_data=weight, arch_data=arch, input_shape=(1, 8, 8),
    ...                       num_classes=10, epochs=1, C=4, layers=3, progress=False)
    >>> [cell.num_edges for cell in result.cells], result.eigenvalue > 0
    ([2, 2], True)
    """
    check_options(method, select=select, arch_optimizer=arch_optimizer, es_window=es_window, l2_factors=l2_factors,
                  drop_path_probs=drop_path_probs, C=C)
    spec = METHODS[method]
    space = load(space) if isinstance(space, str) else space
    nb201 = space.embodiment == "nb201"
    if nb201 and method in _DARTS_CELL_ONLY:
        raise SpaceError(f"method {method!r} needs the DARTS cell and does not run on the NAS-Bench-201 supernet; "
                         f"choose one of {', '.join(m for m in METHODS if m not in _DARTS_CELL_ONLY)}")
    if spec.without_none:
        space = _without_none(space)
    settings = {**DARTS_TRAINING, **spec.training, **training, "order": order, "batch_size": batch_size,
                "seed": seed, "device": device, "progress": progress, "arch_optimizer": arch_optimizer}
    if spec.regularizer is not None:
        settings.setdefault("regularizer", spec.regularizer())
    window = ES_WINDOW if es_window is None else es_window

    def make_supernet():
        relaxation = spec.relaxation() if callable(spec.relaxation) else spec.relaxation
        generator = torch.Generator().manual_seed(seed)
        if nb201:
            return build_nb201_supernet(input_shape=input_shape, num_classes=num_classes, C=C, N=layers,
                                        relaxation=relaxation, generator=generator, seed=seed)
        return build_supernet(space, input_shape=input_shape, num_classes=num_classes, C=C, layers=layers,
                              relaxation=relaxation, generator=generator, seed=seed)

    def discretise(supernet):
        if select == "pt":
            tuning = {**settings, "lr": settings["lr"] / 10, "min_lr": min(settings["min_lr"], settings["lr"] / 10)}
            k = {"k": 3} if nb201 else {}  # every NAS-Bench-201 node keeps all its inputs: no topology step
            return perturbation_select(supernet, weight_data, arch_data, tune_epochs=tune_epochs,
                                       tune_rounds=tune_rounds, **k, **tuning).cells
        return (supernet.arch(),) if nb201 else spec.discretise(supernet)

    def score(cells):
        return retrain(space, cells, weight_data, arch_data, input_shape=input_shape, num_classes=num_classes,
                       epochs=retrain_epochs, C=C, layers=layers, batch_size=batch_size, seed=seed, device=device)

    start = time.perf_counter()
    # the caller's torch RNG is left alone: everything below draws inside a fork seeded with `seed`
    with _seeded_rng(seed, torch.device(device) if device is not None else torch.device("cpu")):
        supernet = make_supernet() if method not in ("rdarts", "rdarts-dp") else None
        details: dict = {}
        if method == "rsws":
            found = random_search_ws(supernet, weight_data, arch_data, epochs=epochs, samples=samples,
                                     batch_size=batch_size, seed=seed, device=device, progress=progress)
            cells, history = found.cells, found.history
        elif method in ("rdarts", "rdarts-dp"):
            searched = []

            def fresh_supernet():
                searched.append(make_supernet())
                return searched[-1]

            if method == "rdarts":
                settings.pop("weight_decay")
                found = rdarts(fresh_supernet, weight_data, arch_data, select=discretise, retrain=score, epochs=epochs,
                               on_epoch=on_epoch, weight_decays=L2_FACTORS if l2_factors is None else l2_factors,
                               **settings)
                details["scores"] = {c.weight_decay: c.score for c in found.candidates}
            else:
                cutout = settings.pop("cutout", Cutout(length=max(1, input_shape[-1] // 2), prob=1.0,
                                                           dim=len(input_shape) - 1))
                settings.pop("drop_path_prob", None)
                found = rdarts_dp(fresh_supernet, weight_data, arch_data, select=discretise, retrain=score,
                                  epochs=epochs, on_epoch=on_epoch, cutout=cutout,
                                  drop_path_probs=DROP_PATH_PROBS if drop_path_probs is None else drop_path_probs,
                                  weight_decay=settings.pop("weight_decay"), **settings)
                details["scores"] = {c.drop_path_prob: c.score for c in found.candidates}
            cells, history = found.best.architecture, found.best.search.history
            supernet = searched[found.candidates.index(found.best)]
        elif method == "ada":
            found = darts_ada(supernet, weight_data, arch_data, epochs=epochs, on_epoch=on_epoch,
                              early_stop=DartsES(EigenvalueTracker(arch_data, batch_size=EIGEN_BATCH, seed=seed),
                                                 window=window), **settings)
            cells, history = discretise(supernet), found.history
            details.update(rollbacks=found.rollbacks, weight_decay=found.weight_decay)
        elif method == "drnas-progressive":
            found = train_progressive(supernet, weight_data, arch_data, epochs=epochs, on_epoch=on_epoch,
                                      generator=torch.Generator().manual_seed(seed), **settings)
            cells, history = discretise(supernet), found.history
            details["stages"] = found.stages
        else:
            tracker = EigenvalueTracker(arch_data, batch_size=EIGEN_BATCH, seed=seed)
            stopper = DartsES(tracker, window=window) if method == "es" else None
            found = train_bilevel(supernet, weight_data, arch_data, epochs=epochs,
                                  on_epoch=chain_callbacks(stopper, on_epoch), **settings)
            if stopper is not None and stopper.stop_epoch is not None:
                stopper.restore(supernet)
                details["stop_epoch"] = stopper.stop_epoch
            cells, history = discretise(supernet), found.history
        eigenvalue = None
        if method != "rsws":
            eigenvalue = arch_eigenvalue(supernet, _batch(arch_data, EIGEN_BATCH, seed), device=device)
    return DartsSearch(method, select, tuple(cells), history, eigenvalue, time.perf_counter() - start, details)


def check_options(method: str, *, select: str = "magnitude", arch_optimizer: str = "adam", es_window: int | None = None,
                  l2_factors: Sequence[float] | None = None, drop_path_probs: Sequence[float] | None = None,
                  C: int | None = None) -> None:
    """Refuse the settings of :func:`search_darts` that cannot run, with a ``ValueError`` that says why.

    Called by :func:`search_darts` first, and by ``archgraph darts`` before it makes its run folder.

    >>> check_options("darts", l2_factors=[3e-4])
    Traceback (most recent call last):
    ...
    archgraph.errors.SettingError: l2_factors are the L2 factors of R-DARTS(L2)'s searches; they apply to method 'rdarts' only, not 'darts'
    """
    if method not in METHODS:
        raise SettingError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if select not in SELECTIONS:
        raise SettingError(f"unknown select {select!r}; choose 'magnitude' (DARTS §2.4) or 'pt' (DARTS-PT)")
    if arch_optimizer not in ARCH_OPTIMIZERS:
        raise SettingError(f"unknown arch_optimizer {arch_optimizer!r}; choose 'adam' (DARTS) or 'dscd' (Adam with DSCD's "
                         "global steps, Bodin et al.)")
    for name, value, owner, what in (
            ("es_window", es_window, ("es", "ada"), "is DARTS-ES' window k"),
            ("l2_factors", l2_factors, ("rdarts",), "are the L2 factors of R-DARTS(L2)'s searches"),
            ("drop_path_probs", drop_path_probs, ("rdarts-dp",),
             "are the drop-path probabilities of R-DARTS(DP)'s searches")):
        if value is not None and method not in owner:
            methods = " and ".join(repr(m) for m in owner)
            raise SettingError(f"{name} {what}; {'they apply' if name != 'es_window' else 'it applies'} to method "
                             f"{methods} only, not {method!r}")
    if es_window is not None and (isinstance(es_window, bool) or not isinstance(es_window, int) or es_window < 1):
        raise SettingError(f"es_window is DARTS-ES' k, the epochs λ_max is averaged over, an int of at least 1 (the paper: "
                         f"{ES_WINDOW}); got {es_window!r}")
    if l2_factors is not None:
        check_sweep("l2_factors", l2_factors, "an L2 factor, a finite number >= 0", "L2_FACTORS",
                    lambda v: 0 <= v < float("inf"))
    if drop_path_probs is not None:
        check_sweep("drop_path_probs", drop_path_probs, "a drop-path probability in [0, 1)", "DROP_PATH_PROBS",
                    lambda v: 0 <= v < 1)
    if method == "drnas-progressive" and C is not None:
        ks = DRNAS_STAGES["partial_channels"]
        if isinstance(C, int) and any(C % k for k in ks):
            raise SettingError(f"drnas-progressive runs the edges on partial channels, K = {' then '.join(map(str, ks))} "
                             f"(DrNAS' reference), so C must be a multiple of 12; got C={C} (try 12, 24 or 36)")


def retrain(space: str | Space, cells, train_data: Dataset, eval_data: Dataset, *, input_shape, num_classes: int,
            epochs: int, C: int = 16, layers: int = 8, batch_size: int = 64, seed: int = 0, device=None,
            progress: bool = False) -> float:
    """Train the DARTS network of ``cells`` (``C`` channels, ``layers`` cells; on ``nb201``
    ``layers`` cells per stage) from scratch on ``train_data`` and return its accuracy on
    ``eval_data``: SGD 0.025, cosine, momentum 0.9, weight decay 3e-4, clip 5 (DARTS §3.2
    without the auxiliary head and drop-path). The weights and the training draw from
    ``seed``; the caller's random number generators are left as they were."""
    space = load(space) if isinstance(space, str) else space
    depth = {"N": layers} if space.embodiment == "nb201" else {"layers": layers}
    # seeded weights without touching the caller's RNG (the training seeds its own fork)
    model = space.compile(list(cells), input_shape=input_shape, num_classes=num_classes, C=C, seed=seed, **depth)
    train(model, train_data, epochs=epochs, batch_size=batch_size, optimizer="sgd", lr=0.025, momentum=0.9,
          weight_decay=3e-4, schedule="cosine", grad_clip=5.0, seed=seed, device=device, progress=progress)
    return evaluate(model, eval_data, device=device)["accuracy"]


def _without_none(space: Space) -> Space:
    """``space`` without the ``none`` op (FairDARTS searches without it)."""
    keep = lambda ops: tuple(op for op in ops if op != NONE)  # noqa: E731
    edge_ops = {cell: {edge: keep(ops) for edge, ops in table.items()} for cell, table in space.edge_ops.items()}
    return dataclasses.replace(space, ops=None if space.ops is None else keep(space.ops), edge_ops=edge_ops)


def _batch(data: Dataset, batch_size: int, seed: int):
    """A random batch of ``data`` as ``(x, y)`` tensors."""
    index = np.random.default_rng(seed).permutation(len(data))[:batch_size].tolist()
    return default_collate([data[i] for i in index])
