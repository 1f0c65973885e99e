"""Bi-level one-shot training: weights ω on one split, architecture parameters α on another.

The relaxed search of DARTS (Liu et al. 2019, §2.3, Alg. 1) and FaDE (Neumeier, Stier &
Granitzer 2024, §2.2, §3) solves ``min_α L_arch(ω*(α), α)`` with ``ω*(α) = argmin_ω
L_weight(ω, α)`` by alternating steps. Each step draws one architecture batch and updates α
on ``L(α, ω) + regularizer``, then draws one weight batch and updates ω on ``L(α, ω)`` (the
order of DARTS Alg. 1). The α gradient is the *first-order* approximation (DARTS §2.3 with
ξ = 0: taken at the current ω, as if ω did not depend on α) or the *second-order* one
(DARTS eq. 7, App. A: through a virtual weight step), see :mod:`archgraph.oneshot.steps`.

DARTS and its robust variants are settings of :func:`train_bilevel`, not forks: DARTS' SGD
with a cosine learning rate and second order; RobustDARTS' (Zela et al. 2020, §5) larger
weight decay, scheduled drop-path and cutout; DARTS-ADA's restart from an earlier epoch
(``start_epoch``); FairDARTS' and DrNAS' regularisers (:mod:`archgraph.oneshot.regularize`).
It works on any module containing :class:`~archgraph.relax.Choice` objects: α are their
``alpha`` (:func:`~archgraph.relax.arch_parameters`), ω everything else.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from archgraph.data import fade_split, load
>>> from archgraph.oneshot import train_bilevel
>>> from archgraph.relax import Choice
>>> _, arch, weight = fade_split(load("digits").train, seed=0)
>>> model = nn.Sequential(nn.Flatten(), Choice([nn.Linear(64, 10), nn.Sequential(nn.Linear(64, 10), nn.ReLU())]))
>>> result = train_bilevel(model, weight, arch, epochs=2, lr=1e-2, arch_lr=1e-2, progress=False)
>>> len(result.history), result.history[-1]["alpha"] == [model[1].probabilities().tolist()]
(2, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..errors import SettingError, ShapeError
from ..relax import Choice, Gumbel, arch_parameters, choices, weight_parameters
from ..train import _device, _loader, _run, _seeded_rng, _step, evaluate
from .dscd import DSCD
from .regularize import Cutout, _rows
from .steps import (
    Batch,
    Regularizer,
    _ArchMeter,
    _FirstOrderStep,
    _SecondOrderStep,
    requiring_grad,
)

__all__ = ["ARCH_OPTIMIZERS", "ArchOptimizerFactory", "BilevelResult", "train_bilevel"]

#: the α optimisers :func:`train_bilevel` names: Adam alone, or Adam inside DSCD
ARCH_OPTIMIZERS = ("adam", "dscd")
#: ``factory(alphas, total_steps)``: makes the α optimiser of :func:`train_bilevel`
ArchOptimizerFactory = Callable[[list[nn.Parameter], int], "torch.optim.Optimizer | DSCD"]
_OPTIMIZERS = ("adam", "sgd")
_SCHEDULES = (None, "cosine")


@dataclass
class BilevelResult:
    """What :func:`train_bilevel` did, epoch by epoch.

    Attributes
    ----------
    history:
        One dict per epoch run (JSON-serialisable):

        * ``epoch`` (absolute: from ``start_epoch``), ``seconds``;
        * ``lr``: the weights' learning rate in the epoch;
        * ``train_loss``, ``train_accuracy``: cross-entropy and accuracy on the epoch's
          weight batches, measured while training ω;
        * ``arch_loss``, ``arch_accuracy``: the same on the architecture batches, measured
          while training α (at the virtual weights ω' with ``order=2``; ``arch_loss`` is the
          cross-entropy alone; ``None`` in warm-up epochs);
        * ``arch_penalty``: the regulariser's mean value over the epoch's α steps (``None``
          without a regulariser or α steps); ``coefficients``: its ``coefficients(epoch, rows=d)`` when
          it has that method (FaDE's ``r_i``), else ``None``;
        * ``tau``: the Gumbel temperature of the epoch when ``temperature`` anneals it, else ``None``;
        * ``drop_path_prob``: the model's drop-path probability in the epoch when
          ``drop_path_prob`` schedules it (ScheduledDropPath), else ``None``;
        * ``val_loss``, ``val_accuracy``: on ``val_data`` after the epoch (``None`` without);
        * ``alpha``: after the epoch, one list per row (a Choice; Choices sharing one
          ``alpha`` count once, in module order) of its ``probabilities()``, i.e. a list of
          lists of floats.
    stopped_early:
        Whether ``on_epoch`` stopped training before ``epochs``.
    """

    history: list[dict]
    stopped_early: bool = False

    @property
    def alphas(self) -> list[torch.Tensor]:
        """The final probabilities, one float32 tensor per row (``history[-1]["alpha"]``).

        With rows of equal width this is the ``(d, w)`` matrix FaDE-ranks take
        (:func:`archgraph.ranks.top_paths` accepts the list as it is;
        ``torch.stack(result.alphas)`` makes it one tensor).
        """
        return [torch.tensor(row) for row in self.history[-1]["alpha"]]

    def __repr__(self) -> str:
        last = self.history[-1] if self.history else {}
        return (f"BilevelResult(epochs={len(self.history)}, val_accuracy={last.get('val_accuracy')}, "
                f"stopped_early={self.stopped_early})")


def train_bilevel(
    model: nn.Module,
    weight_data: Dataset,
    arch_data: Dataset,
    *,
    epochs: int,
    batch_size: int = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    schedule: str | None = None,
    min_lr: float = 0.0,
    weight_decay: float = 1e-4,
    grad_clip: float | None = 10.0,
    arch_lr: float = 1e-3,
    arch_betas: tuple[float, float] = (0.9, 0.999),
    arch_weight_decay: float = 0.0,
    arch_optimizer: str | ArchOptimizerFactory = "adam",
    order: int = 1,
    regularizer: Regularizer | None = None,
    temperature: tuple[float, float] | None = None,
    arch_warmup: int = 0,
    drop_path_prob: float = 0.0,
    cutout: Cutout | None = None,
    start_epoch: int = 0,
    end_epoch: int | None = None,
    val_data: Dataset | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict, nn.Module], bool | None] | None = None,
) -> BilevelResult:
    """Train a model with Choices bi-level (DARTS §2.3, Alg. 1; FaDE §2.2, §3).

    The defaults are FaDE's (§3): Adam for ω with a constant lr 1e-3, betas (0.9, 0.999),
    eps 1e-8, weight decay 1e-4 and gradient clipping at norm 10; Adam for α with a constant
    lr 1e-3; first order. The paper prints β1 = 0.1, β2 = 1e-3, almost surely a typo for
    the usual 0.9 / 0.999, which we use. DARTS' search (§3.1.1; its reference code) is
    ``optimizer="sgd", lr=0.025, schedule="cosine", min_lr=0.001, weight_decay=3e-4,
    grad_clip=5, arch_lr=3e-4, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3`` with
    ``order=1`` or ``2``. The model is changed in place. The weight steps run with α frozen
    (``requires_grad=False``): they do not use its gradient, and a hard Gumbel Choice with
    ``estimator="all"`` then runs its sampled candidate alone (:mod:`archgraph.relax`).

    Parameters
    ----------
    model:
        A classifier returning logits ``(batch, num_classes)`` that contains at least one
        :class:`~archgraph.relax.Choice` (a FaDE hyper-architecture, a DARTS supernet, ...).
    weight_data, arch_data:
        Disjoint map-style datasets of ``(x, y)`` pairs: ω learns from ``weight_data``, α from
        ``arch_data`` (FaDE's 1-1-4 split: :func:`archgraph.data.fade_split`). An epoch is one
        pass over ``weight_data``; ``arch_data`` is cycled, reshuffled on every pass.
    epochs, batch_size:
        The epoch the schedules end at (training runs epochs ``start_epoch`` to
        ``epochs - 1``); samples per batch for both splits.
    optimizer:
        For ω: ``"adam"`` (betas (0.9, 0.999), eps 1e-8) or ``"sgd"`` (momentum 0.9, as DARTS).
    lr, schedule, min_lr:
        The weights' learning rate: constant for ``None``, or ``"cosine"``: ``min_lr + (lr - min_lr) ·
        (1 + cos(π e / epochs)) / 2`` in epoch ``e`` (DARTS' ``CosineAnnealingLR`` with
        ``T_max = epochs``, stepped once per epoch: ``lr`` in the first, approaching ``min_lr``).
    weight_decay, grad_clip:
        The optimiser's L2 factor for ω (RobustDARTS' "L2 factor", §5: R-DARTS(L2) raises it);
        gradients of ω are clipped to total 2-norm ``grad_clip`` (``None``: not clipped).
    arch_lr, arch_betas, arch_weight_decay:
        Adam for α, with a constant learning rate (DARTS uses betas (0.5, 0.999) and
        weight decay 1e-3; DrNAS' default L2 penalty on α is this weight decay).
    arch_optimizer:
        What steps α:

        * ``"adam"`` (default): ``torch.optim.Adam(α, lr=arch_lr, betas=arch_betas, eps=1e-8,
          weight_decay=arch_weight_decay)``, as above;
        * ``"dscd"``: :class:`~archgraph.oneshot.dscd.DSCD` (Bodin et al., Alg. 1) around that
          same Adam, with the paper's settings (``bounds=(-3, 3)``, ``T=50``, ``K=1000``),
          ``total_steps`` = the α steps this call plans (below) and its coordinates and
          proposals drawn from ``numpy.random.default_rng(seed + 3)``. Its local steps are
          the usual α steps (first or second order, regulariser included); a global step sets
          one entry of all α (every Choice's, as one vector) to a Beta proposal on ``[-3, 3]``
          and keeps it if the architecture loss plus regulariser on that step's architecture
          batch (at ω, or at the virtual ω' with ``order=2``) is below the lowest such loss of
          the last ``K`` α steps. These losses come from different mini-batches, as they do in
          any stochastic use of DSCD; the epoch's ``arch_loss`` includes the global steps'
          (at their proposals);
        * a factory ``arch_optimizer(alphas, total_steps)`` returning a ``torch.optim.Optimizer``
          over ``alphas`` or a :class:`~archgraph.oneshot.dscd.DSCD` (then ``arch_lr``,
          ``arch_betas`` and ``arch_weight_decay`` are not used), e.g.
          ``lambda alphas, n: DSCD(alphas, torch.optim.Adam(alphas, lr=3e-4), total_steps=n, T=20)``.

        ``total_steps`` is the number of α steps of epochs ``max(start_epoch, arch_warmup)``
        to ``end_epoch − 1``, one per weight batch: DSCD's cosine schedule spans this call
        (a resumed run, ``start_epoch > 0``, starts it afresh like the optimisers).
    order:
        ``1``: the α gradient at the current ω; ``2``: DARTS' second-order gradient through
        the virtual step ``ω' = ω − ξ ∇_ω L_weight``, ξ the weights' current learning rate
        (DARTS eq. 7–8, App. A; about four forwards per step instead of one, see
        :mod:`archgraph.oneshot.steps`).
    regularizer:
        ``regularizer(model, epoch) -> Tensor`` added to the architecture loss, e.g.
        :class:`~archgraph.oneshot.MaxNorm` (FaDE §2.2); its gradient is added to α's in both orders.
    temperature:
        ``None`` keeps every Gumbel relaxation's ``tau`` (FaDE: 10 throughout), or
        ``(start, end)``: set ``tau`` of every :class:`~archgraph.relax.Gumbel` relaxation
        to ``(1 - f) · start + f · end``, ``f = e / (epochs - 1)``, in epoch ``e`` (GDAS anneals 10 → 0.1).
        The model keeps the last value.
    arch_warmup:
        Epochs ``e < arch_warmup`` train only ω while α stays as it is (DrNAS's reference
        code warms up for 10 epochs per stage), so that the first α gradients are taken on
        weights that have learned something. Their history rows have ``None`` for the
        architecture loss, accuracy and penalty.
    drop_path_prob:
        ScheduledDropPath (RobustDARTS §5): in epoch ``e`` the trainer sets
        ``model.drop_path_prob = drop_path_prob · e / (epochs - 1)`` (0 when ``epochs = 1``),
        the schedule of RobustDARTS' reference code (``src/search/train_search.py``), from 0
        to this maximum in the last epoch; the model applies it in its training-mode
        forwards (of both splits) and the history row records it. ``0`` leaves the model's
        attribute alone.
    cutout:
        A :class:`~archgraph.oneshot.regularize.Cutout` applied to the weight batches, its
        probability growing linearly to ``cutout.prob`` in the last epoch (RobustDARTS §5).
    start_epoch:
        Resume at this absolute epoch: every schedule (learning rate, temperature,
        regulariser epoch, drop-path, cutout, ``arch_warmup``) continues as if epochs 0 to
        ``start_epoch - 1`` had run, e.g. for DARTS-ADA, which rolls the model back to an
        earlier epoch and continues with a larger weight decay. Only the model carries
        over: the optimisers start fresh (no momentum or Adam moments) and the shuffling and
        noise streams restart from ``seed``.
    end_epoch:
        Stop after epoch ``end_epoch − 1`` (default ``epochs``) while every schedule still
        runs over ``epochs``: one stage of a longer schedule, as DrNAS' progressive search
        runs its stages (:func:`~archgraph.oneshot.progressive.train_progressive`).
        ``stopped_early`` stays false when the run reaches ``end_epoch``.
    val_data:
        Evaluated after every epoch with :func:`archgraph.train.evaluate`: eval mode, the
        model's plain forward. That is the *relaxed* model: a soft Choice mixes its
        candidates, and a hard-Gumbel (or Dirichlet) Choice draws a fresh sample on each
        forward, so each batch is scored on a randomly sampled path — a noisy estimate of the
        supernet, not the accuracy of the preferred architecture.
    seed:
        Seeds the shuffling of ``weight_data`` (generator seeded with ``seed``) and
        ``arch_data`` (``seed + 1``), cutout (``seed + 2``) and, for the run only, torch's
        global RNG on the CPU and ``device``, which the Gumbel noise draws from; the caller's
        RNG state is restored afterwards. Runs on the CPU are deterministic for a fixed seed.
    device:
        Where to train; the model is moved there. ``None``: where its parameters are.
    progress:
        Show a tqdm bar over epochs (hidden when stderr is not a terminal).
    on_epoch:
        Called as ``on_epoch(row, model)`` after each epoch; return ``True`` to stop.

    Returns
    -------
    BilevelResult

    Raises
    ------
    SettingError, ShapeError
        For a model without Choices or without weights, an empty dataset (a
        :class:`~archgraph.errors.ShapeError`), or out-of-range settings.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from archgraph.relax import Choice
    >>> x = torch.linspace(-1, 1, 64).unsqueeze(1)
    >>> data = TensorDataset(x, (x[:, 0] > 0).long())
    >>> model = nn.Sequential(nn.Linear(1, 2), Choice([nn.Identity(), nn.Tanh()], "gumbel"))
    >>> result = train_bilevel(model, data, data, epochs=3, batch_size=16, temperature=(10.0, 0.1),
    ...                        progress=False)
    >>> [row["tau"] for row in result.history], model[1].relaxation.tau
    ([10.0, 5.05, 0.1], 0.1)

    DARTS' second order with SGD and a cosine learning rate, resumed at epoch 1:

    >>> model = nn.Sequential(nn.Linear(1, 2), Choice([nn.Identity(), nn.Tanh()]))
    >>> result = train_bilevel(model, data, data, epochs=3, batch_size=16, order=2, optimizer="sgd",
    ...                        lr=0.025, schedule="cosine", min_lr=0.001, start_epoch=1, progress=False)
    >>> [(row["epoch"], round(row["lr"], 6)) for row in result.history]
    [(1, 0.019), (2, 0.007)]
    """
    _check_settings(model, weight_data, arch_data, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                    lr=lr, schedule=schedule, min_lr=min_lr, grad_clip=grad_clip, order=order,
                    regularizer=regularizer, temperature=temperature, arch_warmup=arch_warmup,
                    drop_path_prob=drop_path_prob, cutout=cutout, start_epoch=start_epoch,
                    arch_optimizer=arch_optimizer)
    end_epoch = epochs if end_epoch is None else end_epoch
    if not _is_int(end_epoch) or not start_epoch < end_epoch <= epochs:
        raise SettingError(f"end_epoch is the epoch to stop before, an int in [start_epoch + 1, epochs] = "
                         f"[{start_epoch + 1}, {epochs}] (or None for epochs); got {end_epoch!r}")
    device = _device(model, device)
    model.to(device)
    rows = _rows(model)
    alphas = [p for p in arch_parameters(model) if p.requires_grad]
    weights = [p for p in weight_parameters(model) if p.requires_grad]
    if not alphas:
        raise SettingError("every architecture parameter of the model has requires_grad=False; nothing for α to learn")
    if not weights:
        raise SettingError(
            "the model has no trainable weights besides its architecture parameters; bi-level training "
            "alternates α and weight steps, so give the candidates some weights (or train α alone by other means)"
        )
    if optimizer == "sgd":
        weight_opt = torch.optim.SGD(weights, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        weight_opt = torch.optim.Adam(weights, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    gumbels = [c.relaxation for c in choices(model) if isinstance(c.relaxation, Gumbel)]
    weight_loader = _loader(weight_data, batch_size, device, shuffle_seed=seed)
    arch_steps = len(weight_loader) * max(0, end_epoch - max(start_epoch, arch_warmup))
    arch_opt = _arch_optimizer(arch_optimizer, alphas, arch_steps, lr=arch_lr, betas=arch_betas,
                               weight_decay=arch_weight_decay, seed=seed)
    arch_batches = _forever(_loader(arch_data, batch_size, device, shuffle_seed=seed + 1))
    cutout_rng = torch.Generator().manual_seed(seed + 2)
    history: list[dict] = []
    bar = tqdm(range(start_epoch, end_epoch), desc="bilevel", unit="epoch", disable=None if progress else True)
    with _seeded_rng(seed, device), bar:
        for epoch in bar:
            start = time.perf_counter()
            tau = None if temperature is None else _linear(*temperature, epoch, epochs)
            for relaxation in gumbels if tau is not None else ():
                relaxation.tau = tau
            lr_now = lr if schedule is None else _cosine(lr, min_lr, epoch, epochs)
            for group in weight_opt.param_groups:
                group["lr"] = lr_now
            if drop_path_prob > 0:
                # RobustDARTS' expression itself (src/search/train_search.py), so the values match it to the bit
                model.drop_path_prob = drop_path_prob * epoch / (epochs - 1) if epochs > 1 else 0.0
            model.train()
            arch = _ArchMeter(device)
            batches = weight_loader
            if cutout is not None:
                batches = _cut_out(weight_loader, cutout, cutout.probability(epoch, epochs), cutout_rng, device)
            if epoch >= arch_warmup:
                args = (model, arch_opt, alphas, regularizer, epoch, device, arch)
                arch_step = (_FirstOrderStep(*args) if order == 1
                             else _SecondOrderStep(*args, weights=weights, weight_optimizer=weight_opt))
                batches = _interleave(batches, arch_batches, arch_step)
            with requiring_grad(alphas, False):  # weight steps do not use α's gradient
                fit = _run(model, batches, device, 0.0, _weight_step(weight_opt, weights, grad_clip))
            val = {"loss": None, "accuracy": None}
            if val_data is not None:
                val = evaluate(model, val_data, batch_size=batch_size, device=device)
            coefficients = getattr(regularizer, "coefficients", None)
            row = {
                "epoch": epoch,
                "lr": lr_now,
                "train_loss": fit["loss"],
                "train_accuracy": fit["accuracy"],
                "arch_loss": arch.loss,
                "arch_accuracy": arch.accuracy,
                "arch_penalty": arch.penalty if regularizer is not None else None,
                "coefficients": ([float(r) for r in coefficients(epoch, rows=len(rows))] if callable(coefficients)
                                 else None),
                "tau": tau,
                "drop_path_prob": model.drop_path_prob if drop_path_prob > 0 else None,
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
                "alpha": _probabilities(rows),
                "seconds": time.perf_counter() - start,
            }
            history.append(row)
            bar.set_postfix({k: f"{row[k]:.4g}" for k in ("train_loss", "arch_loss", "val_accuracy")
                             if row[k] is not None})
            if on_epoch is not None and on_epoch(row, model):
                break
    return BilevelResult(history, stopped_early=len(history) < end_epoch - start_epoch)


def _arch_optimizer(arch_optimizer: str | ArchOptimizerFactory, alphas: list[nn.Parameter], total_steps: int, *,
                    lr: float, betas: tuple[float, float], weight_decay: float,
                    seed: int) -> torch.optim.Optimizer | DSCD:
    """The α optimiser ``arch_optimizer`` names or makes (see :func:`train_bilevel`)."""
    if callable(arch_optimizer):
        made = arch_optimizer(alphas, max(1, total_steps))
        if not isinstance(made, (torch.optim.Optimizer, DSCD)):
            raise TypeError(f"arch_optimizer(alphas, total_steps) must return a torch.optim.Optimizer or an "
                            f"archgraph.oneshot.DSCD over alphas, got {type(made).__name__}")
        return made
    adam = torch.optim.Adam(alphas, lr=lr, betas=betas, eps=1e-8, weight_decay=weight_decay)
    if arch_optimizer == "adam":
        return adam
    return DSCD(alphas, adam, total_steps=max(1, total_steps), generator=np.random.default_rng(seed + 3))


def _weight_step(optimizer: torch.optim.Optimizer, weights: list[nn.Parameter],
                 grad_clip: float | None) -> Callable[[torch.Tensor], None]:
    return lambda loss: _step(optimizer, weights, grad_clip, loss)


def _cut_out(loader: DataLoader, cutout: Cutout, prob: float, generator: torch.Generator,
             device: torch.device) -> Iterator[Batch]:
    """The loader's batches on ``device``, each image cut out with probability ``prob``."""
    for x, y in loader:
        yield cutout(x.to(device, non_blocking=True), prob=prob, generator=generator), y


def _interleave(weight_batches: Iterable[Batch], arch_batches: Iterator[Batch],
                arch_step: Callable[[Batch, Batch], None]) -> Iterator[Batch]:
    """The weight batches, with an α step on the next architecture batch before each is handed out.

    Fed to :func:`archgraph.train._run`, which does the weight forward, step and bookkeeping:
    the α step happens before the weight step sees the batch (DARTS Alg. 1).
    """
    for weight_batch in weight_batches:
        arch_step(next(arch_batches), weight_batch)
        yield weight_batch


def _forever(loader: DataLoader) -> Iterator[Batch]:
    """The loader's batches, pass after pass (each pass reshuffled by its generator)."""
    while True:
        yield from loader


def _linear(start: float, end: float, epoch: int, epochs: int) -> float:
    f = 0.0 if epochs == 1 else epoch / (epochs - 1)
    return (1.0 - f) * start + f * end  # exactly start and end at the ends


def _cosine(start: float, end: float, epoch: int, epochs: int) -> float:
    """DARTS' cosine annealing (``CosineAnnealingLR``, ``T_max = epochs``) at ``epoch``."""
    return end + (start - end) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def _probabilities(rows: Iterable[Choice]) -> list[list[float]]:
    with torch.no_grad():
        return [choice.probabilities().detach().cpu().tolist() for choice in rows]


def _check_settings(model, weight_data, arch_data, *, epochs, batch_size, optimizer, lr, schedule, min_lr,
                    grad_clip, order, regularizer, temperature, arch_warmup, drop_path_prob, cutout,
                    start_epoch, arch_optimizer) -> None:
    if not callable(arch_optimizer) and arch_optimizer not in ARCH_OPTIMIZERS:
        raise SettingError(f"unknown arch_optimizer {arch_optimizer!r}; use 'adam' (DARTS, FaDE), 'dscd' (Adam with "
                         "DSCD's global steps, Bodin et al.) or a factory (alphas, total_steps) -> optimiser")
    if not _is_int(epochs) or epochs < 1:
        raise SettingError(f"epochs must be an int of at least 1, got {epochs!r}")
    for name, value, meaning in (("start_epoch", start_epoch, "the absolute epoch to resume at"),
                                 ("arch_warmup", arch_warmup, "the number of weight-only epochs before α learns")):
        if not _is_int(value) or not 0 <= value < epochs:
            raise SettingError(f"{name} is {meaning}, an int in [0, epochs - 1] = [0, {epochs - 1}]; got {value!r}")
    if batch_size < 1:
        raise SettingError(f"batch_size must be at least 1, got {batch_size}")
    if optimizer not in _OPTIMIZERS:
        raise SettingError(f"unknown optimizer {optimizer!r} for the weights; use 'adam' (FaDE) or 'sgd' (DARTS)")
    if schedule not in _SCHEDULES:
        raise SettingError(f"unknown schedule {schedule!r}; use None (constant lr, FaDE) or 'cosine' (DARTS)")
    if not 0 <= min_lr <= lr:
        raise SettingError(f"need 0 <= min_lr <= lr (the cosine schedule anneals lr to min_lr); got lr={lr!r}, "
                         f"min_lr={min_lr!r}")
    if order not in (1, 2) or isinstance(order, bool):
        raise SettingError(f"order is 1 (first-order α gradient) or 2 (DARTS' second order, eq. 7); got {order!r}")
    if not 0.0 <= drop_path_prob <= 1.0:
        raise SettingError(f"drop_path_prob is the largest drop-path probability, in [0, 1]; got {drop_path_prob!r}")
    if drop_path_prob > 0 and not hasattr(model, "drop_path_prob"):
        raise SettingError(
            f"drop_path_prob={drop_path_prob} schedules model.drop_path_prob, but {type(model).__name__} has no "
            "such attribute; use a model whose forward applies drop-path with it (a DARTS supernet) or leave "
            "drop_path_prob=0"
        )
    if cutout is not None and not isinstance(cutout, Cutout):
        raise TypeError(f"cutout must be an archgraph.oneshot.regularize.Cutout or None, got {type(cutout).__name__}")
    if not choices(model):
        raise SettingError(
            f"the model ({type(model).__name__}) contains no archgraph.relax.Choice, so it has no architecture "
            "parameters to search; build it from Choices (e.g. a hyper-architecture), or train a fixed "
            "architecture with archgraph.train.train"
        )
    for name, data in (("weight_data", weight_data), ("arch_data", arch_data)):
        if len(data) == 0:
            raise ShapeError(f"{name} is empty; give it at least one (x, y) sample (archgraph.data.fade_split "
                             "makes both parts from one dataset)")
    if grad_clip is not None and grad_clip <= 0:
        raise SettingError(f"grad_clip must be positive (or None for no clipping), got {grad_clip}")
    if regularizer is not None and not callable(regularizer):
        raise TypeError(f"regularizer must be a callable (model, epoch) -> Tensor, got {type(regularizer).__name__}")
    if temperature is not None:
        if not isinstance(temperature, (tuple, list)) or len(temperature) != 2 or not all(t > 0 for t in temperature):
            raise SettingError(f"temperature is (start, end), two positive Gumbel temperatures; got {temperature!r}")
        if not any(isinstance(c.relaxation, Gumbel) for c in choices(model)):
            raise SettingError(
                "temperature anneals Gumbel relaxations, but none of the model's Choices uses one; "
                "build the Choices with Gumbel(...) or leave temperature=None"
            )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
