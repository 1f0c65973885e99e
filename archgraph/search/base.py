"""The ask/tell protocol every search strategy follows.

A strategy proposes :class:`~archgraph.trial.Trial` s (``ask``) and learns from their
:class:`~archgraph.trial.Result` s (``tell``); a :class:`~archgraph.search.runner.Runner`
drives it with an evaluator and records every ask and tell in a store. Strategies are
deterministic functions of their seed and of the results told to them, so a run is resumed
by replaying its recorded asks and tells (the store's event log) into a fresh strategy.

A strategy proposes trials without ids or seeds (:meth:`~archgraph.trial.Trial.propose`) and
refers to earlier trials by the ids it was told them with; :class:`TrialNumbers` gives each
proposal its id and training seed, in the runner, or where a strategy is driven by hand
(:func:`asking`). Ids and seeds are the run's, not the strategy's: a strategy never counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ArchGraphError
from ..trial import Result, Trial

__all__ = ["Strategy", "TrialNumbers", "asking", "trial_seed"]


@runtime_checkable
class Strategy(Protocol):
    """The ask/tell protocol.

    ``ask()`` returns the next trial, a proposal without id and seed (:meth:`Trial.propose`), or ``None`` when the strategy has nothing to propose
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


def trial_seed(seed: int, trial_id: int) -> int:
    """The training seed of trial ``trial_id`` in a run seeded ``seed`` (independent streams).

    >>> trial_seed(0, 1) == trial_seed(0, 1) != trial_seed(0, 2)
    True
    """
    return int(np.random.SeedSequence([seed, trial_id]).generate_state(1)[0])


class TrialNumbers:
    """Gives a run's proposals their ids and seeds: the next id (0, 1, 2, ... in the order they
    are asked) and :func:`trial_seed` of the run's ``seed`` and that id, or, for a trial that
    resumes another's checkpoint, that trial's seed (it trains the same network further).
    ``trials`` are those the run asked before: numbering goes on after them.

    >>> from archgraph import ArchGraph
    >>> numbers = TrialNumbers(seed=3)
    >>> first = numbers(Trial.propose(ArchGraph([(0, 1)]), 1))
    >>> longer = numbers(Trial.propose(first.arch, 2, resume_from=first.id))
    >>> (first.id, longer.id), first.seed == longer.seed == trial_seed(3, 0)
    ((0, 1), True)
    """

    def __init__(self, seed: int = 0, trials: Iterable[Trial] = ()):
        self.seed = seed
        self.trials = {t.id: t for t in trials}

    def __call__(self, proposal: Trial | None) -> Trial | None:
        """The proposal numbered (``None`` stays ``None``: the strategy has nothing to ask)."""
        if proposal is None:
            return None
        if proposal.id is not None or proposal.seed is not None:
            raise ArchGraphError(f"the strategy proposed a trial with id {proposal.id} and seed {proposal.seed}; "
                                 "a strategy proposes trials with Trial.propose, and the runner numbers them")
        if proposal.resume_from is not None and proposal.resume_from not in self.trials:
            raise ArchGraphError(f"the strategy proposed a trial resuming trial {proposal.resume_from}, "
                                 "which was never asked")
        trial_id = len(self.trials)
        seed = (self.trials[proposal.resume_from].seed if proposal.resume_from is not None
                else trial_seed(self.seed, trial_id))
        self.trials[trial_id] = trial = proposal.numbered(trial_id, seed)
        return trial


def asking(strategy: Strategy, seed: int = 0, trials: Iterable[Trial] = ()) -> Callable[[], Trial | None]:
    """``strategy.ask`` with its proposals numbered as a run seeded ``seed`` numbers them after
    ``trials``, to drive a strategy by hand (telling it ``strategy.tell``)."""
    numbers = TrialNumbers(seed, trials)
    return lambda: numbers(strategy.ask())
