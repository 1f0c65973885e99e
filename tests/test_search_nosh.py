import numpy as np
import pytest
import torch

from archgraph import ArchGraph, spaces
from archgraph.embody import mlp_graph
from archgraph.errors import BudgetError, SpaceError
from archgraph.evaluate import InProcessEvaluator, TrialEvaluator
from archgraph.search import session
from archgraph.search.base import asking
from archgraph.search.nosh import NOSH, PredictorSearch, SuccessiveHalving, pyramid_budgets
from archgraph.search.runner import Budget, Runner
from archgraph.search.session import SearchConfig, resume, search
from archgraph.store import MemoryStore, load_checkpoint
from archgraph.trial import Result, Trial, TrialState
from untimed import measured, untimed

MLP = spaces.load("mlp")


def quality(arch) -> float:
    """A fixed pseudo-random quality in [0, 1) per architecture."""
    return int(arch[0].canonical_hash()[:8], 16) / 16**8


def fake(trial: Trial) -> Result:
    """Accuracy grows with the epochs; the ranking of architectures is the same at every budget."""
    return Result(trial.id, {"val_accuracy": quality(trial.arch) * trial.budget / (trial.budget + 1)})


def by_candidate(scores: dict[int, float]):
    """An objective scoring candidate i as ``scores[i]`` (0.1 if not listed) at every level."""
    return lambda trial: Result(trial.id, {"val_accuracy": scores.get(trial.info["candidate"], 0.1)})


def drive(strategy, objective=fake, rounds=10) -> list[list[Trial]]:
    """Ask a round's trials until ``ask`` says None, tell them all, repeat; the rounds' trials."""
    ask = asking(strategy)
    done = []
    for _ in range(rounds):
        trials = list(iter(ask, None))
        if not trials:
            break
        for t in trials:
            strategy.tell(t, objective(t))
        done.append(trials)
    return done


def promoted(trials: list[Trial], level: int) -> list[int]:
    return [t.info["candidate"] for t in trials if t.info["level"] == level and t.resume_from is not None]


class FakePredictor:
    """Prefers deeper MLPs, with as much torch noise (replayable only if the strategy seeds
    torch's RNG); records what it was fitted on and what it scored."""

    def __init__(self, space=None):
        self.fits, self.scored = [], []

    def fit(self, observations):
        self.fits.append(list(observations))

    def score(self, archs):
        values = np.array([a[0].num_nodes / 10 for a in archs]) + torch.rand(len(archs)).double().numpy()
        self.scored.append((list(archs), values))
        return values


def test_budgets_grow_by_eta_up_to_the_full_training():
    assert pyramid_budgets(9, 3) == [1, 3, 9] and pyramid_budgets(4, levels=1) == [4]
    with pytest.raises(BudgetError, match=r"epochs must be e·3\^k with e = 1: 1, 3, 9, 27, …; the nearest is 9 "
                                          r"\(choose epochs=9, or set min_epochs / levels\)"):
        pyramid_budgets(10, 3)
    with pytest.raises(BudgetError, match=r"e·2\^k with e = 1: 1, 2, 4, 8, …; the nearest are 2 and 4"):
        pyramid_budgets(3)   # archgraph search --strategy nosh's default --epochs
    with pytest.raises(BudgetError, match=r"e·2\^k with e = 3: 3, 6, 12, 24, …; the nearest is 6"):
        pyramid_budgets(8, min_epochs=3)
    with pytest.raises(BudgetError, match=r"a multiple of 2\^2 = 4 with levels=3; the nearest are 8 and 12"):
        pyramid_budgets(10, levels=3)
    with pytest.raises(ValueError, match="not both"):
        pyramid_budgets(8, levels=4, min_epochs=1)


def test_promotions_resume_the_trial_that_trained_the_candidate_to_the_level_below():
    nosh = NOSH(MLP, epochs=4, seed=0, n_new=4)  # levels of 1, 2, 4 epochs
    rounds = drive(nosh, rounds=5)
    assert [len(r) for r in rounds] == [4, 2 + 4, 1 + 2 + 4, 1 + 2 + 4, 1 + 2 + 4]
    last, asked = {}, {}  # candidate -> the trial that trained it last; id -> trial
    for trials in rounds:
        for t in trials:
            if t.resume_from is None:
                assert t.budget == 1 and t.info["candidate"] not in last
            else:
                earlier = asked[t.resume_from]
                assert t.resume_from == last[t.info["candidate"]] and t.budget == 2 * earlier.budget
                assert t.seed == earlier.seed and all(a.is_identical(b) for a, b in zip(t.arch, earlier.arch))
            asked[t.id] = t
        last.update((t.info["candidate"], t.id) for t in trials)
    best_two = sorted(rounds[0], key=lambda t: -fake(t).score)[:2]
    assert promoted(rounds[1], 1) == [t.info["candidate"] for t in best_two]
    arch, score = nosh.best
    assert score == max(fake(t).score for r in rounds for t in r if t.budget == 4)
    epochs = sum(t.budget - (asked[t.resume_from].budget if t.resume_from is not None else 0) for t in asked.values())
    assert nosh.epochs_trained == epochs and nosh.rounds == 5


def test_nosh_discards_nothing_and_promotes_a_left_behind_candidate_later():
    nosh = NOSH(MLP, epochs=4, seed=0, n_new=4)
    r0, r1, r2 = drive(nosh, by_candidate({0: 0.6, 1: 0.9, 2: 0.7, 3: 0.8}), rounds=3)
    assert promoted(r1, 1) == [1, 3]
    assert promoted(r2, 2) == [1] and promoted(r2, 1) == [2, 0]  # left behind in round 1; the newcomers rank lower
    assert nosh.pyramid == [list(range(4, 12)), [3, 2, 0], [1]]
    assert not any(c.discarded for c in nosh.candidates)



def test_a_failed_promotion_is_discarded_and_its_place_goes_to_the_next_best_later():
    scores = by_candidate({0: 0.6, 1: 0.9, 2: 0.7, 3: 0.8})
    nosh = NOSH(MLP, epochs=4, seed=0, n_new=4)
    fail_3_at_level_1 = lambda t: (Result.failure(t.id, "RuntimeError: CUDA out of memory")  # noqa: E731
                                   if (t.info["candidate"], t.info["level"]) == (3, 1) else scores(t))
    r0, r1, r2 = drive(nosh, fail_3_at_level_1, rounds=3)
    assert promoted(r1, 1) == [1, 3]
    assert promoted(r2, 2) == [] and promoted(r2, 1) == [2, 0, 4]  # without the failure: [2, 0]
    assert nosh.candidates[3].discarded and 3 not in sum(nosh.pyramid, [])
    assert len(nosh.observations) == len(r0) + len(r1) - 1 + len(r2)  # the failure taught the predictor nothing


def test_failed_and_pruned_new_candidates_are_discarded_and_never_promoted():
    def objective(t):
        if t.info["candidate"] == 1:
            return Result.failure(t.id, "ValueError: boom")
        if t.info["candidate"] == 2:
            return Result(t.id, {"val_accuracy": 0.99, "epochs": 0}, state=TrialState.PRUNED)
        return fake(t)

    nosh = NOSH(MLP, epochs=4, seed=0, n_new=4)
    rounds = drive(nosh, objective, rounds=4)
    assert all(t.info["candidate"] not in (1, 2) for r in rounds[1:] for t in r if t.resume_from is not None)
    assert nosh.candidates[1].discarded and nosh.candidates[2].discarded and nosh.candidates[1].scores == {}
    assert all(score < 0.99 for _, _, score in nosh.observations)

POOL = [(mlp_graph([(width, act)] * depth),) for width in (4, 8) for act in ("relu", "tanh") for depth in (1, 2, 3)]


@pytest.mark.parametrize("sampler", [POOL, lambda rng: POOL[rng.integers(len(POOL))]], ids=["sequence", "draws"])
def test_a_finite_pool_is_proposed_to_its_last_architecture_and_every_candidate_then_reaches_the_top(sampler):
    nosh = NOSH(MLP, epochs=4, seed=0, n_new=4, sampler=sampler)
    ask = asking(nosh)
    rounds = drive(nosh, rounds=100)
    assert ask() is None and nosh.exhausted
    new = [t.arch for r in rounds for t in r if t.resume_from is None]
    assert sorted(map(str, new)) == sorted(map(str, POOL))  # each architecture once
    assert nosh.pyramid[:2] == [[], []] and sorted(nosh.pyramid[2]) == list(range(12))
    assert nosh.best[1] == max(fake(Trial(0, a, 4, 0)).score for a in POOL)
    assert nosh.epochs_trained == 12 * 4  # every candidate trained once to the top, never twice


def test_once_the_space_runs_out_each_round_promotes_the_best_half_rounded_up_still_waiting_at_every_level():
    nosh = NOSH(MLP, epochs=4, seed=0, n_new=4, sampler=POOL[:4])
    rounds = drive(nosh, by_candidate({0: 0.6, 1: 0.9, 2: 0.7, 3: 0.8}))
    moves = [[(t.info["candidate"], t.info["level"]) for t in r if t.resume_from is not None] for r in rounds]
    # rounds 1-2 are the quotas' (1 and 3 promoted, then 1); from round 3 on, the drain's
    assert moves == [[], [(1, 1), (3, 1)], [(1, 2)], [(3, 2), (2, 1)], [(2, 2), (0, 1)], [(0, 2)]]
    capped = NOSH(MLP, epochs=4, n_new=4, sampler=POOL, candidates=4)  # the thesis's M: it ends, no drain
    assert len(drive(capped)) == 3 and [len(level) for level in capped.pyramid] == [2, 1, 1]


def test_successive_halving_resumes_the_top_fraction_and_discards_the_rest():
    sh = SuccessiveHalving(MLP, epochs=4, seed=0, candidates=8)
    ask = asking(sh)
    rounds = drive(sh)
    assert [[t.budget for t in r] for r in rounds] == [[1] * 8, [2] * 4, [4] * 2]
    assert ask() is None and sh.exhausted
    for before, after in zip(rounds, rounds[1:]):
        best = sorted(before, key=lambda t: -fake(t).score)[:len(after)]
        assert [(t.info["candidate"], t.resume_from) for t in after] == [(t.info["candidate"], t.id) for t in best]
    survivors = [t.info["candidate"] for t in rounds[-1]]
    assert sh.pyramid == [[], [], survivors] and sum(c.discarded for c in sh.candidates) == 6
    assert sh.epochs_trained == 8 * 1 + 4 * 1 + 2 * 2
    assert sh.best[1] == fake(rounds[-1][0]).score
    assert len(drive(SuccessiveHalving(MLP, epochs=9, eta=3))[0]) == 9  # η^(levels - 1) by default


def test_new_candidates_are_the_predictors_top_picks_of_the_pool_not_seen_before():
    predictor = FakePredictor()
    nosh = NOSH(MLP, epochs=4, seed=0, n_new=3, pool_size=40, predictor=predictor)
    rounds = drive(nosh, rounds=4)
    assert len(predictor.fits) == len(predictor.scored) == 3  # round 0 is random: nothing to fit yet
    seen = [t.arch for t in rounds[0]]
    told = [(t.arch, t.budget, fake(t).score) for t in rounds[0]]
    for trials, (pool, values), observations in zip(rounds[1:], predictor.scored, predictor.fits):
        assert observations == told  # every observation so far, at every level
        assert len(pool) == 40 and not any(a in seen for a in pool)
        new = [t.arch for t in trials if t.resume_from is None]
        assert new == [pool[i] for i in np.argsort(-values)[:3]]
        seen += new
        told += [(t.arch, t.budget, fake(t).score) for t in trials]


def test_a_predictor_may_be_given_as_a_factory_and_others_are_refused():
    assert isinstance(NOSH(MLP, epochs=2, predictor=FakePredictor).predictor, FakePredictor)
    with pytest.raises(ValueError, match="predictor must be None, 'gnn'"):
        NOSH(MLP, epochs=2, predictor="forest")
    with pytest.raises(SpaceError, match="pass sampler="):
        NOSH(spaces.load("darts"), epochs=2)
    chain = (mlp_graph([(8, "relu")]),)
    rounds = drive(NOSH(MLP, epochs=2, sampler=lambda rng: chain))
    assert [[(t.arch, t.budget) for t in r] for r in rounds] == [[(chain, 1)], [(chain, 2)]]  # ran out: drained


def test_a_predictor_that_cannot_be_fitted_yet_leaves_the_round_random():
    class Unfittable(FakePredictor):
        def fit(self, observations):
            raise ValueError("no pair to learn from")

    nosh = NOSH(MLP, epochs=2, seed=0, n_new=2, pool_size=10, predictor=Unfittable())
    with pytest.warns(UserWarning, match="round 1: the predictor cannot be fitted yet \\(no pair"):
        rounds = drive(nosh, by_candidate({}), rounds=2)
    assert [len(r) for r in rounds] == [2, 1 + 2] and not nosh.predictor.scored


def test_predictor_search_trains_every_candidate_fully_from_scratch_refitting_between_batches():
    predictor = FakePredictor()
    search_ = PredictorSearch(MLP, epochs=3, seed=0, n_new=2, pool_size=20, predictor=predictor, candidates=6)
    rounds = drive(search_)
    assert [[(t.budget, t.resume_from) for t in r] for r in rounds] == [[(3, None)] * 2] * 3
    assert [len(f) for f in predictor.fits] == [2, 4] and search_.epochs_trained == 18
    assert search_.best[1] == max(fake(t).score for r in rounds for t in r)


def run(strategy, store, trials, process=0):
    """Run until ``trials`` are asked, as in a new process (whose global torch RNG is elsewhere)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(process)
        Runner(strategy, fake, store=store, evaluator=InProcessEvaluator(), budget=Budget(trials=trials),
               progress=False).run()


def test_same_seed_same_run_and_a_replayed_run_ends_as_an_uninterrupted_one():
    def make(seed=0):
        return NOSH(MLP, epochs=4, seed=seed, n_new=4, pool_size=30, predictor=FakePredictor())

    whole, again, other, paused = MemoryStore(), MemoryStore(), MemoryStore(), MemoryStore()
    uninterrupted = make()
    run(uninterrupted, whole, 20)
    run(make(), again, 20, process=1)
    run(make(seed=1), other, 20)
    assert whole.trials() == again.trials() != other.trials()
    run(make(), paused, 6, process=2)  # stops inside round 1
    resumed = make()
    run(resumed, paused, 20, process=3)
    assert paused.trials() == whole.trials() and paused.results() == whole.results()
    assert resumed.pyramid == uninterrupted.pyramid and resumed.epochs_trained == uninterrupted.epochs_trained


@pytest.mark.parametrize("space, params, arch", [
    ("mlp", {}, [mlp_graph([(32, "relu"), "dropout", (16, "tanh")])]),  # dropout: torch's RNG resumes too
    ("fade", {"channels": 2, "kernel_size": 3}, [ArchGraph([(0, 1), (0, 2), (1, 2)])] * 4),
])
def test_a_checkpoint_resumed_to_2k_epochs_equals_training_straight_to_2k(tmp_path, space, params, arch):
    """NOSH's paused candidates continue their learning curves: epoch-k checkpoint resumed to 2k
    gives the weights, curve and metrics of training to 2k from scratch with the same seed."""
    fn = TrialEvaluator(space, "digits", tmp_path, space_params=params, batch_size=256)
    paused = fn(Trial(0, arch, budget=2, seed=5))
    resumed = fn(Trial(1, arch, budget=4, seed=5, resume_from=0))
    straight = fn(Trial(2, arch, budget=4, seed=5))
    assert untimed(resumed.curve) == untimed(straight.curve) and untimed(resumed.curve)[:2] == untimed(paused.curve)
    assert resumed.metrics.keys() == straight.metrics.keys()
    assert all(resumed.metrics[k] == straight.metrics[k] for k in resumed.metrics if k != "latency")  # a timing
    a, b = (load_checkpoint(tmp_path, r.checkpoint)["model"] for r in (resumed, straight))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_nosh_search_resumed_through_the_session_continues_as_an_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.setitem(session.STRATEGIES, "nosh", NOSH)
    config = dict(space="mlp", dataset="wine", strategy="nosh", epochs=4, seed=1, training={"batch_size": 32},
                  strategy_params={"n_new": 4, "pool_size": 10})
    whole = search(SearchConfig(trials=12, **config), tmp_path / "whole", progress=False)
    search(SearchConfig(trials=6, **config), tmp_path / "paused", progress=False)
    resumed = resume(tmp_path / "paused", trials=12, progress=False)
    assert resumed.trials == whole.trials
    assert [(measured(r.metrics), untimed(r.curve)) for r in resumed.results] == [
        (measured(r.metrics), untimed(r.curve)) for r in whole.results]
    # a candidate promoted twice (1 → 2 → 4 epochs) learnt as if trained 4 epochs straight
    top = next(t for t in whole.trials if t.info["level"] == 2)
    straight = TrialEvaluator("mlp", "wine", str(tmp_path / "straight"), split_seed=1, batch_size=32)(
        Trial(0, top.arch, budget=4, seed=top.seed))
    assert untimed(straight.curve) == untimed({r.trial_id: r for r in whole.results}[top.id].curve)
