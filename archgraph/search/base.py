"""The ask/tell protocol every search strategy follows.

A strategy proposes :class:`~archgraph.trial.Trial` s (``ask``) and learns from their
:class:`~archgraph.trial.Result` s (``tell``); a :class:`~archgraph.search.runner.Runner`
drives it with an evaluator and records every ask and tell in a store. Strategies are
deterministic functions of their seed and of the results told to them, so a run is resumed
by replaying its recorded asks and tells (the store's event log) into a fresh strategy.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..trial import Result, Trial

__all__ = ["Strategy"]


@runtime_checkable
class Strategy(Protocol):
    """The ask/tell protocol.

    ``ask()`` returns the next trial, or ``None`` when the strategy has nothing to propose
    until outstanding trials are told (or is exhausted). ``tell(trial, result)`` reports a
    finished trial, once, whatever its :attr:`~archgraph.trial.Result.state`: complete, pruned
    (the metrics of the epoch the pruner stopped it at, no checkpoint) or failed (no metrics,
    ``result.error``). Every strategy says in its docstring what it does with a failed and a
    pruned trial; none may stop asking because of one. A strategy must be deterministic given
    its constructor arguments and the sequence of asks and tells: the runner resumes runs by
    replaying them.

    A strategy may also have ``finish(trials, results, run_dir) -> list[str]`` (not part of the
    protocol's check): the search session calls it when a run ends with the run's trials and latest
    results, to write the strategy's own outputs into ``run_dir`` and return the lines it adds to
    the run's summary (:attr:`~archgraph.search.session.SearchOutcome.notes`; FaDE's figures).
    """

    def ask(self) -> Trial | None: ...

    def tell(self, trial: Trial, result: Result) -> None: ...
