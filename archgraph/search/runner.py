"""The Runner: drives an ask/tell strategy with an evaluator, recording everything in a store.

The runner gives every trial its id and training seed (:class:`~archgraph.search.base.TrialNumbers`):
strategies propose trials without them. Every ask and every tell is written to the store before the run goes on, so a killed run
loses at most the trials that were being trained. ``Runner.run`` first *replays* the
store's event log into the (fresh) strategy — the recorded asks must come out again, the
recorded results are told again in the recorded order — then resubmits the trials that
were asked but not told, and continues. Strategies are deterministic in their seed and
the results they are told, and trials train with their own seeds, so a resumed run ends in
the same state as an uninterrupted one.

Results are told in the order trials were asked (the runner waits for the oldest trial in
flight), which keeps runs identical whichever evaluator runs them with as many workers. With
another number of workers other trials are in flight when the strategy is asked, and a strategy
whose asks depend on what it has been told by then (evolution's parents, the controller's shared
weights) asks other trials, unless it is given a ``lag`` (:class:`~archgraph.search.base.Lagged`):
its ``ask`` then returns ``None`` until the results it may see are told, and the runner waits for
the oldest trial in flight, as whenever a strategy asks nothing with trials in flight
(tests/test_strategy_conformance.py). The other strategies ask the same trials with any number.

A trial that fails does not stop the search: when the evaluator's future raises a
:class:`~archgraph.evaluate.TrialError` (the objective raised, in this process, a pool worker or
a Ray task), or the result has a NaN or infinite loss (in its metrics or any epoch of its
curve), the trial is recorded as :attr:`~archgraph.trial.TrialState.FAILED` with the error and
traceback, the strategy is told the failed result (each strategy's docstring says what it does
with one), and the search goes on. After ``max_failures`` failures in a row the runner stops
asking, records the trials still in flight, and raises :class:`TooManyFailures`, whose message is
one line. A resumed run does not train failed trials again, unless ``retry_failed``: then each
is trained again (same architecture, budget and seed) and its new result recorded as the trial's
next attempt (:meth:`~archgraph.store.Store.record_retry`). A retry is not told to the strategy,
which moved on from the failure when it was told it, so a later resume replays exactly what the
strategy was told; the run's results and its best trial take the retry's result.

An objective with a ``report`` parameter (as :class:`~archgraph.evaluate.TrialEvaluator`) is
handed a :class:`~archgraph.report.Reporter` for each trial and reports every epoch: a NaN loss
fails the trial at that epoch, and the runner's ``pruner`` (:mod:`archgraph.search.prune`) may
stop it early, recorded as :attr:`~archgraph.trial.TrialState.PRUNED`. The pruner judges a trial
against the trials completed when it was asked (on a resume too), so pruning is as
deterministic as the rest of the run.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from tqdm import tqdm

from ..errors import ArchGraphError, BudgetError, SettingError
from ..evaluate import TrialError
from ..report import Pruner, Reported, Reporter, non_finite_loss, takes_report
from ..tracking import Callback, RunStart, running, trial_told
from ..trial import Result, Trial, TrialState
from .base import Strategy, TrialNumbers

__all__ = ["Budget", "Runner", "ResumeError", "TooManyFailures"]


class ResumeError(ArchGraphError, RuntimeError):
    """A recorded run cannot be replayed into the strategy (it asks for other trials)."""


class TooManyFailures(ArchGraphError, RuntimeError):
    """The runner stopped after ``count`` trials failed in a row; ``last`` is the last failed
    result; the one-line message ends with ``advice`` (what to do)."""

    def __init__(self, count: int, last: Result, advice: str = "fix the cause and resume the run (retry_failed "
                 "trains the failed trials again), or allow more failures in a row with max_failures"):
        lines = (last.error or "").strip().splitlines()
        reason = lines[0] if lines else "an unknown error"  # one line, whatever the error's message
        super().__init__(f"the search stopped after {count} trials failed in a row, the last (trial {last.trial_id}) "
                         f"with {reason}; {advice}")
        self.count, self.last = count, last


@dataclass(frozen=True)
class Budget:
    """When a run stops: after ``trials`` trials asked, ``epochs`` training epochs asked
    (the sum of the trials' budgets, less the epochs their resumed checkpoints had), or
    ``seconds`` of wall-clock time in this ``run`` call; ``None`` means no limit. Failed and
    pruned trials count as asked; retries of failed trials do not."""

    trials: int | None = None
    epochs: int | None = None
    seconds: float | None = None

    def __post_init__(self):
        if self.trials is None and self.epochs is None and self.seconds is None:
            raise BudgetError("a budget needs at least one of trials, epochs or seconds")
        given = {"trials": self.trials, "epochs": self.epochs, "seconds": self.seconds}
        if any(value is not None and not value > 0 for value in given.values()):
            raise BudgetError("a budget's trials, epochs and seconds are positive (or None: no limit), got "
                              + ", ".join(f"{k}={v}" for k, v in given.items() if v is not None))


class Runner:
    """Run ``strategy`` until ``budget`` is spent, training trials with ``objective``
    (a picklable callable ``Trial -> Result``, optionally taking ``report=``) on ``evaluator``
    and recording in ``store``.

    Parameters
    ----------
    seed:
        The run's seed, of which its trials' training seeds derive (:class:`~archgraph.search.base.TrialNumbers`).
    pruner:
        Stops trials early (:mod:`archgraph.search.prune`); ``None``: none is.
    max_failures:
        Stop after this many trials failed in a row (:class:`TooManyFailures`); ``None``: never.
    retry_failed:
        Train again the trials a resumed run holds as failed (see the module docstring).
    callbacks:
        :class:`~archgraph.tracking.Callback` s told of the run's start, each recorded trial
        (its epochs, then its result) and the run's end (:mod:`archgraph.tracking`).

    Examples
    --------
    >>> from archgraph import ArchGraph
    >>> from archgraph.trial import Trial, Result
    >>> from archgraph.store import MemoryStore
    >>> from archgraph.evaluate import InProcessEvaluator
    >>> class Count:  # proposes ever longer paths
    ...     def __init__(self): self.n = 0
    ...     def ask(self):
    ...         self.n += 1
    ...         return Trial.propose(ArchGraph([(i, i + 1) for i in range(self.n)]), budget=1)
    ...     def tell(self, trial, result): pass
    >>> def score(t):
    ...     if t.id == 1:
    ...         raise RuntimeError("out of memory")
    ...     return Result(t.id, {"val_accuracy": 1 / t.arch[0].num_nodes})
    >>> runner = Runner(Count(), score, store=MemoryStore(), evaluator=InProcessEvaluator(),
    ...                 budget=Budget(trials=3), progress=False)
    >>> [(r.state.value, r.error or round(r.score, 3)) for r in runner.run()]
    [('complete', 0.5), ('failed', 'RuntimeError: out of memory'), ('complete', 0.25)]
    """

    def __init__(self, strategy: Strategy, objective: Callable[..., Result], *, store, evaluator,
                 budget: Budget, seed: int = 0, progress: bool = True, pruner: Pruner | None = None,
                 max_failures: int | None = 5, retry_failed: bool = False, callbacks: Sequence[Callback] = ()):
        if max_failures is not None and max_failures < 1:
            raise SettingError(f"max_failures must be at least 1 (or None: never stop), got {max_failures}")
        self.strategy = strategy
        self.objective = objective
        self.store = store
        self.evaluator = evaluator
        self.budget = budget
        self.seed = seed
        self.progress = progress
        self.pruner = pruner
        self.max_failures = max_failures
        self.retry_failed = retry_failed
        self.callbacks = tuple(callbacks)
        self._reports = takes_report(objective)

    def run(self) -> list[Result]:
        """Replay what the store holds, then search until the budget is spent; returns every
        trial's latest result in trial order.

        Raises
        ------
        TooManyFailures
            After ``max_failures`` trials failed in a row (everything before is recorded).
        """
        numbers = TrialNumbers(self.seed)
        trials = numbers.trials
        attempts = self.store.attempts()
        results = {i: tries[-1] for i, tries in attempts.items()}
        finished, asked_after = self._replay(numbers, attempts)
        epochs = sum(_epochs_asked(t, trials) for t in trials.values())
        retries = [trials[i] for i, r in results.items() if r.state is TrialState.FAILED] if self.retry_failed else []
        in_flight: deque[tuple[Trial, Future, bool]] = deque(
            [(t, self._submit(t, finished), True) for t in retries]
            + [(t, self._submit(t, finished[:asked_after[t.id]]), False) for t in self.store.pending()])
        start, in_a_row, stop = time.monotonic(), 0, None
        bar = tqdm(total=self.budget.trials, initial=len(results), unit="trial", desc="search",
                   disable=None if self.progress else True)
        with bar, running(self.callbacks, RunStart(self.store.config(), dict(results), self.budget.trials), results):
            while True:
                while (stop is None and len(in_flight) < self.evaluator.max_workers
                       and self._may_ask(len(trials), epochs, start)):
                    trial = numbers(self.strategy.ask())
                    if trial is None:
                        break
                    self.store.record_ask(trial)
                    epochs += _epochs_asked(trial, trials)
                    in_flight.append((trial, self._submit(trial, finished), False))
                if not in_flight:
                    break
                trial, future, retried = in_flight.popleft()
                result = self._outcome(trial, future)
                if retried:
                    self.store.record_retry(result)
                else:
                    self.store.record_tell(result)
                    self.strategy.tell(trial, result)
                    bar.update()
                trial_told(self.callbacks, trial, result)
                finished.append(result)
                results[trial.id] = result
                in_a_row = in_a_row + 1 if result.state is TrialState.FAILED else 0
                if stop is None and self.max_failures is not None and in_a_row >= self.max_failures:
                    stop = TooManyFailures(in_a_row, result)  # ask no more; record what is in flight
                bar.set_postfix(_summary(results.values()))
        if stop is not None:
            raise stop
        return [results[i] for i in sorted(results)]

    def _replay(self, numbers: TrialNumbers, attempts: dict[int, list[Result]]):
        """Replay the event log into the strategy, numbering its asks; returns the results in the order
        they were recorded and, per trial, how many of them came before it was asked (its pruning reference)."""
        trials = {t.id: t for t in self.store.trials()}
        finished: list[Result] = []
        asked_after: dict[int, int] = {}
        retried: dict[int, int] = {}
        for kind, trial_id in self.store.events():
            if kind == "ask":
                asked = numbers(self.strategy.ask())
                if asked != trials[trial_id]:
                    raise ResumeError(
                        f"replaying the run, the strategy asked {asked!r} where the store recorded trial "
                        f"{trial_id}; resume with the same configuration and seed the run was started with")
                asked_after[trial_id] = len(finished)
            elif kind == "tell":  # the first attempt: what the strategy was told
                finished.append(attempts[trial_id][0])
                self.strategy.tell(trials[trial_id], attempts[trial_id][0])
            else:  # a retry: recorded, never told to the strategy
                retried[trial_id] = retried.get(trial_id, 0) + 1
                finished.append(attempts[trial_id][retried[trial_id]])
        return finished, asked_after

    def _submit(self, trial: Trial, finished: list[Result]) -> Future:
        """Start ``trial``; an objective that reports gets a Reporter judging it against ``finished``."""
        if not self._reports:
            return self.evaluator.submit(self.objective, trial)
        reference = () if self.pruner is None else _curves(finished, self.pruner.metric)
        return self.evaluator.submit(Reported(self.objective, Reporter(trial.id, trial.budget, self.pruner, reference)),
                                     trial)

    @staticmethod
    def _outcome(trial: Trial, future: Future) -> Result:
        """The trial's result; failed if the objective raised or a loss is NaN or infinite."""
        try:
            result = future.result()
        except TrialError as err:  # on Ray a wrapper whose attributes are the TrialError's
            return Result.failure(trial.id, err.error, err.traceback)
        for row in (*result.curve, result.metrics):
            if (loss := non_finite_loss(row)) is not None:
                where = f" in epoch {row['epoch']}" if "epoch" in row else ""
                return Result(trial.id, {}, result.curve, seconds=result.seconds, state=TrialState.FAILED,
                              error=f"DivergedError: the {loss} is {row[loss]}{where}; lower the learning rate")
        return result

    def _may_ask(self, n_trials: int, epochs: int, start: float) -> bool:
        b = self.budget
        return ((b.trials is None or n_trials < b.trials) and (b.epochs is None or epochs < b.epochs)
                and (b.seconds is None or time.monotonic() - start < b.seconds))


def _curves(results: list[Result], metric: str) -> tuple[tuple[float, ...], ...]:
    """The per-epoch ``metric`` of the completed results whose every epoch has it."""
    return tuple(tuple(row[metric] for row in r.curve) for r in results
                 if r.state is TrialState.COMPLETE and r.curve
                 and all(isinstance(row.get(metric), (int, float)) for row in r.curve))


def _summary(results) -> dict[str, str]:
    """The progress bar's postfix: the best score, and how many trials failed or were pruned."""
    results = list(results)
    scores = [r.score for r in results if r.scored]
    summary = {"best": f"{max(scores):.4f}"} if scores else {}
    for state in (TrialState.FAILED, TrialState.PRUNED):
        if n := sum(r.state is state for r in results):
            summary[state.value] = str(n)
    return summary


def _epochs_asked(trial: Trial, trials: dict[int, Trial]) -> int:
    """Training epochs a trial adds: its budget, less what the trial it resumes had."""
    done = trials[trial.resume_from].budget if trial.resume_from is not None else 0
    return trial.budget - done
