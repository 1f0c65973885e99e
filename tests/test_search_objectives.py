"""Searches of several objectives: random search and evolution runs keep the Pareto front; evolution
selects as a steady-state NSGA-II (checked against the sorting and crowding written out in
tests/test_pareto.py)."""

import json
from pathlib import Path

import pytest

from archgraph import spaces
from archgraph.cli import main
from archgraph.errors import ArchGraphError
from archgraph.evaluate import InProcessEvaluator
from archgraph.pareto import parse_objectives
from archgraph.search import RandomFeatureSearch, RegularizedEvolution
from archgraph.search.runner import Budget, Runner
from archgraph.search.session import SearchConfig, SearchOutcome
from archgraph.store import MemoryStore
from archgraph.trial import Result, TrialState
from test_pareto import brute_crowding, brute_ranks

OBJECTIVES = ["val_accuracy:max", "parameters:min"]
DIRECTIONS = ["max", "min"]


def fake(trial):
    """Accuracy and size from the architecture; every fifth trial pruned (no size), every seventh failed."""
    edges, vertices = (sum(getattr(c, name) for c in trial.arch) for name in ("num_edges", "num_nodes"))
    accuracy = round(vertices / 24 + (edges * 37 % 11) / 110, 6)  # larger, more accurate: a trade-off
    if trial.id % 7 == 6:
        return Result.failure(trial.id, "RuntimeError: out of memory")
    if trial.id % 5 == 4:
        return Result(trial.id, {"val_accuracy": accuracy}, state=TrialState.PRUNED)
    return Result(trial.id, {"val_accuracy": accuracy, "parameters": 100 * vertices + edges})


def searched(strategy, trials):
    store = MemoryStore()
    Runner(strategy, fake, store=store, evaluator=InProcessEvaluator(), budget=Budget(trials=trials),
           progress=False).run()
    return store


def front_of(store):
    """The trial ids of the run's Pareto front in OBJECTIVES, as the session gives it."""
    outcome = SearchOutcome(Path("run"), store.trials(), list(store.results().values()),
                            objectives=parse_objectives(OBJECTIVES))
    return [t.id for t, _ in outcome.front]


def brute_front(points):
    ranks = brute_ranks(list(points.values()), DIRECTIONS)
    return [key for key, rank in zip(points, ranks) if rank == 0]


def test_evolution_of_two_objectives_selects_and_keeps_members_as_nsga_ii():
    """With sample_size = population_size every member is drawn, so the parent is the population's
    best by crowded comparison; when the population is too large its worst leaves."""
    evolution = RegularizedEvolution(spaces.load("fade"), epochs=1, seed=3, population_size=5, sample_size=5,
                                     objectives=OBJECTIVES)
    store = searched(evolution, 40)
    trials, results = {t.id: t for t in store.trials()}, store.results()
    population, parents = [], 0  # (trial id, values), oldest first
    for kind, trial_id in store.events():
        if kind == "ask" and trials[trial_id].info["parent"] is not None:
            points = [values for _, values in population]
            ranks, distance = brute_ranks(points, DIRECTIONS), brute_crowding(points, DIRECTIONS)
            best = min(range(len(points)), key=lambda i: (ranks[i], -distance[i], i))
            assert trials[trial_id].info["parent"] == population[best][0]
            parents += 1
        elif kind == "tell" and "parameters" in results[trial_id].metrics:
            population.append((trial_id, tuple(results[trial_id].metrics[k] for k in ("val_accuracy", "parameters"))))
            if len(population) > 5:
                points = [values for _, values in population]
                ranks, distance = brute_ranks(points, DIRECTIONS), brute_crowding(points, DIRECTIONS)
                del population[max(range(len(points)), key=lambda i: (ranks[i], -distance[i], i))]
    assert parents > 20 and [t.id for t, _ in evolution.population] == [i for i, _ in population]
    complete = {i: (r.metrics["val_accuracy"], r.metrics["parameters"]) for i, r in results.items()
                if r.state is TrialState.COMPLETE}
    assert front_of(store) == brute_front(complete) and len(front_of(store)) > 1


def test_a_random_search_of_two_objectives_keeps_their_front():
    search = RandomFeatureSearch(spaces.load("fade"), epochs=1, seed=0, draws=1, objectives=OBJECTIVES)
    store = searched(search, 30)
    complete = {i: (r.metrics["val_accuracy"], r.metrics["parameters"]) for i, r in store.results().items()
                if r.state is TrialState.COMPLETE}
    assert front_of(store) == brute_front(complete) and len(front_of(store)) > 1


def test_other_objectives_are_refused_by_a_strategy_that_pursues_accuracy_alone(capsys):
    with pytest.raises(ArchGraphError, match="strategy 'bo' pursues val_accuracy:max alone; other or several "
                                             "objectives \\(parameters:min\\) are searched by random and evolution"):
        SearchConfig(strategy="bo", objectives=["parameters:min"])
    with pytest.raises(ArchGraphError, match="each metric once"):
        SearchConfig(objectives=["flops:min", "flops:max"])
    assert main(["search", "--objective", "latency:fastest", "--out", "never"]) == 2
    assert "an objective is NAME:max or NAME:min" in capsys.readouterr().err


def test_a_two_objective_search_records_its_objectives_and_writes_its_front(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", "--strategy", "evolution", "--objective", "val_accuracy:max", "--objective", "latency:min",
                 "--trials", "5", "--epochs", "1", "--param", "channels=2", "--param", "kernel_size=3",
                 "--batch-size", "256", "--strategy-param", "population_size=3", "--no-progress",
                 "--out", str(run)]) == 0
    out = capsys.readouterr().out
    front = json.loads((run / "front.json").read_text())
    assert front["objectives"] == ["val_accuracy:max", "latency:min"]
    from archgraph.results import read_run

    config, records = read_run(run)
    assert config["objectives"] == ["val_accuracy:max", "latency:min"]
    complete = {r["trial"]: (r["metrics"]["val_accuracy"], -r["metrics"]["latency"]) for r in records
                if r["state"] == "complete"}
    ranks = brute_ranks(list(complete.values()), ["max", "max"])
    assert [t["trial"] for t in front["trials"]] == [i for i, r in zip(complete, ranks) if r == 0]
    assert f"{len(front['trials'])} on the Pareto front of val_accuracy (max), latency (min)" in out
