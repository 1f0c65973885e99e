import numpy as np
import pytest

from archgraph import ArchGraph, spaces
from archgraph.bench import NotInTableError, OnTable, PoolBO, TabularObjective, bootstrap_interval, read_table, write_table
from archgraph.errors import ArchGraphError, BudgetError
from archgraph.evaluate import InProcessEvaluator
from archgraph.search.base import asking
from archgraph.search.feature_search import cell_feature_space
from archgraph.search.runner import Budget, Runner
from archgraph.store import MemoryStore
from archgraph.trial import Trial

ONE = ArchGraph([], num_nodes=1)
FIRST_CELLS = [ONE, ArchGraph([(0, 1)]), ArchGraph([(0, 1), (1, 2)]), ArchGraph([(0, 1), (0, 2)]),
               ArchGraph([(0, 2), (1, 2)]), ArchGraph([(0, 1), (1, 2), (0, 2)])]
ARCHS = [(cell, ONE, ONE, ONE) for cell in FIRST_CELLS]
# per architecture i, seed s, epoch e: a distinct accuracy; architecture i ranks i-th from the bottom
VAL = [[[round(0.1 * i + 0.01 * e + 0.001 * s, 4) for e in range(1, 5)] for s in range(2)] for i in range(6)]
TEST = [[round(0.1 * i + 0.05 + 0.002 * s, 4) for s in range(2)] for i in range(6)]


def table() -> dict:
    rows = [{"cells": [c.to_dict() for c in arch], "val_accuracy": VAL[i], "test_accuracy": TEST[i],
             "seconds": [1.0, 1.0]} for i, arch in enumerate(ARCHS)]
    return {"format": 2, "space": "fade", "dataset": "digits", "seeds": 2, "settings": {}, "architectures": rows}


def test_a_trial_gets_the_curve_to_its_budget_mean_over_seeds_or_its_own_seeds():
    mean, own = TabularObjective(table()), TabularObjective(table(), seeds="trial")
    result = mean(Trial(0, ARCHS[2], budget=3, seed=5))
    assert result.metrics == {"val_accuracy": pytest.approx((0.23 + 0.231) / 2), "epochs": 3}  # no test before E
    assert [row["val_accuracy"] for row in result.curve] == pytest.approx([0.2105, 0.2205, 0.2305])
    assert [row["epoch"] for row in result.curve] == [1, 2, 3]
    full = own(Trial(0, ARCHS[2], budget=4, seed=5))  # seed 5 → the training 5 mod 2 = 1
    assert full.metrics == {"val_accuracy": 0.241, "epochs": 4, "test_accuracy": 0.252}
    assert own(Trial(1, ARCHS[2], budget=4, seed=4)).metrics["val_accuracy"] == 0.24
    np.testing.assert_allclose(mean.curve(ARCHS[5]), np.mean(VAL[5], axis=0))
    assert mean.test_accuracy(ARCHS[5]) == pytest.approx(0.551) and mean.epochs == 4 and len(mean) == 6


def test_isomorphic_cells_find_their_row_and_an_architecture_not_in_the_table_is_refused():
    bench = TabularObjective(table())
    relabelled = (ArchGraph([(2, 1), (1, 0), (2, 0)]), ONE, ONE, ONE)  # the triangle of ARCHS[5], vertices reversed
    assert bench.lookup(relabelled) == 5 and bench(Trial(0, relabelled, 1, 0)).metrics["val_accuracy"] == 0.5105
    with pytest.raises(NotInTableError, match="is not in the table of 6 fade architectures; draw from the table"):
        bench(Trial(1, (ONE, ArchGraph([(0, 1)]), ONE, ONE), 1, 0))  # the chain in the second cell, not the first
    assert issubclass(NotInTableError, ArchGraphError) and bench.epochs_spent == 1


def test_each_trial_is_charged_the_epochs_it_adds_to_the_trial_it_resumes():
    bench = TabularObjective(table())
    bench(Trial(0, ARCHS[0], 1, 0))
    bench(Trial(1, ARCHS[1], 2, 0))
    bench(Trial(2, ARCHS[0], 4, 0, resume_from=0))
    assert bench.epochs_spent == 1 + 2 + 3
    with pytest.raises(ArchGraphError, match="resumes trial 1 of another architecture"):
        bench(Trial(3, ARCHS[0], 4, 0, resume_from=1))
    with pytest.raises(ArchGraphError, match="which this objective never answered"):
        bench(Trial(4, ARCHS[0], 4, 0, resume_from=9))
    with pytest.raises(BudgetError, match="ask for 1 to 4"):
        bench(Trial(5, ARCHS[0], 5, 0))
    assert bench.epochs_spent == 6


@pytest.mark.parametrize("name", ["tiny.json", "tiny.json.gz"])
def test_a_table_is_written_and_read_back_and_a_first_format_row_reads_as_one_seed(tmp_path, name):
    data = table()
    data["architectures"].append({"cells": [ArchGraph([(0, 1), (0, 2), (1, 3)]).to_dict(), *[ONE.to_dict()] * 3],
                                  "val_accuracy": [0.1, 0.2, 0.3, 0.4], "test_accuracy": 0.35, "seconds": 2.0})
    write_table(data, tmp_path / name)
    assert read_table(tmp_path / name) == data and not list(tmp_path.glob("*.tmp"))
    bench = TabularObjective(tmp_path / name, seeds="trial")
    assert len(bench) == 7 and bench(Trial(0, bench.archs[6], 4, seed=3)).metrics["test_accuracy"] == 0.35


def run(bench: TabularObjective, strategy, budget: Budget):
    return Runner(strategy, bench, store=MemoryStore(), evaluator=InProcessEvaluator(), budget=budget,
                  progress=False).run()


def test_nosh_runs_against_the_table_through_the_runner_to_every_architecture_at_the_top():
    bench = TabularObjective(table())
    nosh = bench.strategy("nosh", seed=0, n_new=4)
    results = run(bench, nosh, Budget(epochs=1000))
    assert nosh.exhausted and bench.epochs_spent == nosh.epochs_trained == 6 * 4  # drained: all six to E = 4
    assert nosh.best == (ARCHS[5], pytest.approx(np.mean(VAL[5], axis=0)[-1]))
    assert sorted(r.metrics["test_accuracy"] for r in results if r.metrics["epochs"] == 4) == pytest.approx(
        np.mean(TEST, axis=1))


def test_random_sh_and_predictor_search_draw_only_the_tables_architectures():
    bench = TabularObjective(table())
    results = run(bench, bench.strategy("random", seed=1), Budget(trials=4))
    assert [r.metrics["epochs"] for r in results] == [4] * 4 and bench.epochs_spent == 16
    sh_bench = TabularObjective(table())
    sh = sh_bench.strategy("sh", seed=0, candidates=4, epochs=4)  # budgets 1, 2, 4
    run(sh_bench, sh, Budget(epochs=1000))
    assert sh.exhausted and sh_bench.epochs_spent == 4 * 1 + 2 * 1 + 1 * 2 and sh.best[0] == max(
        (c.arch for c in sh.candidates), key=lambda a: sh_bench.lookup(a))
    predictor = TabularObjective(table())
    run(predictor, predictor.strategy("predictor", seed=0, n_new=2, epochs=2), Budget(epochs=1000))
    assert predictor.epochs_spent == 6 * 2
    with pytest.raises(ArchGraphError, match="a table runs the strategies random, nosh, sh, predictor, .*, not 'rl'"):
        bench.strategy("rl")
    with pytest.raises(BudgetError, match="pass epochs <= 4"):
        bench.strategy("nosh", epochs=8)


@pytest.mark.parametrize("name", ["random-features", "bo", "evolution", "bo-pool"])
def test_feature_space_strategies_propose_each_table_architecture_once_then_stop(name):
    bench = TabularObjective(table())
    params = {"evolution": {"population_size": 3, "sample_size": 2}, "bo": {"initial_points": 2},
              "bo-pool": {"initial_points": 2}}
    strategy = bench.strategy(name, seed=3, **params.get(name, {}))
    ask, rows = asking(strategy, seed=3), []
    while (trial := ask()) is not None:
        rows.append(bench.lookup(trial.arch))   # raises NotInTableError for any other architecture
        strategy.tell(trial, bench(trial))
    assert sorted(rows) == list(range(6)) and bench.epochs_spent == 6 * 4


class Fixed:
    """Proposes the given architectures in turn."""

    def __init__(self, archs):
        self.archs = list(archs)

    def ask(self):
        return Trial.propose(self.archs.pop(0), 4) if self.archs else None

    def tell(self, trial, result):
        self.told = trial


def test_on_table_moves_a_proposal_to_the_nearest_unproposed_architecture_in_feature_coordinates():
    bench = TabularObjective(table())
    outside = (ArchGraph([(0, 1), (1, 2), (2, 3)]), ONE, ONE, ONE)   # a 4-vertex path: in no row
    wrapped = OnTable(Fixed([ARCHS[1], outside, outside]), bench)
    features = cell_feature_space(spaces.load("fade"))
    assert wrapped.ask().arch == ARCHS[1]   # a table member not proposed before stays
    distance = [np.sum([(features.embed(a) - features.embed(b)) ** 2 for a, b in zip(arch, outside)])
                for arch in ARCHS]
    order = [i for i in np.argsort(distance, kind="stable") if i != 1]
    first, second = wrapped.ask(), wrapped.ask()
    assert [bench.lookup(first.arch), bench.lookup(second.arch)] == order[:2]
    assert first.info["proposed"] == [c.to_dict() for c in outside]


def test_pool_bo_takes_the_highest_ucb_of_a_gp_fitted_to_what_it_was_told():
    bench = TabularObjective(table())
    bo = PoolBO(bench, epochs=4, seed=0, initial_points=3)
    ask = asking(bo)
    for _ in range(3):
        trial = ask()
        assert ask() is None   # sequential
        bo.tell(trial, bench(trial))
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel() * Matern(np.ones(bo.points.shape[1]), (1e-2, 1e3), nu=2.5) + WhiteKernel(1e-2)
    gp = GaussianProcessRegressor(kernel, normalize_y=True).fit(bo.points[bo.rows], bo.values)
    rest = [i for i in range(6) if i not in bo.rows]
    mean, sd = gp.predict(bo.points[rest], return_std=True)
    assert bench.lookup(ask().arch) == rest[int(np.argmax(mean + 2.5 * sd))]
    assert bo.values == [np.mean(VAL[i], axis=0)[-1] for i in bo.rows]


def test_bootstrap_interval_matches_the_exact_bootstrap_distribution():
    # means of resamples of [0, 0, 0, 1]: k/4 with k ~ Binomial(4, 1/4); P(k <= 2) = 0.949, P(k <= 3) = 0.996
    assert bootstrap_interval(np.mean, [0, 0, 0, 1]) == (0.0, 0.75)
    assert bootstrap_interval(np.mean, [0, 0, 0, 1], level=0.8) == (0.0, 0.5)   # P(k = 0) = 0.316 > 0.1
    # a constant sample: every resample is that constant, whatever the statistic
    low, high = bootstrap_interval(lambda c: c.mean(0), np.array([[1.0, 5.0]] * 3))
    assert low.tolist() == high.tolist() == [1.0, 5.0]
    # two samples resampled independently; a censored (infinite) median is an end like any other
    assert bootstrap_interval(lambda a, b: np.median(a) / np.median(b), [np.inf] * 3, [2.0, 2.0]) == (np.inf, np.inf)
    with pytest.raises(ArchGraphError, match="at least one observation"):
        bootstrap_interval(np.mean, [])


def test_evolution_mutates_only_cells_a_mutation_can_change():
    from archgraph import spaces
    from archgraph.errors import SpaceError
    from archgraph.search.feature_search import FeatureDomain

    domain, rng = FeatureDomain(spaces.load("fade")), np.random.default_rng(0)
    for _ in range(20):   # ARCHS[1]: its first cell an edge, the other three single vertices
        child = domain.mutate_architecture(ARCHS[1], rng)
        assert child[1:] == ARCHS[1][1:] and child[0] != ARCHS[1][0]
    with pytest.raises(SpaceError, match="every cell of .* is a single vertex"):
        domain.mutate_architecture(ARCHS[0], rng)
