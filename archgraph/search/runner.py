"""The Runner: drives an ask/tell strategy with an evaluator, recording everything in a store.

Every ask and every tell is written to the store before the run goes on, so a killed run
loses at most the trials that were being trained. ``Runner.run`` first *replays* the
store's event log into the (fresh) strategy — the recorded asks must come out again, the
recorded results are told again in the recorded order — then resubmits the trials that
were asked but not told, and continues. Strategies are deterministic in their seed and
the results they are told, and trials train with their own seeds, so a resumed run ends in
the same state as an uninterrupted one.

Results are told in the order trials were asked (the runner waits for the oldest trial in
flight), which keeps runs identical whichever evaluator, and however many workers, run them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from tqdm import tqdm

from ..errors import ArchGraphError
from ..trial import Result, Trial
from .base import Strategy

__all__ = ["Budget", "Runner", "ResumeError"]


class ResumeError(ArchGraphError, RuntimeError):
    """A recorded run cannot be replayed into the strategy (it asks for other trials)."""


@dataclass(frozen=True)
class Budget:
    """When a run stops: after ``trials`` trials asked, ``epochs`` training epochs asked
    (the sum of the trials' budgets, less the epochs their resumed checkpoints had), or
    ``seconds`` of wall-clock time in this ``run`` call; ``None`` means no limit."""

    trials: int | None = None
    epochs: int | None = None
    seconds: float | None = None

    def __post_init__(self):
        if self.trials is None and self.epochs is None and self.seconds is None:
            raise ValueError("a budget needs at least one of trials, epochs or seconds")


class Runner:
    """Run ``strategy`` until ``budget`` is spent, training trials with ``objective``
    (a picklable callable ``Trial -> Result``) on ``evaluator`` and recording in ``store``.

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
    ...         return Trial(id=self.n - 1, arch=ArchGraph([(i, i + 1) for i in range(self.n)]), budget=1, seed=0)
    ...     def tell(self, trial, result): pass
    >>> score = lambda t: Result(t.id, {"val_accuracy": 1 / t.arch[0].num_nodes})
    >>> runner = Runner(Count(), score, store=MemoryStore(), evaluator=InProcessEvaluator(),
    ...                 budget=Budget(trials=3), progress=False)
    >>> [round(r.score, 3) for r in runner.run()]
    [0.5, 0.333, 0.25]
    """

    def __init__(self, strategy: Strategy, objective: Callable[[Trial], Result], *, store, evaluator,
                 budget: Budget, progress: bool = True):
        self.strategy = strategy
        self.objective = objective
        self.store = store
        self.evaluator = evaluator
        self.budget = budget
        self.progress = progress

    def run(self) -> list[Result]:
        """Replay what the store holds, then search until the budget is spent; returns all
        results in trial order."""
        trials = {t.id: t for t in self.store.trials()}
        results = self.store.results()
        self._replay(trials, results)
        epochs = sum(_epochs_asked(t, trials) for t in trials.values())
        in_flight: deque[tuple[Trial, Future]] = deque(
            (t, self.evaluator.submit(self.objective, t)) for t in self.store.pending())
        start = time.monotonic()
        bar = tqdm(total=self.budget.trials, initial=len(results), unit="trial", desc="search",
                   disable=None if self.progress else True)
        with bar:
            while True:
                while len(in_flight) < self.evaluator.max_workers and self._may_ask(len(trials), epochs, start):
                    trial = self.strategy.ask()
                    if trial is None:
                        break
                    self._check_new(trial, trials)
                    self.store.record_ask(trial)
                    trials[trial.id] = trial
                    epochs += _epochs_asked(trial, trials)
                    in_flight.append((trial, self.evaluator.submit(self.objective, trial)))
                if not in_flight:
                    break
                trial, future = in_flight.popleft()
                result = future.result()
                self.store.record_tell(result)
                self.strategy.tell(trial, result)
                results[trial.id] = result
                bar.update()
                scores = [r.score for r in results.values() if r.scored]
                if scores:
                    bar.set_postfix(best=f"{max(scores):.4f}")
        return [results[i] for i in sorted(results)]

    def _replay(self, trials: dict[int, Trial], results: dict[int, Result]) -> None:
        for kind, trial_id in self.store.events():
            if kind == "ask":
                asked = self.strategy.ask()
                if asked != trials[trial_id]:
                    raise ResumeError(
                        f"replaying the run, the strategy asked {asked!r} where the store recorded trial "
                        f"{trial_id}; resume with the same configuration and seed the run was started with")
            else:
                self.strategy.tell(trials[trial_id], results[trial_id])

    def _may_ask(self, n_trials: int, epochs: int, start: float) -> bool:
        b = self.budget
        return ((b.trials is None or n_trials < b.trials) and (b.epochs is None or epochs < b.epochs)
                and (b.seconds is None or time.monotonic() - start < b.seconds))

    @staticmethod
    def _check_new(trial: Trial, trials: dict[int, Trial]) -> None:
        if trial.id in trials:
            raise ArchGraphError(f"the strategy asked trial id {trial.id} twice; trial ids must be new")
        if trial.resume_from is not None and trial.resume_from not in trials:
            raise ArchGraphError(f"trial {trial.id} resumes trial {trial.resume_from}, which was never asked")


def _epochs_asked(trial: Trial, trials: dict[int, Trial]) -> int:
    """Training epochs a trial adds: its budget, less what the trial it resumes had."""
    done = trials[trial.resume_from].budget if trial.resume_from is not None else 0
    return trial.budget - done
