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

A strategy whose asks depend on the results told so far asks other trials when more trials are in
flight (more workers) unless it waits for them: :class:`Lagged` gives it a ``lag`` that makes its
asks the same whatever the number of workers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ArchGraphError, SettingError
from ..trial import Result, Trial

__all__ = ["Lagged", "Strategy", "TrialNumbers", "asking", "trial_seed"]


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


class Lagged:
    """A strategy that sees results when its ``lag`` says, not when they come: a subclass proposes
    with ``_propose()`` (a proposal, or ``None``: it needs more results) and learns with
    ``_learn(trial, result)``; this class's ``ask`` and ``tell`` call them.

    With ``lag=None`` every result is learnt when told and ``ask`` proposes at once: an ask sees
    the results told so far, which depend on how many trials are in flight, so on the number of
    workers. With a number, ask ``k`` (from 0) is proposed once the first ``k − lag`` results
    (in the order told: the runner tells them in the order trials were asked) have been learnt,
    and before any later one; where ``_propose`` needs more, it learns one more result at a time.
    Until the results it needs are told, ``ask`` returns ``None`` and the runner waits for the
    oldest trial in flight. The calls to ``_propose`` and ``_learn`` are then the same, so are the
    asks, with one worker or many: ``lag=0`` trains one trial at a time, ``lag=w − 1`` keeps ``w``
    workers busy. Results told after a run's last ask are learnt by the next ask (a resumed run's):
    the strategy's own state may lack them, the run's results and front (its store's) do not.

    Parameters
    ----------
    lag:
        Ask k waits for the first k − lag results and sees no later one, so any number of workers
        asks the same trials (w − 1 keeps w workers busy); None: it sees all told so far, which
        depend on the number of workers.

    Examples
    --------
    >>> class Last(Lagged):  # proposes paths as long as the last result it learnt
    ...     def __init__(self, lag): super().__init__(lag); self.last = 1
    ...     def _propose(self): return Trial.propose(ArchGraph([(i, i + 1) for i in range(self.last)]), 1)
    ...     def _learn(self, trial, result): self.last = int(result.score)
    >>> from archgraph import ArchGraph
    >>> strategy = Last(lag=1)
    >>> ask = asking(strategy)
    >>> a, b = ask(), ask()  # the second ask needs no result yet
    >>> ask() is None  # the third needs trial 0's
    True
    >>> strategy.tell(a, Result(a.id, {"val_accuracy": 3})); strategy.tell(b, Result(b.id, {"val_accuracy": 5}))
    >>> ask().arch[0].num_nodes - 1, strategy.last  # trial 0's result only
    (3, 3)
    """

    def __init__(self, lag: int | None = None):
        if lag is not None and (isinstance(lag, bool) or not isinstance(lag, int) or lag < 0):
            raise SettingError(f"lag is a whole number >= 0 (or None: asynchronous), got {lag!r}")
        self.lag = lag
        self._held: deque[tuple[Trial, Result]] = deque()  # told, not learnt yet
        self._asked = self._learnt = self._needed = 0

    def ask(self) -> Trial | None:
        if self.lag is None:
            return self._propose()
        self._needed = max(self._needed, self._asked - self.lag)
        while True:
            while self._learnt < self._needed:
                if not self._held:
                    return None  # the result needed is in flight
                self._learn(*self._held.popleft())
                self._learnt += 1
            proposal = self._propose()
            if proposal is not None:
                self._asked += 1
                return proposal
            if self._learnt == self._asked:
                return None  # it knows every result and has nothing to propose: exhausted
            self._needed = self._learnt + 1

    def tell(self, trial: Trial, result: Result) -> None:
        if self.lag is None:
            self._learn(trial, result)
        else:
            self._held.append((trial, result))
