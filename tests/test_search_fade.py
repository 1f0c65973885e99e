import numpy as np
import pytest

from archgraph import SpaceError, spaces
from archgraph.evaluate import InProcessEvaluator
from archgraph.search.fade import FadeSearch, pseudo_gradient_step
from archgraph.search.base import asking, trial_seed
from archgraph.search.runner import Budget, Runner
from archgraph.oneshot.hyper_trial import TrainHyperArchitecture
from archgraph.store import MemoryStore
from archgraph.trial import Result, TrainArchitecture, Trial

OOM = "RuntimeError: CUDA out of memory"

FADE = spaces.load("fade")


def hyper_result(trial: Trial, beta: np.ndarray) -> Result:
    return Result(trial.id, {"hyper_train_accuracy": 0.5}, curve=({"epoch": 1, "alpha": beta.tolist()},))


def uniform(search: FadeSearch) -> np.ndarray:
    return np.full((4, search.width), 1 / search.width)


def is_hyper(trial: Trial) -> bool:
    return isinstance(trial.task, TrainHyperArchitecture)


def test_a_step_is_one_hyper_trial_of_the_anchor_pools_then_validation_draws():
    search = FadeSearch(FADE, epochs=3, seed=0, hyper_epochs=5, draws=2)
    ask = asking(search)
    hyper, *validation = [ask() for _ in range(3)]
    assert ask() is None                       # the next step needs the hyper trial's weights
    assert search.width == 7 and len(hyper.arch) == 4 * 7
    assert hyper.task == TrainHyperArchitecture(rows=4, width=7, tau=10.0, shared=True, cell_dependent=False,
                                                estimator="all", warm_start=None)
    assert hyper.budget == 5 and hyper.seed == trial_seed(0, 0) and hyper.info.keys() == {"step", "anchors"}
    anchors = np.array(hyper.info["anchors"])
    assert anchors.shape == (4, 3) and ((0 <= anchors) & (anchors <= 1)).all()
    offsets = search.offsets()
    np.testing.assert_allclose(offsets[1:], [[.25, 0, 0], [-.25, 0, 0], [0, .25, 0], [0, -.25, 0],
                                             [0, 0, .25], [0, 0, -.25]])
    for i, anchor in enumerate(anchors):
        for j, cell in enumerate(hyper.arch[7 * i:7 * i + 7]):
            assert cell in search.generator.space.members(search.generator.bucket(anchor + offsets[j]))
    for t in validation:
        assert t.budget == 3 and t.task == TrainArchitecture() and t.info["point"] == 0
        assert all(cell in search.generator.space.members(search.generator.bucket(a)) for cell, a in zip(t.arch, anchors))



def test_a_failed_hyper_trial_leaves_the_anchors_and_the_next_step_warm_starts_from_the_last_completed_one():
    search = FadeSearch(FADE, epochs=1, seed=0, draws=1)
    ask = asking(search)
    hyper0, draw0 = ask(), ask()
    search.tell(hyper0, hyper_result(hyper0, np.random.default_rng(0).dirichlet(np.ones(7), size=4)))
    search.tell(draw0, Result.failure(draw0.id, OOM))  # a failed validation draw is only recorded
    hyper1, draw1 = ask(), ask()
    assert hyper1.task.warm_start == hyper0.id and hyper1.sources == {hyper0.id} and hyper1.info["step"] == 1
    anchors = search.anchors.copy()
    search.tell(hyper1, Result.failure(hyper1.id, OOM))
    search.tell(draw1, Result(draw1.id, {"val_accuracy": 0.5}))
    assert np.array_equal(search.anchors, anchors) and len(search.trajectory) == 2
    hyper2 = ask()
    assert is_hyper(hyper2) and hyper2.task.warm_start == hyper0.id  # not the failed one's
    assert hyper2.info["step"] == 1 and hyper2.info["anchors"] == hyper1.info["anchors"]
    assert hyper2.arch != hyper1.arch  # new pools around the same anchors

def test_tell_moves_each_anchor_by_the_pseudo_gradient():
    search = FadeSearch(FADE, epochs=1, seed=1, draws=0, step=0.5)
    ask = asking(search)
    hyper = ask()
    before = search.anchors.copy()
    beta = np.random.default_rng(0).dirichlet(np.ones(7), size=4)
    search.tell(hyper, hyper_result(hyper, beta))
    expected = before.copy()
    for i in range(4):
        for k in range(3):  # M_i + λ Σ_k e_k (β(M + γ e_k) − β(M − γ e_k)), clipped
            expected[i, k] += 0.5 * (beta[i, 1 + 2 * k] - beta[i, 2 + 2 * k])
    np.testing.assert_allclose(search.anchors, np.clip(expected, 0, 1))
    assert len(search.trajectory) == 2 and np.allclose(search.trajectory[0], before)
    nxt = ask()
    assert is_hyper(nxt) and nxt.info["step"] == 1
    np.testing.assert_allclose(nxt.info["anchors"], search.anchors.round(6))


def test_uniform_weights_leave_the_anchors_and_clipping_keeps_them_in_the_unit_cube():
    anchors = np.array([[0.1, 0.5, 0.95]])
    np.testing.assert_array_equal(pseudo_gradient_step(anchors, np.full((1, 7), 1 / 7), 1.0), anchors)
    pushed = pseudo_gradient_step(anchors, np.array([[0, 0, 1, 0, 0, 1, 0]]), 1.0)
    np.testing.assert_array_equal(pushed, [[0.0, 0.5, 1.0]])


def test_validation_trials_are_told_without_moving_anything():
    search = FadeSearch(FADE, epochs=1, seed=0, draws=1)
    ask = asking(search)
    hyper, val = ask(), ask()
    search.tell(val, Result(val.id, {"val_accuracy": 0.9}))
    assert ask() is None and len(search.trajectory) == 1
    search.tell(hyper, hyper_result(hyper, uniform(search)))
    assert is_hyper(ask())


def test_the_search_is_deterministic_and_resumes_from_its_store():
    def objective(trial):
        if is_hyper(trial):
            rng = np.random.default_rng(trial.seed)
            return hyper_result(trial, rng.dirichlet(np.ones(7), size=4))
        return Result(trial.id, {"val_accuracy": sum(c.num_edges for c in trial.arch) / 40})

    def run(store, trials):
        runner = Runner(FadeSearch(FADE, epochs=1, seed=2, draws=2), objective, store=store,
                        evaluator=InProcessEvaluator(), budget=Budget(trials=trials), progress=False)
        return runner.run()

    whole = run(MemoryStore(), 12)
    store = MemoryStore()
    run(store, 5)
    resumed = run(store, 12)
    assert [r.to_dict() for r in resumed] == [r.to_dict() for r in whole]
    assert [is_hyper(t) for t in store.trials()][:6] == [True, False, False, True, False, False]


def test_warm_start_names_the_previous_hyper_trial():
    search = FadeSearch(FADE, epochs=1, seed=0, draws=1, warm_start=True)
    ask = asking(search)
    first = ask()
    ask()
    search.tell(first, hyper_result(first, uniform(search)))
    assert first.task.warm_start is None and ask().task.warm_start == first.id


def test_the_max_norm_scale_and_alpha_settings_reach_the_hyper_trials():
    hyper = FadeSearch(FADE, epochs=1, max_norm=0.01, init_std=0.1, arch_lr=0.0065).ask()
    assert (hyper.task.max_norm, hyper.task.init_std, hyper.task.arch_lr) == (0.01, 0.1, 0.0065)


def test_bad_settings_and_reports_get_clear_errors():
    with pytest.raises(ValueError, match="gamma > 0"):
        FadeSearch(FADE, epochs=1, gamma=0)
    with pytest.raises(ValueError, match="max_norm >= 0, init_std >= 0 and arch_lr > 0; got max_norm=-1"):
        FadeSearch(FADE, epochs=1, max_norm=-1)
    with pytest.raises(ValueError, match="estimator is 'sampled' .* or 'all'"):
        FadeSearch(FADE, epochs=1, estimator="gdas")
    with pytest.raises(SpaceError, match="topology-only"):
        FadeSearch(spaces.load("nb201"), epochs=1)
    search = FadeSearch(FADE, epochs=1, draws=0)
    ask = asking(search)
    hyper = ask()
    with pytest.raises(ValueError, match=r"expected \(4, 7\)"):
        search.tell(hyper, hyper_result(hyper, np.ones((4, 5)) / 5))


@pytest.mark.parametrize("seed", range(5))
def test_a_rows_pool_repeats_a_dag_only_where_its_bucket_holds_nothing_new(seed):
    search = FadeSearch(FADE, epochs=3, seed=seed, draws=0)
    ask = asking(search)
    hyper = ask()
    anchors, offsets = np.array(hyper.info["anchors"]), search.offsets()
    repeats = 0
    for i, anchor in enumerate(anchors):
        row = hyper.arch[7 * i:7 * i + 7]
        for j, cell in enumerate(row):
            members = search.generator.space.members(search.generator.bucket(anchor + offsets[j]))
            assert cell in members
            if cell in row[:j]:
                repeats += 1
                assert all(g in row[:j] for g in members), f"row {i} repeats a DAG where its bucket had a new one"
    assert repeats < 4 * 7 // 2
