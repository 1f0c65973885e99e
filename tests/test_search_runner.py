import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from archgraph import ArchGraph
from archgraph.errors import ArchGraphError
from archgraph.evaluate import InProcessEvaluator
from archgraph.trial import Result, Trial
from archgraph.search.runner import Budget, ResumeError, Runner
from archgraph.store import MemoryStore, SQLiteStore


class Walk:
    """A toy strategy: random path lengths from a seeded Generator; remembers what it was told."""

    def __init__(self, seed=0, budget=2):
        self.rng = np.random.default_rng(seed)
        self.budget = budget
        self.next_id = 0
        self.told: list[tuple[int, float]] = []

    def ask(self):
        n = int(self.rng.integers(2, 6))
        trial = Trial(id=self.next_id, arch=ArchGraph([(i, i + 1) for i in range(n - 1)]), budget=self.budget,
                      seed=int(self.rng.integers(1000)))
        self.next_id += 1
        return trial

    def tell(self, trial, result):
        self.told.append((trial.id, result.score))


def score(trial: Trial) -> Result:
    return Result(trial.id, {"val_accuracy": 1 / trial.arch[0].num_nodes + trial.seed / 1e5})


def run(strategy, store, trials, evaluator=None, objective=score):
    return Runner(strategy, objective, store=store, evaluator=evaluator or InProcessEvaluator(),
                  budget=Budget(trials=trials), progress=False).run()


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
    walk = Walk(seed=3)
    return [walk.ask() for _ in range(4)][-1]


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


def test_a_repeated_trial_id_is_an_error():
    class Repeats(Walk):
        def ask(self):
            trial = super().ask()
            return Trial(id=0, arch=trial.arch, budget=trial.budget, seed=trial.seed)

    with pytest.raises(ArchGraphError, match="asked trial id 0 twice"):
        run(Repeats(), MemoryStore(), 3)
