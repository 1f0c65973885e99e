import dataclasses
import json

import pytest
import torch

from archgraph import ArchGraph, cli
from archgraph.evaluate import TrialEvaluator
from archgraph.hyper import HyperArchitecture
from archgraph.oneshot.hyper_trial import TrainHyperArchitecture, _build, hyper_pool, load_hyper
from archgraph.search.session import SearchConfig, search
from archgraph.relax import choices
from archgraph.store import load_checkpoint
from archgraph.trial import Task, TrainArchitecture, Trial

TINY = {"channels": 2, "kernel_size": 3}
ROW = (ArchGraph([], num_nodes=1), ArchGraph([(0, 1)]), ArchGraph([(0, 1), (0, 2), (1, 2)]))


def hyper_task(warm_start=None, shared=True, rows=4, estimator="sampled"):
    return TrainHyperArchitecture(rows=rows, width=3, tau=10.0, shared=shared, cell_dependent=True,
                                  estimator=estimator, warm_start=warm_start)


def hyper_trial(id=0, warm_start=None, shared=True, rows=4):
    return Trial(id=id, arch=ROW * rows, budget=2, seed=id, info={"anchors": [[0.5] * 3] * rows},
                 task=hyper_task(warm_start, shared, rows))


def test_hyper_pool_reads_the_rows_back():
    assert hyper_pool(hyper_trial()) == [list(ROW)] * 4
    with pytest.raises(ValueError, match="not a hyper trial \\(its task is 'architecture'\\)"):
        hyper_pool(Trial(id=0, arch=ROW, budget=1, seed=0))
    with pytest.raises(ValueError, match="7 cells do not fill 2 rows of 3"):
        hyper_pool(Trial(id=0, arch=ROW * 2 + ROW[:1], budget=1, seed=0, task=hyper_task(rows=2)))


def test_a_hyper_task_round_trips_with_its_type_and_names_the_trial_it_warm_starts_from():
    trial = hyper_trial(5, warm_start=2)
    data = trial.to_dict()
    assert data["task"] == {"type": "hyper", "module": "archgraph.oneshot.hyper_trial", "rows": 4, "width": 3,
                            "tau": 10.0, "shared": True, "cell_dependent": True, "estimator": "sampled",
                            "warm_start": 2, "max_norm": 1.0, "init_std": 0.5, "arch_lr": 1e-3}
    assert Trial.from_dict(data) == trial and Trial.from_dict(data).task == trial.task
    for key in ("max_norm", "init_std", "arch_lr"):  # stored before these existed: the paper's values
        del data["task"][key]
    assert Trial.from_dict(data).task == trial.task
    assert trial.sources == {2} and hyper_trial(6).sources == frozenset()
    assert Task.from_dict(TrainArchitecture().to_dict()) == TrainArchitecture() != hyper_task()


@pytest.mark.parametrize("estimator", ["sampled", "all"])
def test_a_hyper_trial_builds_its_estimator(estimator):
    hyper = _build("fade", [list(ROW)] * 4, hyper_task(estimator=estimator), (1, 8, 8), 10, TINY)
    assert {c.relaxation.estimator for c in choices(hyper)} == {estimator}


def test_a_hyper_trial_trains_the_hyper_architecture_and_reports_its_row_weights(tmp_path):
    evaluator = TrialEvaluator("fade", "digits", tmp_path, space_params=TINY)
    result = evaluator(hyper_trial())
    assert not result.scored and {"hyper_train_accuracy", "hyper_arch_accuracy", "parameters"} <= set(result.metrics)
    assert len(result.curve) == 2
    alpha = torch.tensor(result.curve[-1]["alpha"])
    assert alpha.shape == (4, 3)
    torch.testing.assert_close(alpha.sum(1), torch.ones(4))
    assert result.curve[0]["coefficients"] == [1.0, 1.0, 1.0, 1.0]       # max-norm, r_i from 1 ...
    assert result.curve[1]["coefficients"] == [-1.0, -1.0, -1.0, -1.0]   # ... to -1 (2 epochs)
    summary = load_hyper(tmp_path / "hyper" / "trial-0.json")
    assert summary.space == "fade" and summary.pool == [list(ROW)] * 4
    torch.testing.assert_close(summary.probabilities, alpha.double())
    assert summary.history == [row["alpha"] for row in result.curve] and summary.notes["trial"] == 0
    state = load_checkpoint(tmp_path, result.checkpoint)
    assert state["epochs"] == 2 and len(state["pool"]) == 4
    assert evaluator(hyper_trial()).curve[-1]["alpha"] == result.curve[-1]["alpha"]   # deterministic


def test_a_hyper_trial_reports_how_far_training_moved_alpha_against_its_initial_spread(tmp_path):
    trial = hyper_trial(3)
    result = TrialEvaluator("fade", "digits", tmp_path, space_params=TINY)(trial)
    torch.manual_seed(trial.seed)  # the untrained hyper-architecture, built as the trial builds it
    start = torch.cat([c.alpha.detach().flatten() for c in choices(_build("fade", hyper_pool(trial), trial.task,
                                                                         (1, 8, 8), 10, TINY))])
    trained = load_checkpoint(tmp_path, result.checkpoint)["model"]
    end = torch.cat([v.flatten() for k, v in trained.items() if k.endswith("alpha")])
    assert end.shape == start.shape == (12,)
    assert result.metrics["alpha_travel"] == pytest.approx((end - start).abs().mean().item())
    assert result.metrics["alpha_init_spread"] == pytest.approx(start.std().item())
    assert 0.2 < result.metrics["alpha_init_spread"] < 1.0          # FaDE §3: N(0, 0.5) over 12 draws
    notes = load_hyper(tmp_path / "hyper" / "trial-3.json").notes
    assert notes["alpha_travel"] == result.metrics["alpha_travel"]


def test_a_hyper_trial_follows_its_max_norm_scale_alpha_initialisation_and_alpha_learning_rate(tmp_path):
    evaluator = TrialEvaluator("fade", "digits", tmp_path, space_params=TINY)

    def run(**settings):
        task = dataclasses.replace(hyper_task(), cell_dependent=False, **settings)
        return evaluator(dataclasses.replace(hyper_trial(), task=task))

    result = run(max_norm=0.25, init_std=0.0)
    assert [row["coefficients"] for row in result.curve] == [[0.25] * 4, [-0.25] * 4]
    assert result.metrics["alpha_init_spread"] == 0.0 and result.metrics["alpha_travel"] > 1e-4
    assert run(max_norm=0.25, init_std=0.0, arch_lr=1e-12).metrics["alpha_travel"] < 1e-9


@pytest.mark.parametrize("shared", [True, False])
def test_warm_start_begins_from_the_previous_hyper_trials_weights(tmp_path, monkeypatch, shared):
    evaluator = TrialEvaluator("fade", "digits", tmp_path, space_params=TINY)
    first = evaluator(hyper_trial(0, shared=shared))
    trained = load_checkpoint(tmp_path, first.checkpoint)["model"]
    seen = {}
    original = HyperArchitecture.warm_start

    def spy(self, previous):
        seen.update(previous.state_dict())
        return original(self, previous)

    monkeypatch.setattr(HyperArchitecture, "warm_start", spy)
    evaluator(hyper_trial(1, warm_start=0, shared=shared))
    assert seen.keys() == trained.keys()
    assert all(torch.equal(seen[k], trained[k]) for k in trained)


def test_a_fade_search_run_leaves_scored_architectures_hyper_files_and_figures(tmp_path, capsys):
    config = SearchConfig(strategy="fade", trials=5, epochs=1, space_params=TINY,
                          strategy_params={"hyper_epochs": 1, "draws": 2})
    outcome = search(config, tmp_path / "run", progress=False)
    kinds = [t.task.tag for t in outcome.trials]
    assert kinds == ["hyper", "architecture", "architecture", "hyper", "architecture"]
    best_trial, best = outcome.best
    assert best.scored and best_trial.task == TrainArchitecture() and len(best_trial.arch) == 4
    run = tmp_path / "run"
    assert json.loads((run / "best.json").read_text())["trial"] == best_trial.id
    assert all((run / name).stat().st_size > 0 for name in ("trajectory.png", "anchors.png", "progress.png"))
    assert sorted(p.name for p in (run / "hyper").iterdir()) == ["trial-0.json", "trial-3.json"]
    second = load_hyper(run / "hyper" / "trial-3.json")
    assert second.notes["anchors"] == outcome.trials[3].info["anchors"]

    capsys.readouterr()
    cli._print_results(outcome)
    moved = [r.metrics["alpha_travel"] for r in outcome.results if r.trial_id in (0, 3)]
    assert f"moved α by a mean |Δα| of {sum(moved) / 2:.3f} per hyper-architecture" in capsys.readouterr().out
    assert cli.main(["ranks", str(run / "hyper" / "trial-3.json"), "--top", "3",
                     "--picture", str(tmp_path / "rows.png")]) == 0
    out = capsys.readouterr().out
    assert "4 rows × 7 cells = 2,401 paths, " in out and " distinct architectures (distinct cells per row: [" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))]) == 3
    assert sum(line.startswith("row ") and "weights:" in line for line in out.splitlines()) == 4 and (tmp_path / "rows.png").stat().st_size > 0
    assert f"moved α by a mean |Δα| of {second.notes['alpha_travel']:.3f} against an initial spread of " in out


def test_ranks_of_a_missing_file_says_where_they_are(tmp_path, capsys):
    assert cli.main(["ranks", str(tmp_path / "nope.json")]) == 2
    assert "RUN_DIR/hyper/" in capsys.readouterr().err
