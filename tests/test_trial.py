import dataclasses
import json
import subprocess
import sys

import pytest

from archgraph import ArchGraph
from archgraph.errors import ArchGraphError
from archgraph.trial import OBJECTIVE, Result, Task, TaskError, TrainArchitecture, Trial, TrialState

CELL = ArchGraph([(0, 1, "conv(3)")])


def test_trial_round_trips_and_normalises_info_as_json():
    trial = Trial(id=3, arch=[CELL, CELL], budget=2, seed=9, resume_from=1, info={"point": (0.5, 1)})
    assert trial.arch == (CELL, CELL) and trial.info == {"point": [0.5, 1]}  # tuples stored as lists
    assert Trial.from_dict(trial.to_dict()) == trial
    assert Trial(id=0, arch=CELL, budget=1, seed=0).arch == (CELL,)


def test_a_trial_trains_its_architecture_unless_its_task_says_otherwise_and_stores_the_task_typed():
    plain = Trial(id=0, arch=CELL, budget=1, seed=0)
    assert plain.task == TrainArchitecture() and plain.to_dict()["task"] == {
        "type": "architecture", "module": "archgraph.trial", "init_from": {}}
    shared = Trial(id=4, arch=CELL, budget=3, seed=0, resume_from=2,
                   task=TrainArchitecture(init_from={"head.weight": (1, "head.weight")}))
    assert shared.to_dict()["task"]["init_from"] == {"head.weight": [1, "head.weight"]}  # as JSON stores it
    back = Trial.from_dict(json.loads(json.dumps(shared.to_dict())))
    assert back == shared and back.task == shared.task and back.sources == {1, 2}
    assert shared != dataclasses.replace(shared, task=TrainArchitecture())  # the task is part of the record


def test_a_task_that_cannot_be_read_or_is_no_task_is_refused_in_one_line():
    with pytest.raises(TaskError, match="unknown task type 'nas' \\(of module mylab.tasks\\); import the module"):
        Task.from_dict({"type": "nas", "module": "mylab.tasks"})  # not archgraph's: never imported
    with pytest.raises(TaskError, match="a task of type 'architecture' cannot be read .*unexpected keyword argument 'rows'"):
        Task.from_dict({"type": "architecture", "rows": 2})
    with pytest.raises(TaskError, match="init_from maps parameter names to \\[source trial id, source parameter\\]"):
        TrainArchitecture(init_from={"head.weight": 3})
    with pytest.raises(TaskError, match="trial 0: its task is a Task"):
        Trial(id=0, arch=CELL, budget=1, seed=0, task={"type": "architecture"})
    assert issubclass(TaskError, ArchGraphError) and issubclass(TaskError, ValueError)


def test_two_task_types_cannot_share_a_tag():
    with pytest.raises(ValueError, match="task type 'architecture' is TrainArchitecture already"):
        @dataclasses.dataclass(frozen=True)
        class Another(Task, tag="architecture"):
            pass


def test_a_stored_task_of_archgraph_is_read_where_its_module_was_never_imported():
    hyper = {"type": "hyper", "module": "archgraph.oneshot.hyper_trial", "rows": 1, "width": 1, "tau": 10.0,
             "shared": True, "cell_dependent": False, "estimator": "all", "warm_start": 0}
    code = ("import sys, json; from archgraph.trial import Task, objective_of; "
            "assert 'archgraph.oneshot.hyper_trial' not in sys.modules; "
            f"task = Task.from_dict(json.loads({json.dumps(hyper)!r})); "
            "print(type(task).__name__, sorted(task.sources), objective_of(task).__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["TrainHyperArchitecture", "[0]", "archgraph.oneshot.hyper_trial"]


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
