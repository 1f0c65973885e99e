"""Robust DARTS from the curvature of the validation loss in α (Zela et al. 2020, RobustDARTS §4.3–5.2).

DARTS's architectures collapse (to skip-connections, parameter-free ops) as the dominant
eigenvalue λ_max of ``∇²_α L_valid`` grows (RobustDARTS §4.2, Fig. 3). Three remedies, for
any module with :class:`~archgraph.relax.Choice` objects trained by
:func:`~archgraph.oneshot.bilevel.train_bilevel`:

* :class:`EigenvalueTracker`, an ``on_epoch`` callback recording λ_max
  (:func:`~archgraph.oneshot.hessian.arch_eigenvalue`) on a random validation batch;
* :class:`DartsES` (§4.3): stop when λ_max's local average has grown too fast and keep
  the architecture of ``k`` epochs before;
* :func:`darts_ada` (§5.2): instead of stopping, roll back to that epoch and continue with
  ``η`` times the weights' L2 factor;
* :func:`rdarts` (§5.1): one search per L2 factor, each discretised and briefly retrained
  by the caller, the best kept: R-DARTS(L2);
* :func:`rdarts_dp` (§5.1): the same over ScheduledDropPath probabilities: R-DARTS(DP).

:func:`chain_callbacks` runs several ``on_epoch`` callbacks as one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from ..errors import SettingError
from ..relax import arch_parameters
from .bilevel import BilevelResult, train_bilevel
from .hessian import arch_eigenvalue
from .regularize import Cutout

__all__ = ["DROP_PATH_PROBS", "L2_FACTORS", "DartsAdaResult", "DartsES", "EigenvalueTracker", "RDartsCandidate",
           "RDartsResult", "chain_callbacks", "darts_ada", "rdarts", "rdarts_dp"]

#: ``on_epoch(row, model)``: called after each epoch; ``True`` stops training
Callback = Callable[[dict, nn.Module], bool | None]

#: the L2 factors R-DARTS(L2) searches with: 3i·1e-4, i ∈ {1, 3, 9, 27, 81} (RobustDARTS §5.1)
L2_FACTORS = (3e-4, 9e-4, 2.7e-3, 8.1e-3, 2.43e-2)

#: the largest ScheduledDropPath probabilities R-DARTS(DP) searches with (RobustDARTS §5.1; its
#: reference code's grid, ``scripts/start_search.sh``: 0 to 0.6 in steps of 0.2)
DROP_PATH_PROBS = (0.0, 0.2, 0.4, 0.6)


def chain_callbacks(*callbacks: Callback | None) -> Callback:
    """One ``on_epoch`` callback calling ``callbacks`` in order (all of them, ``None`` skipped); any ``True`` stops.

    >>> log = []
    >>> on_epoch = chain_callbacks(lambda row, model: log.append(row["epoch"]), None,
    ...                            lambda row, model: row["epoch"] == 1)
    >>> on_epoch({"epoch": 0}, None), on_epoch({"epoch": 1}, None), log
    (False, True, [0, 1])
    """
    active = [c for c in callbacks if c is not None]

    def on_epoch(row: dict, model: nn.Module) -> bool:
        stops = [bool(callback(row, model)) for callback in active]  # every callback runs
        return any(stops)

    return on_epoch


class EigenvalueTracker:
    """``on_epoch`` callback: λ_max of ``∇²_α L_valid`` on a random validation batch (RobustDARTS §4.2).

    Every ``every`` epochs (those with ``epoch % every == 0``) it draws ``batch_size``
    samples of ``val_data`` without replacement, computes
    :func:`~archgraph.oneshot.hessian.arch_eigenvalue`, appends ``(epoch, λ_max)`` to
    :attr:`values` and writes it into the history row as ``row["eigenvalue"]`` (``None``
    in the other epochs). It never stops training, and leaves the model, its batch-norm
    statistics and torch's RNG as they were, so tracking does not change the search.

    ``val_data`` is the split α learns from (DARTS's "validation" data; the reference code
    takes a batch of it). The reference code uses the epoch's last α batch; a random batch
    from ``seed`` (the paper's wording) makes the sequence reproducible on its own.

    Parameters
    ----------
    val_data:
        Map-style dataset of ``(x, y)``.
    every, batch_size:
        Epochs between two evaluations; samples per batch (the reference: 64).
    seed:
        Seeds the batch draws.
    weight_decay:
        Passed to :func:`~archgraph.oneshot.hessian.arch_eigenvalue` (the reference code's
        α weight decay 1e-3 is included in its λ_max; the paper's λ_max has none).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from archgraph.oneshot.bilevel import train_bilevel
    >>> from archgraph.relax import Choice
    >>> _ = torch.manual_seed(0)
    >>> data = TensorDataset(torch.randn(64, 4), torch.randint(0, 3, (64,)))
    >>> model = nn.Sequential(nn.Linear(4, 3), Choice([nn.Tanh(), nn.Identity()]))
    >>> tracker = EigenvalueTracker(data, batch_size=32)
    >>> result = train_bilevel(model, data, data, epochs=2, on_epoch=tracker, progress=False)
    >>> [epoch for epoch, _ in tracker.values], result.history[1]["eigenvalue"] == tracker.values[1][1]
    ([0, 1], True)
    """

    def __init__(self, val_data: Dataset, *, every: int = 1, batch_size: int = 64, seed: int = 0,
                 weight_decay: float = 0.0):
        if len(val_data) == 0:
            raise SettingError("val_data is empty; give it the (x, y) samples α learns from")
        if every < 1 or batch_size < 1:
            raise SettingError(f"every and batch_size must be at least 1, got every={every}, batch_size={batch_size}")
        self.val_data, self.every, self.batch_size, self.weight_decay = val_data, every, batch_size, weight_decay
        self.generator = torch.Generator().manual_seed(seed)
        #: ``(epoch, λ_max)`` of every evaluation, in order
        self.values: list[tuple[int, float]] = []

    def __call__(self, row: dict, model: nn.Module) -> bool:
        eigenvalue = None
        if row["epoch"] % self.every == 0:
            picked = torch.randperm(len(self.val_data), generator=self.generator)[:self.batch_size]
            batch = default_collate([self.val_data[i] for i in picked.tolist()])
            eigenvalue = arch_eigenvalue(model, batch, weight_decay=self.weight_decay)
            self.values.append((row["epoch"], eigenvalue))
        row["eigenvalue"] = eigenvalue
        return False

    def __repr__(self) -> str:
        return f"EigenvalueTracker(every={self.every}, batch_size={self.batch_size}, values={len(self.values)})"


class DartsES:
    """DARTS-ES (RobustDARTS §4.3): stop when the smoothed λ_max has grown by more than ``1 / ratio``.

    An ``on_epoch`` callback that first calls ``tracker`` (an :class:`EigenvalueTracker`, or
    any callback with a list ``values`` of ``(epoch, λ_max)``), then, with ``λ̄`` the mean of
    ``window`` = k consecutive tracked values, stops at epoch ``i`` when
    ``λ̄(i − k) / λ̄(i) < ratio``, written ``λ̄(i − k) < ratio · λ̄(i)`` (the same for a
    positive ``λ̄(i)``, never dividing by zero). The architecture to keep is that of
    epoch ``i − k``, :attr:`stop_epoch`: :meth:`alphas` and :meth:`state` return it and
    :meth:`restore` loads it into the model.

    ``λ̄(i)`` is the trailing mean of the ``k`` values up to epoch ``i`` (the paper: "over
    k = 5 epochs"), so the rule is checked once ``2k`` values exist. With ``every > 1``,
    "k epochs" reads "k evaluations". The reference code (``EVLocalAvg.early_stop`` in
    automl/RobustDARTS ``src/utils.py``) differs in its details: a centred window (the
    average of epoch ``j`` known at ``j + 2``, shorter windows at the start), averages 4
    evaluations apart, the test ``current / previous > 1.3`` (≈ 1 / 0.75), a returned epoch of
    at least 10, and the genotype of epoch ``i − 6`` (one evaluation per epoch). We follow the paper.

    α is remembered for every epoch, the model's ``state_dict`` for every evaluated one (on
    the CPU: one copy of the model per epoch), so that DARTS-ADA can roll back to any of them.

    Parameters
    ----------
    tracker:
        Computes and records λ_max.
    window:
        k, the length of the average and the look-back (paper: 5).
    ratio:
        The threshold on ``λ̄(i − k) / λ̄(i)`` (paper: 0.75).
    min_epochs:
        Epochs to run before the rule is checked (``i + 1 ≥ min_epochs``); ``None``: ``2k``.
        ``min_epochs=16`` at k = 5 keeps the returned epoch at 10 or later, as the reference's
        ``es_start_epoch=10``.

    Examples
    --------
    >>> from torch import nn
    >>> from archgraph.relax import Choice
    >>> class Scripted:                          # a tracker replaying λ_max = 1, 1, 1, 1, 1.2, 4
    ...     def __init__(self): self.values = []
    ...     def __call__(self, row, model): self.values.append((row["epoch"], [1, 1, 1, 1, 1.2, 4][row["epoch"]]))
    >>> es = DartsES(Scripted(), window=2)
    >>> model = Choice([nn.Identity(), nn.Tanh()])
    >>> [es({"epoch": e}, model) for e in range(6)]     # λ̄ = ., 1, 1, 1, 1.1, 2.6: λ̄(3) < 0.75 · λ̄(5)
    [False, False, False, False, False, True]
    >>> es.stop_epoch, len(es.alphas()), sorted(es.state())
    (3, 1, ['alpha'])
    """

    def __init__(self, tracker: Callback, *, window: int = 5, ratio: float = 0.75, min_epochs: int | None = None):
        if not isinstance(getattr(tracker, "values", None), list) or not callable(tracker):
            raise TypeError(f"tracker must be an on_epoch callback with a list `values` of (epoch, λ_max), such "
                            f"as EigenvalueTracker; got {type(tracker).__name__}")
        if window < 1 or not ratio > 0:
            raise SettingError(f"window must be at least 1 and ratio positive (the paper: 5 and 0.75), got "
                             f"window={window}, ratio={ratio}")
        self.tracker, self.window, self.ratio = tracker, window, ratio
        self.min_epochs = 2 * window if min_epochs is None else min_epochs
        #: the epoch whose architecture to keep (``i − k``) once the rule has fired, else ``None``
        self.stop_epoch: int | None = None
        self._alphas: dict[int, list[torch.Tensor]] = {}
        self._states: dict[int, dict[str, torch.Tensor]] = {}

    def __call__(self, row: dict, model: nn.Module) -> bool:
        self.tracker(row, model)
        epoch, values = row["epoch"], self.tracker.values
        self._alphas[epoch] = [alpha.detach().cpu().clone() for alpha in arch_parameters(model)]
        if not values or values[-1][0] != epoch:  # not an evaluated epoch
            return False
        self._states[epoch] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if len(values) < 2 * self.window or epoch + 1 < self.min_epochs:
            return False
        before = _mean(values[-2 * self.window:-self.window])
        now = _mean(values[-self.window:])
        if before < self.ratio * now:
            self.stop_epoch = values[-self.window - 1][0]
            return True
        return False

    def alphas(self, epoch: int | None = None) -> list[torch.Tensor]:
        """The architecture parameters after ``epoch`` (default :attr:`stop_epoch`), in ``arch_parameters`` order."""
        return self._alphas[self._epoch(epoch, self._alphas)]

    def state(self, epoch: int | None = None) -> dict[str, torch.Tensor]:
        """The model's ``state_dict`` after ``epoch`` (default :attr:`stop_epoch`), on the CPU."""
        return self._states[self._epoch(epoch, self._states)]

    def restore(self, model: nn.Module, epoch: int | None = None) -> None:
        """Load the state of ``epoch`` (default :attr:`stop_epoch`) into ``model``: weights and α."""
        model.load_state_dict(self.state(epoch))

    def roll_back(self, model: nn.Module) -> int:
        """Restore the model to :attr:`stop_epoch`, forget every later epoch (λ_max too) and re-arm; returns the epoch.

        What DARTS-ADA does before it continues with more regularisation (§5.2); the λ_max
        values up to the stop epoch stay, as in the reference code.
        """
        epoch = self._epoch(None, self._states)
        self.restore(model)
        self.tracker.values[:] = [v for v in self.tracker.values if v[0] <= epoch]
        for snapshots in (self._alphas, self._states):
            for later in [e for e in snapshots if e > epoch]:
                del snapshots[later]
        self.stop_epoch = None
        return epoch

    def _epoch(self, epoch: int | None, snapshots: dict) -> int:
        if epoch is None:
            if self.stop_epoch is None:
                raise SettingError("DARTS-ES has not stopped the search, so there is no stop epoch to return to; "
                                 "pass an epoch, or use the model as it is (the last epoch)")
            epoch = self.stop_epoch
        if epoch not in snapshots:
            raise KeyError(f"no snapshot of epoch {epoch}; kept: {sorted(snapshots)} (states of the epochs the "
                           "tracker evaluated, none after a rollback's epoch)")
        return epoch

    def __repr__(self) -> str:
        return (f"DartsES(window={self.window}, ratio={self.ratio}, min_epochs={self.min_epochs}, "
                f"stop_epoch={self.stop_epoch})")


@dataclass
class DartsAdaResult:
    """What :func:`darts_ada` did.

    Attributes
    ----------
    history:
        Every epoch run, in order: :func:`train_bilevel`'s rows with ``weight_decay`` (the L2
        factor of ω in that epoch) added. After a rollback to epoch ``s`` the epochs run again
        from ``s + 1``.
    rollbacks:
        The epochs rolled back to, in order (the first is DARTS-ES's answer).
    weight_decay:
        The L2 factor at the end.
    """

    history: list[dict]
    rollbacks: list[int]
    weight_decay: float


def darts_ada(model: nn.Module, weight_data: Dataset, arch_data: Dataset, *, epochs: int, weight_decay: float = 3e-4,
              eta: float = 10.0, max_weight_decay: float = 3e-2, early_stop: DartsES | None = None,
              on_epoch: Callback | None = None, **train_kwargs) -> DartsAdaResult:
    """DARTS-ADA (RobustDARTS §5.2): when DARTS-ES fires, roll back and regularise ω more.

    Trains with :func:`train_bilevel` and ``early_stop`` watching. When it fires at epoch
    ``i``, the model (weights and α) goes back to its state after epoch ``i − k``, the L2
    factor of the weights becomes ``η · weight_decay``, and training continues from epoch
    ``i − k + 1`` to ``epochs`` (``train_bilevel(..., start_epoch=i − k + 1)``: schedules
    keep counting absolute epochs). Once ``η · weight_decay`` would exceed
    ``max_weight_decay``, λ_max is still tracked but no longer acted on (defaults: 3e-4 →
    3e-3 → 3e-2, at most two rollbacks). The model ends with the last epoch's weights.

    The optimisers start afresh after a rollback (Adam's moments are not part of the
    model's state); the reference code restores those saved at the stop epoch.

    Parameters
    ----------
    model, weight_data, arch_data, epochs:
        As for :func:`train_bilevel`.
    weight_decay, eta, max_weight_decay:
        R, η and R_max (paper: 3e-4, 10, 3e-2; the reference code's defaults are η = 3 and
        R_max = 2.43e-2).
    early_stop:
        The stopping rule; ``None``: ``DartsES(EigenvalueTracker(arch_data))`` (paper settings).
    on_epoch:
        Called after each epoch besides ``early_stop`` (:func:`chain_callbacks`); ``True``
        ends the search without a rollback.
    **train_kwargs:
        Passed to :func:`train_bilevel` (``seed``, ``lr``, ``arch_lr``, ...).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from archgraph.relax import Choice
    >>> _ = torch.manual_seed(0)
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> model = nn.Sequential(nn.Linear(4, 3), Choice([nn.Tanh(), nn.Identity()]))
    >>> es = DartsES(EigenvalueTracker(data), window=1, ratio=100.0)    # fires as soon as it can
    >>> result = darts_ada(model, data, data, epochs=4, early_stop=es, progress=False)
    >>> result.rollbacks, round(result.weight_decay, 9), [row["epoch"] for row in result.history]
    ([0, 0], 0.03, [0, 1, 1, 1, 2, 3])
    """
    if not (weight_decay > 0 and eta > 1 and max_weight_decay >= weight_decay):
        raise SettingError(f"DARTS-ADA needs 0 < weight_decay <= max_weight_decay and eta > 1 (the paper: 3e-4, 3e-2, "
                         f"10); got weight_decay={weight_decay}, max_weight_decay={max_weight_decay}, eta={eta}")
    stopper = early_stop if early_stop is not None else DartsES(EigenvalueTracker(arch_data))
    history: list[dict] = []
    rollbacks: list[int] = []
    start = 0
    while True:
        adapt = weight_decay * eta <= max_weight_decay * (1 + 1e-9)  # 3e-4 · 10 · 10 is 3e-2 up to rounding
        watch = stopper if adapt else stopper.tracker
        run = train_bilevel(model, weight_data, arch_data, epochs=epochs, start_epoch=start, weight_decay=weight_decay,
                            on_epoch=chain_callbacks(watch, on_epoch), **train_kwargs)
        history += [{**row, "weight_decay": weight_decay} for row in run.history]
        if not adapt or stopper.stop_epoch is None:
            return DartsAdaResult(history, rollbacks, weight_decay)
        rollbacks.append(stopper.roll_back(model))
        start = rollbacks[-1] + 1
        weight_decay *= eta


@dataclass
class RDartsCandidate:
    """One search of :func:`rdarts` or :func:`rdarts_dp`: its L2 factor and largest drop-path
    probability (``0.0``: none), the architecture ``select`` chose, its ``retrain`` score."""

    weight_decay: float
    architecture: Any
    score: float
    search: BilevelResult
    drop_path_prob: float = 0.0


@dataclass
class RDartsResult:
    """All searches of :func:`rdarts` (:func:`rdarts_dp`), in the order of ``weight_decays`` (``drop_path_probs``)."""

    candidates: list[RDartsCandidate]

    @property
    def best(self) -> RDartsCandidate:
        """The candidate with the highest score (NaN scores last; ties: the first)."""
        return max(self.candidates, key=lambda c: (not math.isnan(c.score), c.score))


def rdarts(make_model: Callable[[], nn.Module], weight_data: Dataset, arch_data: Dataset, *,
           select: Callable[[nn.Module], Any], retrain: Callable[[Any], float],
           weight_decays: Iterable[float] = L2_FACTORS, **train_kwargs) -> RDartsResult:
    """R-DARTS(L2) (RobustDARTS §5.1): search once per L2 factor, keep the architecture that retrains best.

    For each factor: a fresh ``make_model()``, :func:`train_bilevel` with that
    ``weight_decay`` on the weights, ``select(model)`` to discretise it, and
    ``retrain(architecture)`` (a short training, the caller's) for a score, higher is
    better (e.g. a validation accuracy). R-DARTS(DP), the same loop over drop-path
    probabilities, is :func:`rdarts_dp`.

    Parameters
    ----------
    make_model:
        Builds a fresh supernet (with Choices) for each search.
    weight_data, arch_data, **train_kwargs:
        As for :func:`train_bilevel` (``epochs`` is required).
    select:
        The searched model → an architecture (e.g. the strongest candidate of each Choice).
    retrain:
        An architecture → its score; higher is better.
    weight_decays:
        The L2 factors (paper: 3i·1e-4, i ∈ {1, 3, 9, 27, 81}, :data:`L2_FACTORS`).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from archgraph.relax import Choice
    >>> _ = torch.manual_seed(0)
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> def make_model():
    ...     return nn.Sequential(nn.Linear(4, 3), Choice([nn.Tanh(), nn.Identity()]))
    >>> result = rdarts(make_model, data, data, select=lambda m: int(m[1].alpha.argmax()),
    ...                 retrain=lambda arch: 1.0 - arch, weight_decays=(1e-4, 1e-2), epochs=1, progress=False)
    >>> [c.weight_decay for c in result.candidates], result.best.score == max(c.score for c in result.candidates)
    ([0.0001, 0.01], True)
    """
    weight_decays = check_sweep("weight_decays", weight_decays, "an L2 factor, a finite number >= 0", "L2_FACTORS",
                                lambda v: 0 <= v < math.inf)
    candidates = []
    for weight_decay in weight_decays:
        model = make_model()
        search = train_bilevel(model, weight_data, arch_data, weight_decay=weight_decay, **train_kwargs)
        architecture = select(model)
        candidates.append(RDartsCandidate(weight_decay, architecture, float(retrain(architecture)), search))
    return RDartsResult(candidates)


def rdarts_dp(make_model: Callable[[], nn.Module], weight_data: Dataset, arch_data: Dataset, *,
              select: Callable[[nn.Module], Any], retrain: Callable[[Any], float],
              drop_path_probs: Iterable[float] = DROP_PATH_PROBS, weight_decay: float = 3e-4,
              cutout: Cutout | None = None, **train_kwargs) -> RDartsResult:
    """R-DARTS(DP) (RobustDARTS §5.1): search once per drop-path probability, keep the architecture that retrains best.

    For each probability ``p``: a fresh ``make_model()`` (which must have a
    ``drop_path_prob`` attribute its training forward applies, as the DARTS supernet does),
    :func:`train_bilevel` with ``drop_path_prob=p`` — ScheduledDropPath: the model's
    probability rises linearly from 0 in the first epoch to ``p`` in the last,
    ``p · e / (epochs − 1)`` in epoch ``e`` (RobustDARTS' reference code,
    ``src/search/train_search.py``) — then ``select(model)`` and ``retrain(architecture)`` as
    in :func:`rdarts`. The L2 factor stays ``weight_decay`` (the reference's DP runs: 3e-4).

    ``cutout`` follows the reference code's DP runs (``scripts/DARTS_search.sh`` passes
    ``--cutout``; ``Helper`` turns it off when the probability is 0): the searches with
    ``p > 0`` cut out the weight batches with a probability rising on the same schedule
    (:class:`~archgraph.oneshot.regularize.Cutout`), the one with ``p = 0`` does not. ``None``:
    no cutout in any search.

    Parameters
    ----------
    make_model, weight_data, arch_data, select, retrain, **train_kwargs:
        As for :func:`rdarts` (``epochs`` is required).
    drop_path_probs:
        The largest drop-path probabilities, in ``[0, 1)`` (paper: 0, 0.2, 0.4, 0.6,
        :data:`DROP_PATH_PROBS`).
    weight_decay:
        The weights' L2 factor in every search.
    cutout:
        Cutout of the searches with ``p > 0`` (RobustDARTS: length 16 on 32 × 32 images,
        probability 1 in the last epoch), or ``None``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from archgraph.relax import Choice
    >>> _ = torch.manual_seed(0)
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> class Net(nn.Sequential):
    ...     drop_path_prob = 0.0                  # a real supernet applies it in its forward
    >>> def make_model():
    ...     return Net(nn.Linear(4, 3), Choice([nn.Tanh(), nn.Identity()]))
    >>> result = rdarts_dp(make_model, data, data, select=lambda m: int(m[1].alpha.argmax()),
    ...                    retrain=lambda arch: 1.0 - arch, epochs=3, progress=False)
    >>> [c.drop_path_prob for c in result.candidates], [row["drop_path_prob"] for row in result.candidates[3].search.history]
    ([0.0, 0.2, 0.4, 0.6], [0.0, 0.3, 0.6])
    """
    drop_path_probs = check_sweep("drop_path_probs", drop_path_probs, "a drop-path probability in [0, 1)",
                                  "DROP_PATH_PROBS", lambda v: 0 <= v < 1)
    if cutout is not None and not isinstance(cutout, Cutout):
        raise TypeError(f"cutout must be an archgraph.oneshot.regularize.Cutout or None, got {type(cutout).__name__}")
    for key in ("drop_path_prob", "weight_decay"):
        if key in train_kwargs:
            raise TypeError(f"rdarts_dp sets {key} itself; pass drop_path_probs=... and weight_decay=... instead")
    candidates = []
    for p in drop_path_probs:
        model = make_model()
        search = train_bilevel(model, weight_data, arch_data, drop_path_prob=p, weight_decay=weight_decay,
                               cutout=cutout if p > 0 else None, **train_kwargs)
        architecture = select(model)
        candidates.append(RDartsCandidate(weight_decay, architecture, float(retrain(architecture)), search,
                                          drop_path_prob=p))
    return RDartsResult(candidates)


def check_sweep(name: str, values: Iterable[float], what: str, default: str,
                valid: Callable[[float], bool]) -> tuple[float, ...]:
    """``values`` as a tuple of floats, refused when empty, repeated or any not ``valid`` (a
    ``ValueError``), or when not a list of numbers (a ``TypeError``).

    >>> check_sweep("drop_path_probs", [0, 0.2], "a probability", "DROP_PATH_PROBS", lambda v: 0 <= v < 1)
    (0.0, 0.2)
    >>> check_sweep("drop_path_probs", [0.2, 1.5], "a probability", "DROP_PATH_PROBS", lambda v: 0 <= v < 1)
    Traceback (most recent call last):
    ...
    archgraph.errors.SettingError: drop_path_probs[1] is 1.5; each must be a probability (default: DROP_PATH_PROBS)
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of numbers, got {values!r} (default: {default})")
    values = tuple(values)
    if not values:
        raise SettingError(f"{name} is empty; give at least one value (default: {default})")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not valid(float(v)):
            raise SettingError(f"{name}[{i}] is {v!r}; each must be {what} (default: {default})")
    if len(set(values)) < len(values):
        raise SettingError(f"{name} repeats a value ({', '.join(map(str, values))}); each search needs its own")
    return tuple(float(v) for v in values)


def _mean(values: list[tuple[int, float]]) -> float:
    return sum(v for _, v in values) / len(values)
