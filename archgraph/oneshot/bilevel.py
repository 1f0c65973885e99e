"""Bi-level one-shot training: weights ω on one split, architecture parameters α on another.

The relaxed search of DARTS (Liu et al. 2019, §2.3, Alg. 1) and FaDE (Neumeier, Stier &
Granitzer 2024, §2.2, §3) solves ``min_α L_arch(ω*(α), α)`` with ``ω*(α) = argmin_ω
L_weight(ω, α)`` by alternating steps. This is the *first-order* approximation (DARTS
§2.3 with ξ = 0): the α gradient is taken at the current ω, as if ω did not depend on α.

Each step draws one architecture batch and updates α on ``L(α, ω) + regularizer``, then
draws one weight batch and updates ω on ``L(α, ω)`` (the order of DARTS Alg. 1). It works on
any module containing :class:`~archgraph.relax.Choice` objects: α are their ``alpha``
(:func:`~archgraph.relax.arch_parameters`), ω everything else.

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

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..errors import ShapeError
from ..relax import Choice, Gumbel, arch_parameters, choices, weight_parameters
from ..train import (
    _device,
    _forward,
    _loader,
    _loss,
    _run,
    _seeded_rng,
    _step,
    evaluate,
)

__all__ = ["BilevelResult", "train_bilevel"]

#: ``regularizer(model, epoch)``: a term added to the architecture loss (see :mod:`.regularize`)
Regularizer = Callable[[nn.Module, int], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class BilevelResult:
    """What :func:`train_bilevel` did, epoch by epoch.

    Attributes
    ----------
    history:
        One dict per epoch run (JSON-serialisable):

        * ``epoch`` (from 0), ``seconds``;
        * ``train_loss``, ``train_accuracy``: cross-entropy and accuracy on the epoch's
          weight batches, measured while training ω;
        * ``arch_loss``, ``arch_accuracy``: the same on the architecture batches, measured
          while training α (``arch_loss`` is the cross-entropy alone; ``None`` in warm-up epochs);
        * ``arch_penalty``: the regulariser's mean value over the epoch's α steps (``None``
          without a regulariser or α steps); ``coefficients``: its ``coefficients(epoch, rows=d)`` when
          it has that method (FaDE's ``r_i``), else ``None``;
        * ``tau``: the Gumbel temperature of the epoch when ``temperature`` anneals it, else ``None``;
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
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    arch_lr: float = 1e-3,
    arch_betas: tuple[float, float] = (0.9, 0.999),
    arch_weight_decay: float = 0.0,
    grad_clip: float | None = 10.0,
    regularizer: Regularizer | None = None,
    temperature: tuple[float, float] | None = None,
    arch_warmup: int = 0,
    val_data: Dataset | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict, nn.Module], bool | None] | None = None,
) -> BilevelResult:
    """Train a model with Choices bi-level, first order (DARTS §2.3 with ξ = 0; FaDE §2.2, §3).

    The defaults are FaDE's (§3): Adam for ω with lr 1e-3, betas (0.9, 0.999), eps 1e-8,
    weight decay 1e-4 and gradient clipping at norm 10; Adam for α with a constant lr
    1e-3 (no schedule). The paper prints β1 = 0.1, β2 = 1e-3, almost surely a typo for
    the usual 0.9 / 0.999, which we use. The model is changed in place.

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
        Passes over ``weight_data``; samples per batch for both splits.
    lr, weight_decay, grad_clip:
        Adam for ω; gradients are clipped to total 2-norm ``grad_clip`` (``None``: not clipped).
    arch_lr, arch_betas, arch_weight_decay:
        Adam for α, with a constant learning rate (DARTS uses betas (0.5, 0.999) and
        weight decay 1e-3).
    regularizer:
        ``regularizer(model, epoch) -> Tensor`` added to the architecture loss, e.g.
        :class:`~archgraph.oneshot.MaxNorm` (FaDE §2.2).
    temperature:
        ``None`` keeps every Gumbel relaxation's ``tau`` (FaDE: 10 throughout), or
        ``(start, end)``: set ``tau`` of every :class:`~archgraph.relax.Gumbel` relaxation
        to ``(1 - f) · start + f · end``, ``f = e / (epochs - 1)``, in epoch ``e`` (GDAS anneals 10 → 0.1).
        The model keeps the last value.
    arch_warmup:
        Epochs at the start in which only ω trains and α stays at its initial value (DrNAS's
        reference code warms up for 10 epochs per stage), so that the first α gradients are
        taken on weights that have learned something. Their history rows have ``None`` for
        the architecture loss, accuracy and penalty.
    val_data:
        Evaluated after every epoch with :func:`archgraph.train.evaluate`: eval mode, the
        model's plain forward. That is the *relaxed* model: a soft Choice mixes its
        candidates, and a hard-Gumbel (or Dirichlet) Choice draws a fresh sample on each
        forward, so each batch is scored on a randomly sampled path — a noisy estimate of the
        supernet, not the accuracy of the preferred architecture.
    seed:
        Seeds the shuffling of ``weight_data`` (generator seeded with ``seed``) and
        ``arch_data`` (``seed + 1``) and, for the run only, torch's global RNG on the CPU and
        ``device``, which the Gumbel noise draws from; the caller's RNG state is restored
        afterwards. Runs on the CPU are deterministic for a fixed seed.
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
    ValueError
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
    """
    _check_settings(model, weight_data, arch_data, epochs, batch_size, grad_clip, regularizer, temperature,
                    arch_warmup)
    device = _device(model, device)
    model.to(device)
    rows = _rows(model)
    alphas = [p for p in arch_parameters(model) if p.requires_grad]
    weights = [p for p in weight_parameters(model) if p.requires_grad]
    if not alphas:
        raise ValueError("every architecture parameter of the model has requires_grad=False; nothing for α to learn")
    if not weights:
        raise ValueError(
            "the model has no trainable weights besides its architecture parameters; bi-level training "
            "alternates α and weight steps, so give the candidates some weights (or train α alone by other means)"
        )
    weight_opt = torch.optim.Adam(weights, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    arch_opt = torch.optim.Adam(alphas, lr=arch_lr, betas=arch_betas, eps=1e-8, weight_decay=arch_weight_decay)
    gumbels = [c.relaxation for c in choices(model) if isinstance(c.relaxation, Gumbel)]
    weight_loader = _loader(weight_data, batch_size, device, shuffle_seed=seed)
    arch_batches = _forever(_loader(arch_data, batch_size, device, shuffle_seed=seed + 1))
    history: list[dict] = []
    bar = tqdm(range(epochs), desc="bilevel", unit="epoch", disable=None if progress else True)
    with _seeded_rng(seed, device), bar:
        for epoch in bar:
            start = time.perf_counter()
            tau = None
            if temperature is not None:
                tau = _linear(*temperature, epoch, epochs)
                for relaxation in gumbels:
                    relaxation.tau = tau
            model.train()
            arch = _ArchMeter(device)
            weight_step = _weight_step(weight_opt, weights, grad_clip)
            batches = weight_loader
            if epoch >= arch_warmup:
                arch_step = _FirstOrderStep(model, arch_opt, alphas, regularizer, epoch, device, arch)
                batches = _interleave(weight_loader, arch_batches, arch_step)
            fit = _run(model, batches, device, 0.0, weight_step)
            val = {"loss": None, "accuracy": None}
            if val_data is not None:
                val = evaluate(model, val_data, batch_size=batch_size, device=device)
            coefficients = getattr(regularizer, "coefficients", None)
            row = {
                "epoch": epoch,
                "train_loss": fit["loss"],
                "train_accuracy": fit["accuracy"],
                "arch_loss": arch.loss,
                "arch_accuracy": arch.accuracy,
                "arch_penalty": arch.penalty if regularizer is not None else None,
                "coefficients": ([float(r) for r in coefficients(epoch, rows=len(rows))] if callable(coefficients)
                                 else None),
                "tau": tau,
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
    return BilevelResult(history, stopped_early=len(history) < epochs)


class _ArchMeter:
    """Sums of the architecture steps' cross-entropy, correct predictions and penalty.

    Kept on the device, as :func:`archgraph.train._run` does, so that no step waits for a
    transfer; read once per epoch.
    """

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.penalty_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.seen = 0
        self.steps = 0

    def add(self, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor, penalty: torch.Tensor | None) -> None:
        self.loss_sum += loss.detach() * len(y)
        self.correct += (logits.detach().argmax(dim=1) == y).sum()
        self.seen += len(y)
        self.steps += 1
        if penalty is not None:
            self.penalty_sum += penalty.detach().reshape(())

    @property
    def loss(self) -> float | None:
        return self.loss_sum.item() / self.seen if self.seen else None

    @property
    def accuracy(self) -> float | None:
        return self.correct.item() / self.seen if self.seen else None

    @property
    def penalty(self) -> float | None:
        return self.penalty_sum.item() / self.steps if self.steps else None


class _FirstOrderStep:
    """One α step at the current ω (DARTS §2.3, ξ = 0): ``∇_α [L_arch(α, ω) + regularizer]``.

    Only the gradient of α is computed (``torch.autograd.grad``), not that of the weights,
    which the α step does not use. Called with the architecture batch and the weight batch
    that follows it; the first-order step ignores the latter. A second-order step (DARTS
    eq. 7, appendix A) takes the same two batches — it needs ``L_weight`` for the virtual
    step ω' = ω − ξ∇_ω L_weight — and plugs in here without changing the loop.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, alphas: list[nn.Parameter],
                 regularizer: Regularizer | None, epoch: int, device: torch.device, meter: _ArchMeter):
        self.model, self.optimizer, self.alphas, self.regularizer = model, optimizer, alphas, regularizer
        self.epoch, self.device, self.meter = epoch, device, meter

    def __call__(self, arch_batch: Batch, weight_batch: Batch) -> None:
        x, y = (t.to(self.device, non_blocking=True) for t in arch_batch)
        logits, loss = _loss(_forward(self.model, x, with_aux=False), y, aux_weight=0.0)
        penalty = None
        if self.regularizer is not None:
            penalty = self.regularizer(self.model, self.epoch)
            if not isinstance(penalty, torch.Tensor) or penalty.numel() != 1:
                got = f"a tensor of shape {tuple(penalty.shape)}" if isinstance(penalty, torch.Tensor) else repr(penalty)
                raise TypeError(f"regularizer(model, epoch) must return a scalar tensor to add to the "
                                f"architecture loss; got {got}")
        total = loss if penalty is None else loss + penalty.reshape(())
        grads = torch.autograd.grad(total, self.alphas, allow_unused=True)
        for alpha, grad in zip(self.alphas, grads):
            alpha.grad = grad  # None for an α this forward did not use: Adam leaves it alone
        self.optimizer.step()
        self.meter.add(logits, y, loss.detach(), penalty)


def _weight_step(optimizer: torch.optim.Optimizer, weights: list[nn.Parameter],
                 grad_clip: float | None) -> Callable[[torch.Tensor], None]:
    return lambda loss: _step(optimizer, weights, grad_clip, loss)


def _interleave(weight_loader: DataLoader, arch_batches: Iterator[Batch],
                arch_step: Callable[[Batch, Batch], None]) -> Iterator[Batch]:
    """The weight batches, with an α step on the next architecture batch before each is handed out.

    Fed to :func:`archgraph.train._run`, which does the weight forward, step and bookkeeping:
    the α step happens before the weight step sees the batch (DARTS Alg. 1).
    """
    for weight_batch in weight_loader:
        arch_step(next(arch_batches), weight_batch)
        yield weight_batch


def _forever(loader: DataLoader) -> Iterator[Batch]:
    """The loader's batches, pass after pass (each pass reshuffled by its generator)."""
    while True:
        yield from loader


def _linear(start: float, end: float, epoch: int, epochs: int) -> float:
    f = 0.0 if epochs == 1 else epoch / (epochs - 1)
    return (1.0 - f) * start + f * end  # exactly start and end at the ends


def _rows(module: nn.Module) -> list[Choice]:
    """The Choices of ``module`` in module order, one per architecture parameter (shared ``alpha`` once)."""
    rows: dict[int, Choice] = {}
    for choice in choices(module):
        rows.setdefault(id(choice.alpha), choice)
    return list(rows.values())


def _probabilities(rows: Iterable[Choice]) -> list[list[float]]:
    with torch.no_grad():
        return [choice.probabilities().detach().cpu().tolist() for choice in rows]


def _check_settings(model, weight_data, arch_data, epochs, batch_size, grad_clip, regularizer,
                    temperature, arch_warmup) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int of at least 1, got {epochs!r}")
    if isinstance(arch_warmup, bool) or not isinstance(arch_warmup, int) or not 0 <= arch_warmup < epochs:
        raise ValueError(f"arch_warmup is the number of weight-only epochs before α learns, an int in "
                         f"[0, epochs - 1] = [0, {epochs - 1}]; got {arch_warmup!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not choices(model):
        raise ValueError(
            f"the model ({type(model).__name__}) contains no archgraph.relax.Choice, so it has no architecture "
            "parameters to search; build it from Choices (e.g. a hyper-architecture), or train a fixed "
            "architecture with archgraph.train.train"
        )
    for name, data in (("weight_data", weight_data), ("arch_data", arch_data)):
        if len(data) == 0:
            raise ShapeError(f"{name} is empty; give it at least one (x, y) sample (archgraph.data.fade_split "
                             "makes both parts from one dataset)")
    if grad_clip is not None and grad_clip <= 0:
        raise ValueError(f"grad_clip must be positive (or None for no clipping), got {grad_clip}")
    if regularizer is not None and not callable(regularizer):
        raise TypeError(f"regularizer must be a callable (model, epoch) -> Tensor, got {type(regularizer).__name__}")
    if temperature is not None:
        if not isinstance(temperature, (tuple, list)) or len(temperature) != 2 or not all(t > 0 for t in temperature):
            raise ValueError(f"temperature is (start, end), two positive Gumbel temperatures; got {temperature!r}")
        if not any(isinstance(c.relaxation, Gumbel) for c in choices(model)):
            raise ValueError(
                "temperature anneals Gumbel relaxations, but none of the model's Choices uses one; "
                "build the Choices with Gumbel(...) or leave temperature=None"
            )
