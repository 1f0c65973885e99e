import numpy as np
import pytest

from archgraph import ArchGraph
from archgraph.bench import NotInTableError, TabularObjective, read_table, write_table
from archgraph.errors import ArchGraphError, BudgetError
from archgraph.evaluate import InProcessEvaluator
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
    with pytest.raises(ArchGraphError, match="a table runs the strategies random, nosh, sh, predictor, not 'bo'"):
        bench.strategy("bo")
    with pytest.raises(BudgetError, match="pass epochs <= 4"):
        bench.strategy("nosh", epochs=8)
