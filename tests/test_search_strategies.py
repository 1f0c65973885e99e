import numpy as np
import pytest

from archgraph import SpaceError, spaces
from archgraph.trial import Result, Trial, TrialState
from archgraph.search.evolution import RegularizedEvolution
from archgraph.search.base import asking, trial_seed
from archgraph.search.feature_search import BayesianFeatureSearch, RandomFeatureSearch

FADE = spaces.load("fade")


def told(trial: Trial, value: float) -> Result:
    return Result(trial.id, {"val_accuracy": value})


def failed(trial: Trial) -> Result:
    return Result.failure(trial.id, "RuntimeError: CUDA out of memory")


def pruned(trial: Trial, value: float) -> Result:
    return Result(trial.id, {"val_accuracy": value, "epochs": 1}, state=TrialState.PRUNED)


def test_random_search_turns_each_point_into_draws_trials_of_its_boxes():
    search = RandomFeatureSearch(FADE, epochs=2, seed=0, draws=5)
    ask = asking(search)
    trials = [ask() for _ in range(10)]
    assert [t.id for t in trials] == list(range(10))
    assert [t.info["point"] for t in trials] == [0] * 5 + [1] * 5
    assert all(t.budget == 2 and t.seed == trial_seed(0, t.id) for t in trials)
    for t in trials:
        point = np.array(t.info["coordinates"])
        assert point.shape == (4, 3) and ((0 <= point) & (point <= 1)).all()
        for cell, cell_point in zip(t.arch, point):
            assert 1 <= cell.num_nodes <= 5
            # each cell comes from the bucket of its cell's point
            assert cell in search.domain.features.members(search.domain.generator.bucket(cell_point))


def test_random_search_is_deterministic_in_its_seed():
    a, b, c = (RandomFeatureSearch(FADE, epochs=1, seed=s) for s in (4, 4, 5))
    ta, tb, tc = ([ask() for _ in range(6)] for ask in map(asking, (a, b, c)))
    assert ta == tb and ta != tc


def test_bo_waits_for_a_point_then_tells_its_median_as_a_ucb_minimisation():
    search = BayesianFeatureSearch(FADE, epochs=1, seed=0, draws=3)
    ask = asking(search)
    first = [ask() for _ in range(3)]
    assert ask() is None  # the point's draws are not told yet
    for t, value in zip(first, [0.2, 0.9, 0.5]):
        search.tell(t, told(t, value))
    assert ask() is not None
    per_cell = search.optimizers
    assert len(per_cell) == 4 and all(opt.yi == [-0.5] for opt in per_cell)  # the median, negated
    assert all(opt.acq_func == "LCB" and opt.acq_func_kwargs == {"kappa": 2.5, "xi": 0.0} for opt in per_cell)
    point = np.array(first[0].info["coordinates"])
    assert all(np.allclose(opt.Xi[0], row) for opt, row in zip(per_cell, point))


def test_bo_over_the_joint_space_has_one_optimiser():
    search = BayesianFeatureSearch(FADE, epochs=1, seed=0, draws=1, per_cell=False)
    assert len(search.optimizers) == 1 and len(search.optimizers[0].space.dimensions) == 12


def test_point_searches_and_evolution_refuse_a_space_with_vertex_ops():
    for strategy in (RandomFeatureSearch, BayesianFeatureSearch, RegularizedEvolution):
        with pytest.raises(SpaceError, match="topology-only spaces such as 'fade' or the 'nb201' and 'darts'"):
            strategy(spaces.load("mlp"), epochs=1)


def test_evolution_mutates_the_best_of_a_sample_and_ages_out_the_oldest():
    search = RegularizedEvolution(FADE, epochs=1, seed=0, population_size=4, sample_size=4)
    ask = asking(search)
    initial = [ask() for _ in range(4)]
    assert all(t.info["parent"] is None for t in initial)
    for t, value in zip(initial, [0.1, 0.7, 0.3, 0.2]):
        search.tell(t, told(t, value))
    child = ask()
    assert child.info["parent"] == 1  # sample = whole population: the best is the parent
    changed = [a != b for a, b in zip(child.arch, initial[1].arch)]
    assert sum(changed) == 1  # one cell mutated
    assert all(c.num_nodes <= FADE.max_vertices for c in child.arch)
    search.tell(child, told(child, 0.0))
    assert [t.id for t, _ in search.population] == [1, 2, 3, 4]  # trial 0, the oldest, left


def test_evolution_waits_for_its_initial_population():
    search = RegularizedEvolution(FADE, epochs=1, seed=0, population_size=2, sample_size=1)
    ask = asking(search)
    ask(), ask()
    assert ask() is None


def test_random_search_moves_on_from_failed_draws():
    failing, working = (RandomFeatureSearch(FADE, epochs=1, seed=0, draws=2) for _ in range(2))
    ask_working = asking(working)
    ask_failing = asking(failing)
    for _ in range(6):
        a, b = ask_failing(), ask_working()
        assert a == b  # the same proposals whatever was told
        failing.tell(a, failed(a))
        working.tell(b, told(b, 0.5))
    assert failing.scores == {0: [None, None], 1: [None, None], 2: [None, None]}


def test_bo_leaves_failed_draws_out_of_a_points_median_and_tells_an_all_failed_point_as_the_worst():
    search = BayesianFeatureSearch(FADE, epochs=1, seed=0, draws=3)
    ask_search = asking(search)
    first = [ask_search() for _ in range(3)]
    for t, result in zip(first, [failed(first[0]), told(first[1], 0.9), pruned(first[2], 0.5)]):
        search.tell(t, result)
    assert all(opt.yi == [-0.7] for opt in search.optimizers)  # median(0.9, 0.5): a pruned draw counts as reached
    second = [ask_search() for _ in range(3)]
    assert all(t.info["point"] == 1 for t in second)
    for t in second:
        search.tell(t, failed(t))
    assert all(opt.yi == [-0.7, -0.7] for opt in search.optimizers)  # the worst median so far
    assert ask_search().info["point"] == 2  # the search goes on
    alone = BayesianFeatureSearch(FADE, epochs=1, seed=0, draws=1)
    ask_alone = asking(alone)
    t = ask_alone()
    alone.tell(t, failed(t))
    assert all(opt.yi == [0.0] for opt in alone.optimizers)  # nothing seen yet: the worst accuracy, 0


def test_evolution_discards_failures_and_refills_its_initial_population():
    search = RegularizedEvolution(FADE, epochs=1, seed=0, population_size=3, sample_size=3)
    ask = asking(search)
    initial = [ask() for _ in range(3)]
    assert ask() is None
    search.tell(initial[0], told(initial[0], 0.5))
    search.tell(initial[1], failed(initial[1]))
    replacement = ask()
    assert replacement.id == 3 and replacement.info["parent"] is None  # a random member in the failure's place
    search.tell(initial[2], pruned(initial[2], 0.2))
    search.tell(replacement, told(replacement, 0.4))
    assert [(t.id, values) for t, values in search.population] == [(0, (0.5,)), (2, (0.2,)), (3, (0.4,))]
    child = ask()
    assert child.info["parent"] == 0
    search.tell(child, failed(child))
    assert [t.id for t, _ in search.population] == [0, 2, 3]  # a failed child joins nobody, ages nobody out
    assert ask().info["parent"] == 0


def test_trial_seeds_are_independent_streams():
    seeds = {trial_seed(s, i) for s in range(3) for i in range(100)}
    assert len(seeds) == 300
