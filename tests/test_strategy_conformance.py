"""Every registered strategy, on every space it takes, keeps the ask/tell protocol
(:mod:`archgraph.search.base`) under the :class:`~archgraph.search.runner.Runner`:

* **replay**: the recorded asks and tells, replayed into a fresh strategy with the same seed,
  give the same asks, and leave it where the recorded one stands;
* **failures**: trials that raise, report a NaN loss or are pruned do not stop it asking, nothing
  builds on a failed trial's weights, and it does with them what its docstring says;
* **resume**: a run killed at any event and resumed (as ``--resume`` does: a fresh strategy built
  from the same settings, the store replayed) ends as the uninterrupted run, in the same state;
* **workers**: a run asks the same trials with one worker or three; a strategy whose asks depend on
  what it has been told so far does with a ``lag`` (:class:`~archgraph.search.base.Lagged`), and
  replays and resumes with one too.

The objective is a cheap, deterministic fake; a third of the trials fail or are pruned by id.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import statistics
from itertools import islice, pairwise

import numpy as np
import pytest

from archgraph import spaces
from archgraph.errors import SpaceError
from archgraph.evaluate import InProcessEvaluator
from archgraph.oneshot.hyper_trial import TrainHyperArchitecture
from archgraph.search.base import Lagged, asking
from archgraph.search.options import make_strategy
from archgraph.search.runner import Budget, Runner
from archgraph.search.session import STRATEGIES
from archgraph.store import MemoryStore
from archgraph.trial import Result, Trial, TrialState

SPACES = ("fade", "nb201", "darts", "mlp")
EPOCHS = 4  # a NOSH pyramid of 1, 2 and 4 epochs
TRIALS = 12
#: settings that make each strategy cheap and show its whole cycle within TRIALS trials
PARAMS = {"random": {"draws": 2}, "bo": {"draws": 2, "initial_points": 2, "per_cell": False},
          "evolution": {"population_size": 4, "sample_size": 2}, "fade": {"hyper_epochs": 1, "draws": 2},
          "nosh": {"n_new": 3, "pool_size": 10}, "sh": {"candidates": 10},
          "predictor": {"n_new": 3, "pool_size": 10}, "controller": {"batch": 3, "hidden": 8, "controller_steps": 2}}


def make(name: str, space: str, lag: int | None = None):
    """The strategy as a search (and its resume) builds it, with ``lag`` if one is given."""
    params = PARAMS[name] if lag is None else {**PARAMS[name], "lag": lag}
    return make_strategy(name, STRATEGIES[name], spaces.load(space), epochs=EPOCHS, seed=3, params=params)


def _cases() -> list[tuple[str, str]]:
    """Every (strategy, space) pair whose strategy takes the space."""
    cases = []
    for name in STRATEGIES:
        for space in SPACES:
            try:
                make(name, space)
            except SpaceError:
                continue
            cases.append((name, space))
    return cases


CASES = _cases()
#: the cases whose strategy takes a lag: its asks depend on what it has been told when it asks
LAGGED = [(name, space) for name, space in CASES if issubclass(STRATEGIES[name], Lagged)]
#: the cases replayed and resumed: every strategy as it is by default, and those that take one with a lag of 2
RUNS = [(name, space, None) for name, space in CASES] + [(name, space, 2) for name, space in LAGGED]


def objective(trial: Trial, failing: bool = True) -> Result:
    """A deterministic fake: by trial id, one in five raises, the next one reports a NaN loss
    and one in seven is pruned (``failing``); a hyper trial reports row weights, another trial a
    validation accuracy from its architecture and budget, with a checkpoint."""
    if failing and trial.id % 5 == 2:
        raise RuntimeError("CUDA out of memory")
    if failing and trial.id % 5 == 3:
        return Result(trial.id, {"val_accuracy": 0.1}, curve=({"epoch": 1, "train_loss": float("nan")},))
    text = json.dumps([cell.to_dict() for cell in trial.arch], sort_keys=True)
    quality = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16 ** 8
    accuracy = round(quality * trial.budget / (trial.budget + 1), 6)
    if failing and trial.id % 7 == 6:
        return Result(trial.id, {"val_accuracy": accuracy / 2}, curve=({"epoch": 1, "val_accuracy": accuracy / 2},),
                      state=TrialState.PRUNED)
    if isinstance(trial.task, TrainHyperArchitecture):
        beta = np.random.default_rng(trial.seed).dirichlet(np.ones(trial.task.width), size=trial.task.rows)
        return Result(trial.id, {"hyper_train_accuracy": 0.5}, curve=({"epoch": 1, "alpha": beta.tolist()},),
                      checkpoint=f"checkpoints/trial-{trial.id}.pt")
    return Result(trial.id, {"val_accuracy": accuracy, "epochs": trial.budget}, checkpoint=f"checkpoints/trial-{trial.id}.pt")


class Parallel(InProcessEvaluator):
    """Trains each trial at once, but lets the runner keep three in flight, as a pool of three
    workers would: strategies are asked for trials while earlier ones are untold."""

    max_workers = 3


def run(strategy, store, fn=objective, evaluator=None) -> None:
    """Search to TRIALS trials, three in flight unless another ``evaluator`` is given, whatever fails."""
    Runner(strategy, fn, store=store, evaluator=evaluator or Parallel(), budget=Budget(trials=TRIALS), seed=3,
           progress=False, max_failures=None).run()


@functools.cache
def reference(name: str, space: str, lag: int | None = None):
    """The uninterrupted run of a case (three in flight): its strategy after the run and its store."""
    strategy, store = make(name, space, lag), MemoryStore()
    run(strategy, store)
    return strategy, store


def records(store) -> tuple:
    """What a run recorded: its events, trials and results (their timings aside)."""
    results = {i: {**r.to_dict(), "seconds": None} for i, r in store.results().items()}
    return store.events(), [t.to_dict() for t in store.trials()], results


@functools.cache
def reference_without_failures(name: str, space: str):
    """The same run with an objective under which nothing fails."""
    strategy, store = make(name, space), MemoryStore()
    run(strategy, store, fn=functools.partial(objective, failing=False))
    return strategy, store


def _same_next_asks(a, b, trials) -> None:
    """``a`` and ``b``, which asked ``trials``, ask the same trials from here, told the same results, for a few rounds."""
    ask_a, ask_b = asking(a, 3, trials), asking(b, 3, trials)
    for _ in range(2):
        asked = list(islice(iter(ask_a, None), 3))
        assert list(islice(iter(ask_b, None), 3)) == asked
        for trial in asked:
            result = objective(trial, failing=False)
            a.tell(trial, result)
            b.tell(trial, result)


def test_every_registered_strategy_is_checked():
    assert {name for name, _ in CASES} == set(STRATEGIES) == set(DOCUMENTED)
    assert {space for name, space in CASES if name in ("random", "bo", "evolution")} == {"fade", "nb201", "darts"}


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_says_what_it_does_with_a_failed_and_a_pruned_trial(name):
    cls = STRATEGIES[name]
    text = " ".join(inspect.getdoc(where) or "" for where in (cls, inspect.getmodule(cls))).lower()
    assert "fail" in text and "prune" in text


@pytest.mark.parametrize("name, space, lag", RUNS)
def test_replaying_the_recorded_asks_and_tells_reproduces_the_asks(name, space, lag):
    _, store = reference(name, space, lag)
    again = make(name, space, lag)  # the same run again: same seed, same asks
    run(again, rerun := MemoryStore())
    assert records(rerun) == records(store)
    trials, results = {t.id: t for t in store.trials()}, store.results()
    strategy = make(name, space, lag)
    ask = asking(strategy, seed=3)
    for kind, trial_id in store.events():
        if kind == "ask":
            assert ask() == trials[trial_id]
        else:
            strategy.tell(trials[trial_id], results[trial_id])
    _same_next_asks(again, strategy, trials.values())


@pytest.mark.parametrize("name, space, lag", RUNS)
def test_a_resumed_run_ends_as_the_uninterrupted_one_wherever_it_was_killed(name, space, lag):
    _, whole = reference(name, space, lag)
    events, trials, results = whole.events(), {t.id: t for t in whole.trials()}, whole.results()
    cuts = (1, len(events) // 3, 2 * len(events) // 3 + 1)
    pending = []
    for cut in cuts:
        killed = MemoryStore()  # what the store held when the run was killed after its cut-th event
        for kind, trial_id in events[:cut]:
            killed.record_ask(trials[trial_id]) if kind == "ask" else killed.record_tell(results[trial_id])
        pending.append(len(killed.pending()))
        run(make(name, space, lag), killed)
        assert records(killed) == records(whole), f"killed after event {cut}"
    assert any(pending), "no cut leaves a trial in flight"


def _random_asks_as_if_nothing_failed(strategy, store):
    """Random search: "a failed draw is recorded and forgotten: the next points do not depend on scores"."""
    _, healthy = reference_without_failures("random", strategy.space.name)
    assert [t.to_dict() for t in store.trials()] == [t.to_dict() for t in healthy.trials()]


def _bo_tells_all_failed_points_as_the_worst(strategy, store):
    """BO: a point's value is the median of its draws that did not fail, the worst so far if all did."""
    results = store.results()
    expected, all_failed = [], 0
    for index in sorted(strategy.scores):
        draws = [r for r in results.values() if _trial(store, r.trial_id).info["point"] == index]
        if len(draws) < strategy.draws:
            continue
        usable = [r.score for r in draws if r.state is not TrialState.FAILED]
        expected.append(statistics.median(usable) if usable else min(expected, default=0.0))
        all_failed += not usable
    assert strategy.values == expected and all_failed


def _evolution_discards_failures(strategy, store):
    """Evolution: a failed trial never joins the population, so it is never a parent."""
    failed = _ids(store, TrialState.FAILED)
    assert failed and not failed & {t.id for t, _ in strategy.population}
    assert not failed & {t.info["parent"] for t in store.trials()}


def _fade_keeps_its_anchors_after_a_failed_hyper_trial(strategy, store):
    """FaDE: a hyper trial that does not complete moves no anchor; the next step warm-starts
    from the last one that completed."""
    hypers = [t for t in store.trials() if isinstance(t.task, TrainHyperArchitecture)]
    complete = _ids(store, TrialState.COMPLETE)
    assert not {t.id for t in hypers} <= complete
    assert len(strategy.trajectory) == 1 + len([t for t in hypers if t.id in complete])
    last = None
    for before, after in pairwise(hypers):
        last = before.id if before.id in complete else last
        assert after.task.warm_start == last
        if before.id not in complete:
            assert after.info["anchors"] == before.info["anchors"] and after.info["step"] == before.info["step"]


def _nosh_discards_failed_and_pruned_candidates(strategy, store):
    """NOSH and its baselines: a candidate whose trial failed or was pruned is discarded, and the
    predictor is fitted to completed trials only."""
    lost = {t.info["candidate"] for t in store.trials() if t.id not in _ids(store, TrialState.COMPLETE)}
    assert lost and all(strategy.candidates[c].discarded for c in lost)
    assert len(strategy.observations) == len(_ids(store, TrialState.COMPLETE))


def _controller_rewards_completed_trials_only(strategy, store):
    """The controller: a failed or pruned trial gives no reward and lends no weights."""
    assert set(strategy.observed) == _ids(store, TrialState.COMPLETE)
    assert {source for source, _ in strategy.shared.entries.values()} <= _ids(store, TrialState.COMPLETE)


#: strategy name → a check of what its docstring says it does with failed (and pruned) trials
DOCUMENTED = {"random": _random_asks_as_if_nothing_failed, "bo": _bo_tells_all_failed_points_as_the_worst,
              "evolution": _evolution_discards_failures, "fade": _fade_keeps_its_anchors_after_a_failed_hyper_trial,
              "nosh": _nosh_discards_failed_and_pruned_candidates, "sh": _nosh_discards_failed_and_pruned_candidates,
              "predictor": _nosh_discards_failed_and_pruned_candidates,
              "controller": _controller_rewards_completed_trials_only}


@pytest.mark.parametrize("name, space", CASES)
def test_failed_and_pruned_trials_are_handled_as_documented_and_the_search_goes_on(name, space):
    strategy, store = reference(name, space)
    assert len(store.trials()) == TRIALS  # it kept asking to the end of the budget
    errors = [r.error for r in store.results().values() if r.state is TrialState.FAILED]
    assert any(e.startswith("RuntimeError") for e in errors) and any(e.startswith("DivergedError") for e in errors)
    assert TrialState.PRUNED in store.states().values()
    weighted = {i for i, r in store.results().items() if r.state is TrialState.COMPLETE and r.checkpoint}
    for trial in store.trials():
        assert trial.sources <= weighted, f"trial {trial.id} builds on a trial that left no weights"
    DOCUMENTED[name](strategy, store)


def _ids(store, state: TrialState) -> set[int]:
    return {i for i, s in store.states().items() if s is state}


def _trial(store, trial_id: int) -> Trial:
    return next(t for t in store.trials() if t.id == trial_id)


def in_flight(store) -> int:
    """The most trials a run had in flight when it asked one (that one included)."""
    most = flying = 0
    for kind, _ in store.events():
        flying += 1 if kind == "ask" else -1
        most = max(most, flying)
    return most


def trials_asked(store) -> list[dict]:
    return [t.to_dict() for t in store.trials()]


@pytest.mark.parametrize("name, space", CASES)
def test_one_worker_or_three_ask_the_same_trials(name, space):
    """With three workers, several trials are in flight, and the asks are those of one worker: for a
    strategy whose asks depend on what it was told so far, with a lag of 2 (three in flight)."""
    lag = 2 if (name, space) in LAGGED else None
    _, three = reference(name, space, lag)
    one = MemoryStore()
    run(make(name, space, lag), one, evaluator=InProcessEvaluator())
    assert trials_asked(one) == trials_asked(three)
    assert in_flight(one) == 1 < in_flight(three)
    if lag is not None:
        assert in_flight(three) == lag + 1


@pytest.mark.parametrize("lag", [0, 1])
@pytest.mark.parametrize("name, space", LAGGED)
def test_a_lag_keeps_lag_plus_one_trials_in_flight_and_the_asks_of_one_worker(name, space, lag):
    """Lag 0 asks one trial at a time, as the default on one worker; lag 1 keeps two in flight."""
    lagged = {1: MemoryStore(), 3: MemoryStore()}
    for workers, evaluator in ((1, InProcessEvaluator()), (3, Parallel())):
        run(make(name, space, lag), lagged[workers], evaluator=evaluator)
    assert trials_asked(lagged[1]) == trials_asked(lagged[3])
    assert in_flight(lagged[3]) == lag + 1
    if lag == 0:
        alone = MemoryStore()
        run(make(name, space), alone, evaluator=InProcessEvaluator())
        assert trials_asked(lagged[3]) == trials_asked(alone)


@pytest.mark.parametrize("name, space", LAGGED)
def test_by_default_a_lagged_strategy_asks_from_what_was_told_so_far_so_workers_change_its_asks(name, space):
    """As :class:`~archgraph.search.base.Lagged` documents ``lag=None``: evolution's parents and the
    controller's shared weights come from the trials told when it asks, fewer with more in flight."""
    assert make(name, space).lag is None
    _, three = reference(name, space)
    one = MemoryStore()
    run(make(name, space), one, evaluator=InProcessEvaluator())
    assert in_flight(three) == 3
    assert trials_asked(one) != trials_asked(three)
