"""Per-epoch reports of a trial in training: a diverged trial fails, a poor one may be pruned.

The runner wraps its objective in a :class:`Reported` that hands the objective a
:class:`Reporter` as ``report=`` (an objective takes it if it has a ``report`` parameter, as
:class:`~archgraph.evaluate.TrialEvaluator` has). The objective calls ``report(row)`` after
every epoch with the epoch's history row (``epoch`` counted over the trial's whole training,
``train_loss``, ``val_accuracy``, ...). The reporter

* fails the trial at once when a loss of the row (``loss`` or a ``*_loss`` entry) is NaN or
  infinite, raising :class:`DivergedError`, instead of training a diverged model to its budget;
* asks the run's pruner (:mod:`archgraph.search.prune`) whether the trial is worth finishing,
  and raises :class:`TrialPruned` when it is not; :class:`Reported` turns that into a
  :attr:`~archgraph.trial.TrialState.PRUNED` result holding the rows reported so far.

The reporter travels with the trial to whatever trains it (this process, a pool worker, a Ray
task), carrying the pruner and the learning curves of the trials that had completed when the
trial was asked. So the decision needs no message back to the runner, and it is the same
whichever evaluator trains the trial and however fast its neighbours are: a resumed run prunes
as the uninterrupted one did. The reported rows reach the runner in the trial's result (its
curve); the runner also checks the final result's losses, for objectives that do not report.

Examples
--------
>>> report = Reporter(trial_id=3, budget=4)
>>> report({"epoch": 0, "train_loss": 0.7, "val_accuracy": 0.5})
>>> report({"epoch": 1, "train_loss": float("nan"), "val_accuracy": 0.1})
Traceback (most recent call last):
...
archgraph.report.DivergedError: the train_loss became nan in epoch 1; lower the learning rate
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import ArchGraphError
from .trial import Result, Trial, TrialState

__all__ = ["DivergedError", "Pruner", "Reported", "Reporter", "TrialPruned", "non_finite_loss", "takes_report"]


class DivergedError(ArchGraphError, FloatingPointError):
    """A trial's loss became NaN or infinite: its training diverged."""


class TrialPruned(Exception):
    """Raised by a :class:`Reporter` to stop its trial; ``result`` is the pruned result.

    Not an error: :class:`Reported` catches it and returns ``result``. An objective must let
    it through (not catch it with ``except Exception``).
    """

    def __init__(self, result: Result):
        super().__init__(result)
        self.result = result


class Pruner(Protocol):
    """What a :class:`Reporter` asks: whether a trial whose best ``metric`` (higher is better)
    so far is ``best`` at ``epoch`` is to stop, given the per-epoch values of ``metric`` of the
    trials completed before it was asked (``reference``)."""

    metric: str

    def prune(self, epoch: int, best: float, reference: Sequence[Sequence[float]]) -> bool: ...


def non_finite_loss(row: Mapping[str, Any]) -> str | None:
    """The first loss of ``row`` (``loss`` or a key ending in ``_loss``) that is NaN or infinite, if any.

    >>> non_finite_loss({"train_loss": 0.5, "val_loss": float("inf")}), non_finite_loss({"arch_loss": None})
    ('val_loss', None)
    """
    for key, value in row.items():
        if (key == "loss" or key.endswith("_loss")) and isinstance(value, (int, float)) and not math.isfinite(value):
            return key
    return None


class Reporter:
    """Takes a trial's per-epoch rows (see the module docstring); picklable.

    Parameters
    ----------
    trial_id, budget:
        The trial's id and budget: its last epoch (``budget - 1``) is never pruned, the
        training being done by then.
    pruner:
        A :class:`Pruner`, or ``None`` (no pruning).
    reference:
        For each trial completed before this one was asked, its ``pruner.metric`` by epoch.
    """

    def __init__(self, trial_id: int, budget: int, pruner: Pruner | None = None,
                 reference: Sequence[Sequence[float]] = ()):
        self.trial_id, self.budget, self.pruner = trial_id, budget, pruner
        self.reference = tuple(tuple(curve) for curve in reference)
        self.rows: list[dict[str, Any]] = []

    def __call__(self, row: Mapping[str, Any]) -> None:
        """Take the row of one epoch; raises :class:`DivergedError` or :class:`TrialPruned`."""
        row = dict(row)
        self.rows.append(row)
        epoch = row.get("epoch", len(self.rows) - 1)
        if (loss := non_finite_loss(row)) is not None:
            raise DivergedError(f"the {loss} became {row[loss]} in epoch {epoch}; lower the learning rate")
        if self.pruner is None or epoch + 1 >= self.budget or row.get(self.pruner.metric) is None:
            return
        best = max(r[self.pruner.metric] for r in self.rows if r.get(self.pruner.metric) is not None)
        if self.pruner.prune(epoch, best, self.reference):
            last = {k: v for k, v in row.items() if k.startswith("val_") and v is not None}
            raise TrialPruned(Result(self.trial_id, {**last, "epochs": epoch + 1}, tuple(self.rows),
                                     state=TrialState.PRUNED))

    def __repr__(self) -> str:
        return f"Reporter(trial_id={self.trial_id}, budget={self.budget}, pruner={self.pruner!r})"


@dataclass(frozen=True)
class Reported:
    """``objective(trial, report=reporter)``, a pruned trial's result returned rather than raised; picklable.

    >>> def objective(trial, report):
    ...     for epoch in range(trial.budget):
    ...         report({"epoch": epoch, "val_accuracy": 0.1})
    ...     return Result(trial.id, {"val_accuracy": 0.1})
    >>> class Always:
    ...     metric = "val_accuracy"
    ...     def prune(self, epoch, best, reference): return True
    >>> from archgraph import ArchGraph
    >>> trial = Trial(id=0, arch=ArchGraph([(0, 1)]), budget=5, seed=0)
    >>> result = Reported(objective, Reporter(0, 5, Always()))(trial)
    >>> result.state.value, result.metrics
    ('pruned', {'val_accuracy': 0.1, 'epochs': 1})
    """

    objective: Callable[..., Result]
    reporter: Reporter

    def __call__(self, trial: Trial) -> Result:
        start = time.perf_counter()
        try:
            return self.objective(trial, report=self.reporter)
        except TrialPruned as stop:
            return dataclasses.replace(stop.result, seconds=time.perf_counter() - start)


def takes_report(objective: Callable[..., Result]) -> bool:
    """Whether ``objective`` has a ``report`` parameter (or ``**kwargs``) to be handed a :class:`Reporter`.

    >>> takes_report(lambda trial: None), takes_report(lambda trial, report=None: None)
    (False, True)
    """
    try:
        parameters = inspect.signature(objective).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return any(p.name == "report" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
