import pytest

from archgraph import ArchGraph
from archgraph.trial import OBJECTIVE, Result, Trial, TrialState

CELL = ArchGraph([(0, 1, "conv(3)")])


def test_trial_round_trips_and_normalises_info_as_json():
    trial = Trial(id=3, arch=[CELL, CELL], budget=2, seed=9, resume_from=1, info={"point": (0.5, 1)})
    assert trial.arch == (CELL, CELL) and trial.info == {"point": [0.5, 1]}  # tuples stored as lists
    assert Trial.from_dict(trial.to_dict()) == trial
    assert Trial(id=0, arch=CELL, budget=1, seed=0).arch == (CELL,)


def test_trial_refuses_bad_budgets_and_non_json_info():
    with pytest.raises(ValueError, match="budget is at least 1 epoch"):
        Trial(id=0, arch=CELL, budget=0, seed=0)
    with pytest.raises(ValueError, match="trial 0: info must be JSON-serialisable"):
        Trial(id=0, arch=CELL, budget=1, seed=0, info={"x": object()})


def test_trials_compare_by_numbering_not_isomorphism():
    relabelled = ArchGraph([(1, 0, "conv(3)")])
    assert relabelled == CELL  # the same architecture...
    assert Trial(id=0, arch=CELL, budget=1, seed=0) != Trial(id=0, arch=relabelled, budget=1, seed=0)  # ...not the same record


def test_result_score_is_the_objective_and_round_trips():
    result = Result(trial_id=2, metrics={OBJECTIVE: 0.75, "val_loss": 0.3}, curve=({"epoch": 0},), checkpoint="c.pt")
    assert OBJECTIVE == "val_accuracy" and result.score == 0.75
    assert Result.from_dict(result.to_dict()) == result


def test_a_failed_result_keeps_its_error_and_traceback_and_competes_for_nothing():
    failed = Result.failure(4, "ValueError: boom", "Traceback (most recent call last):\n  ...\nValueError: boom\n")
    assert failed.state is TrialState.FAILED and failed.metrics == {} and not failed.scored
    assert Result.from_dict(failed.to_dict()) == failed
    with pytest.raises(KeyError):
        failed.score


def test_a_pruned_result_has_the_metrics_it_reached_but_is_not_scored():
    pruned = Result(5, {OBJECTIVE: 0.25, "epochs": 1}, state="pruned")
    assert pruned.state is TrialState.PRUNED and pruned.score == 0.25 and not pruned.scored
    assert Result.from_dict(pruned.to_dict()) == pruned


def test_results_stored_before_trial_states_read_as_complete():
    stored = {"trial_id": 0, "metrics": {OBJECTIVE: 0.5}, "curve": [], "checkpoint": None, "seconds": 1.0}
    assert Result.from_dict(stored) == Result(0, {OBJECTIVE: 0.5}, seconds=1.0)
    assert Result.from_dict(stored).state is TrialState.COMPLETE


def test_only_a_failed_result_has_an_error():
    with pytest.raises(ValueError, match="a failed result needs an error.*Result.failure"):
        Result(0, {}, state=TrialState.FAILED)
    with pytest.raises(ValueError, match="only a failed one has one"):
        Result(0, {OBJECTIVE: 0.5}, error="ValueError: boom")
    with pytest.raises(ValueError, match="not running"):
        Result(0, {}, state="running")
