"""Pruners: stop a trial early when its learning curve says it will not be among the best.

A run's pruner is asked after every epoch of a trial, by the trial's
:class:`~archgraph.report.Reporter` (which also says what it is given): the trial's best value of
``metric`` so far, the epoch, and the per-epoch values of the trials that had *completed* when
the trial was asked. A pruned trial is recorded as :attr:`~archgraph.trial.TrialState.PRUNED`
with the epochs it trained; each strategy says in its docstring what it does with one. The
trial's last epoch is never pruned (its training is done by then), and a runner without a pruner
prunes nothing, so runs without one are unchanged.

:data:`PRUNERS` names the pruners a :class:`~archgraph.search.session.SearchConfig` (and the
command line's ``--pruner``) may choose.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import SettingError
from ..trial import OBJECTIVE

__all__ = ["MedianPruner", "PRUNERS"]


@dataclass(frozen=True)
class MedianPruner:
    """The median stopping rule: stop a trial whose best ``metric`` so far is below the median
    of the completed trials' ``metric`` at the same epoch (Golovin et al. 2017, "Google Vizier",
    §3.2.2, which takes the completed trials' running averages; we take their values at the
    epoch, as Optuna's ``MedianPruner``).

    Parameters
    ----------
    warmup_epochs:
        Epochs every trial trains before it may be pruned (a curve's first epochs say little).
    min_trials:
        Completed trials that must have reached an epoch before a trial is judged there.
    metric:
        What is compared, higher is better (default: the objective, ``val_accuracy``).

    Examples
    --------
    >>> pruner = MedianPruner(warmup_epochs=1, min_trials=3)
    >>> done = [(0.2, 0.5, 0.6), (0.3, 0.6, 0.7), (0.1, 0.4, 0.5)]
    >>> pruner.prune(1, best=0.45, reference=done), pruner.prune(1, best=0.55, reference=done)
    (True, False)
    >>> pruner.prune(0, best=0.0, reference=done), pruner.prune(1, best=0.0, reference=done[:2])
    (False, False)
    """

    warmup_epochs: int = 1
    min_trials: int = 5
    metric: str = OBJECTIVE

    def __post_init__(self):
        if self.warmup_epochs < 0 or self.min_trials < 1:
            raise SettingError(f"MedianPruner needs warmup_epochs >= 0 and min_trials >= 1, got "
                             f"warmup_epochs={self.warmup_epochs}, min_trials={self.min_trials}")

    def prune(self, epoch: int, best: float, reference: Sequence[Sequence[float]]) -> bool:
        """Whether a trial whose best ``metric`` is ``best`` after ``epoch`` (from 0) is to stop."""
        if epoch < self.warmup_epochs:
            return False
        values = [curve[epoch] for curve in reference if len(curve) > epoch]
        return len(values) >= self.min_trials and best < statistics.median(values)


#: pruner name → class, for the config's ``pruner`` and ``pruner_params``
PRUNERS = {"median": MedianPruner}
