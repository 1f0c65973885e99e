import sqlite3
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from archgraph import ArchGraph
from archgraph.errors import ArchGraphError
from archgraph.evaluate import InProcessEvaluator, ProcessPoolEvaluator, RayEvaluator
from archgraph.trial import Result, Trial, TrialState
from archgraph.search.base import asking, trial_seed
from archgraph.search.prune import MedianPruner
from archgraph.search.runner import Budget, ResumeError, Runner, TooManyFailures
from archgraph.store import MemoryStore, SQLiteStore


class Walk:
    """A toy strategy: random path lengths from a seeded Generator; remembers what it was told."""

    def __init__(self, seed=0, budget=2):
        self.rng = np.random.default_rng(seed)
        self.budget = budget
        self.told: list[tuple[int, float]] = []

    def ask(self):
        n = int(self.rng.integers(2, 6))
        return Trial.propose(ArchGraph([(i, i + 1) for i in range(n - 1)]), budget=self.budget)

    def tell(self, trial, result):
        self.told.append((trial.id, result.score if result.state is TrialState.COMPLETE else result.state.value))


def score(trial: Trial) -> Result:
    return Result(trial.id, {"val_accuracy": 1 / trial.arch[0].num_nodes + trial.seed / 1e5})


def run(strategy, store, trials, evaluator=None, objective=score, **kwargs):
    return Runner(strategy, objective, store=store, evaluator=evaluator or InProcessEvaluator(),
                  budget=Budget(trials=trials), progress=False, **kwargs).run()


def test_runs_until_the_trial_budget_and_records_everything():
    store, strategy = MemoryStore(), Walk()
    results = run(strategy, store, 4)
    assert [r.trial_id for r in results] == [0, 1, 2, 3]
    assert store.events() == [(kind, i) for i in range(4) for kind in ("ask", "tell")]
    assert strategy.told == [(r.trial_id, r.score) for r in results]


def test_epoch_budget_counts_trial_budgets():
    store = MemoryStore()
    Runner(Walk(budget=3), score, store=store, evaluator=InProcessEvaluator(), budget=Budget(epochs=7),
           progress=False).run()
    assert len(store.trials()) == 3  # 3 + 3 < 7 → a third trial; 9 ≥ 7 → stop


def test_a_resumed_run_ends_as_an_uninterrupted_one(tmp_path):
    whole = MemoryStore()
    run(Walk(seed=3), whole, 6)
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        run(Walk(seed=3), store, 3)
        store.record_ask(_fourth_trial())  # the run is killed after asking a fourth trial
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        strategy = Walk(seed=3)
        run(strategy, store, 6)
        assert [t.to_dict() for t in store.trials()] == [t.to_dict() for t in whole.trials()]
        assert {i: r.to_dict() for i, r in store.results().items()} == {i: r.to_dict() for i, r in whole.results().items()}
        kinds = [k for k, _ in store.events()]
        assert kinds.count("ask") == kinds.count("tell") == 6  # nothing asked or told twice
    assert strategy.told == [(i, whole.results()[i].score) for i in range(6)]


def _fourth_trial() -> Trial:
    """The trial a Walk(seed=3) asks fourth, as the killed run recorded it."""
    ask = asking(Walk(seed=3))
    return [ask() for _ in range(4)][-1]


def test_a_strategy_that_asks_otherwise_on_replay_is_refused():
    store = MemoryStore()
    run(Walk(seed=0), store, 2)
    with pytest.raises(ResumeError, match="resume with the same configuration and seed"):
        run(Walk(seed=1), store, 4)


class Shuffled:
    """A two-worker evaluator whose futures finish in reverse order of submission."""

    max_workers = 2

    def __init__(self):
        self.pool = ThreadPoolExecutor(2)
        self.delay = [0.2, 0.0]

    def submit(self, fn, trial) -> Future:
        delay = self.delay[trial.id % 2]
        return self.pool.submit(lambda: (time.sleep(delay), fn(trial))[1])


def test_results_are_told_in_the_order_trials_were_asked():
    strategy = Walk()
    run(strategy, MemoryStore(), 4, evaluator=Shuffled())
    assert [i for i, _ in strategy.told] == [0, 1, 2, 3]


def test_the_runner_gives_trial_ids_and_seeds_and_refuses_a_strategy_that_numbers_its_own():
    store = MemoryStore()
    run(Walk(), store, 3, seed=4)
    assert [(t.id, t.seed) for t in store.trials()] == [(i, trial_seed(4, i)) for i in range(3)]

    class Numbers(Walk):
        def ask(self):
            return super().ask().numbered(7, 0)

    with pytest.raises(ArchGraphError, match="proposed a trial with id 7 and seed 0; a strategy proposes trials with "
                                             "Trial.propose, and the runner numbers them"):
        run(Numbers(), MemoryStore(), 1)


# ---------------------------------------------------------------- failed trials


def raises(trial):
    """Every third trial (ids 1, 4, 7, ...) raises."""
    if trial.id % 3 == 1:
        raise ValueError(f"trial {trial.id} cannot be trained")
    return score(trial)


def returns_nan(trial):
    """Every third trial returns a NaN validation loss."""
    if trial.id % 3 == 1:
        return Result(trial.id, {"val_accuracy": 0.1, "val_loss": float("nan")}, ({"epoch": 0, "val_loss": float("nan")},))
    return score(trial)


def reports_nan(trial, report):
    """Every third trial's loss becomes NaN in its first epoch, which it reports."""
    for epoch in range(trial.budget):
        report({"epoch": epoch, "train_loss": float("nan") if trial.id % 3 == 1 else 0.5})
    return score(trial)


FAILURES = {  # objective -> (its failed trials' error, a line the traceback holds or None)
    raises: ("ValueError: trial {id} cannot be trained", 'raise ValueError(f"trial {trial.id} cannot be trained")'),
    returns_nan: ("DivergedError: the val_loss is nan in epoch 0; lower the learning rate", None),
    reports_nan: ("DivergedError: the train_loss became nan in epoch 0; lower the learning rate",
                  "in reports_nan"),
}


@pytest.fixture(scope="module")
def pool():
    """One process pool for the tests here (starting workers takes seconds)."""
    with ProcessPoolEvaluator(max_workers=2) as evaluator:
        yield evaluator


@pytest.fixture
def evaluator(request):
    if request.param == "ray":
        ray = pytest.importorskip("ray")
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this file
        with RayEvaluator(num_cpus=2, include_dashboard=False, log_to_driver=False) as evaluator:
            yield evaluator
    else:
        yield request.getfixturevalue("pool") if request.param == "process" else InProcessEvaluator()


@pytest.mark.parametrize(("objective", "evaluator"), [(raises, "inprocess"), (raises, "process"), (raises, "ray"),
                                                     (returns_nan, "inprocess"), (returns_nan, "process"),
                                                     (reports_nan, "inprocess"), (reports_nan, "process")],
                         indirect=["evaluator"])
def test_a_search_where_one_trial_in_three_fails_completes_its_budget(tmp_path, objective, evaluator):
    strategy = Walk()
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        results = run(strategy, store, 9, evaluator=evaluator, objective=objective)
        assert [r.trial_id for r in results] == list(range(9))
        failed = [i for i, state in store.states().items() if state is TrialState.FAILED]
        assert failed == [1, 4, 7] and all(store.states()[i] is TrialState.COMPLETE for i in (0, 2, 3, 5, 6, 8))
        kinds = [kind for kind, _ in store.events()]
        assert kinds.count("ask") == kinds.count("tell") == 9
    assert strategy.told == [(i, "failed" if i in failed else results[i].score) for i in range(9)]  # told, in order
    error, line = FAILURES[objective]
    with sqlite3.connect(tmp_path / "store.sqlite") as db:  # in the store, for anyone to read
        rows = db.execute("SELECT trial_id, state, error, traceback FROM results WHERE state = 'failed'").fetchall()
    db.close()
    assert [(i, state) for i, state, _, _ in rows] == [(1, "failed"), (4, "failed"), (7, "failed")]
    for i, _, message, traceback in rows:
        assert message.startswith(error.format(id=i))
        assert traceback is None if line is None else (traceback.startswith("Traceback") and line in traceback)


class Counting:
    """An objective that keeps the ids it trained, failing those in ``failing``."""

    def __init__(self, failing=()):
        self.failing, self.trained = set(failing), []

    def __call__(self, trial):
        self.trained.append(trial.id)
        if trial.id in self.failing:
            raise RuntimeError("CUDA out of memory")
        return score(trial)


@pytest.mark.parametrize("objective", [raises, returns_nan, reports_nan])
def test_a_resumed_run_trains_failed_trials_again_only_with_retry_failed(tmp_path, objective):
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        run(Walk(), store, 6, objective=objective)
        failures = store.results()
    assert [i for i, r in failures.items() if r.state is TrialState.FAILED] == [1, 4]

    again = Counting()
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        strategy = Walk()
        run(strategy, store, 9, objective=again)
        assert again.trained == [6, 7, 8]  # the new trials only: the failed ones stay failed
        assert strategy.told[:6] == [(i, "failed" if i in (1, 4) else failures[i].score) for i in range(6)]
        assert {i: r for i, r in store.results().items() if i < 6} == failures

    retry = Counting()
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        strategy = Walk()
        results = run(strategy, store, 9, objective=retry, retry_failed=True)
        assert retry.trained == [1, 4]
        assert store.events()[-2:] == [("retry", 1), ("retry", 4)]
        assert all(state is TrialState.COMPLETE for state in store.states().values())
        assert [r.state for r in store.attempts()[1]] == [TrialState.FAILED, TrialState.COMPLETE]
        assert results[1] == score(store.trials()[1])  # the run's results hold the retry's
        assert (1, "failed") in strategy.told and len(strategy.told) == 9  # the strategy was told the failure only

    with SQLiteStore(tmp_path / "store.sqlite") as store:  # a retried run replays as before
        strategy = Walk()
        run(strategy, store, 9, objective=Counting(failing=range(9)), retry_failed=True)
        assert (1, "failed") in strategy.told and len(store.events()) == 20  # nothing failed is left to retry


def test_consecutive_failures_stop_the_search_with_one_line(tmp_path):
    def oom(trial):
        if trial.id != 2:
            raise RuntimeError("CUDA out of memory.\nTried to allocate 2.00 GiB")
        return score(trial)

    store = MemoryStore()
    with pytest.raises(TooManyFailures) as stop:
        run(Walk(), store, 20, objective=oom, max_failures=3)
    message = str(stop.value)
    assert "\n" not in message and message == (
        "the search stopped after 3 trials failed in a row, the last (trial 5) with RuntimeError: CUDA out of memory.; "
        "fix the cause and resume the run (retry_failed trains the failed trials again), or allow more failures in a "
        "row with max_failures")
    assert stop.value.count == 3 and isinstance(stop.value, ArchGraphError)
    assert [r.state.value for r in store.results().values()] == ["failed", "failed", "complete"] + ["failed"] * 3
    assert store.pending() == []  # everything asked was recorded
    assert len(run(Walk(), MemoryStore(), 8, objective=oom, max_failures=None)) == 8  # None: never stop
    with pytest.raises(ValueError, match="max_failures must be at least 1"):
        Runner(Walk(), oom, store=MemoryStore(), evaluator=InProcessEvaluator(), budget=Budget(trials=1), max_failures=0)


# ---------------------------------------------------------------- pruning

LEVELS = [0.9, 0.5, 0.8, 0.2, 0.85, 0.1]  # trial id -> the accuracy its curve climbs to


def climbing(trial, report):
    """A learning curve rising linearly to LEVELS[trial.id], reported epoch by epoch."""
    rows = []
    for epoch in range(trial.budget):
        row = {"epoch": epoch, "val_accuracy": LEVELS[trial.id] * (epoch + 1) / trial.budget}
        report(row)
        rows.append(row)
    return Result(trial.id, {"val_accuracy": rows[-1]["val_accuracy"]}, tuple(rows))


def test_the_median_pruner_stops_trials_below_the_median_and_records_them_pruned():
    store, pruner = MemoryStore(), MedianPruner(warmup_epochs=1, min_trials=2)
    results = run(Walk(budget=3), store, 6, objective=climbing, pruner=pruner)
    # trial 3 at epoch 1: 0.133 < median(0.6, 0.333, 0.533); trial 4: 0.567 > 0.533; trial 5: 0.067
    assert [r.state.value for r in results] == ["complete"] * 3 + ["pruned", "complete", "pruned"]
    pruned = store.results()[3]
    assert [row["epoch"] for row in pruned.curve] == [0, 1]  # stopped after epoch 1, of 3
    assert pruned.metrics == {"val_accuracy": pytest.approx(0.2 * 2 / 3), "epochs": 2} and not pruned.scored
    assert all(r.state is TrialState.COMPLETE for r in run(Walk(budget=3), MemoryStore(), 6, objective=climbing))


class TwoAtOnce:
    """Two trials in flight, each trained at once when submitted: the runner asks and tells as
    with two workers (ask 0, ask 1, tell 0, ask 2, tell 1, ...), with no timing involved."""

    max_workers = 2

    def submit(self, fn, trial):
        return InProcessEvaluator().submit(fn, trial)


def test_a_resumed_run_prunes_as_the_uninterrupted_one(tmp_path):
    pruner = MedianPruner(warmup_epochs=1, min_trials=3)
    whole = MemoryStore()
    run(Walk(budget=3), whole, 6, evaluator=TwoAtOnce(), objective=climbing, pruner=pruner)
    assert [r.state.value for r in whole.results().values()] == ["complete"] * 5 + ["pruned"]
    events = whole.events()[:7]  # killed while training trial 3, asked before trial 2 was told
    assert events[-3:] == [("tell", 1), ("ask", 3), ("tell", 2)]
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        for kind, i in events:
            store.record_ask(whole.trials()[i]) if kind == "ask" else store.record_tell(whole.results()[i])
        # trial 3 is judged against the two trials told before it was asked (too few: it completes),
        # not against the three told before the resume (below their median at epoch 1: it would be pruned)
        run(Walk(budget=3), store, 6, evaluator=TwoAtOnce(), objective=climbing, pruner=pruner)
        assert store.events() == whole.events()
        assert {i: (r.state, r.metrics, r.curve) for i, r in store.results().items()} == {
            i: (r.state, r.metrics, r.curve) for i, r in whole.results().items()}
