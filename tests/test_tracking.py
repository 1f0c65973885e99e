import csv
import logging
import sys

import pytest

from archgraph import ArchGraph
from archgraph.errors import ArchGraphError
from archgraph.evaluate import InProcessEvaluator
from archgraph.search.runner import Budget, Runner, TooManyFailures
from archgraph.store import MemoryStore
from archgraph.tracking import Callback, CsvLogger, MlflowLogger, TensorBoardLogger, TrialLog
from archgraph.trial import Result, Trial, TrialState


class Count:
    """A toy strategy: trial i is a path of i + 2 vertices trained ``budget`` epochs."""

    def __init__(self, budget=2):
        self.n, self.budget = 0, budget

    def ask(self):
        self.n += 1
        return Trial.propose(ArchGraph([(i, i + 1) for i in range(self.n)]), budget=self.budget)

    def tell(self, trial, result):
        pass


def objective(failing=(), extra=None):
    """Trial i reaches val accuracy 0.1 * (i + 1) in its last epoch; the ids in ``failing`` raise;
    ``extra`` maps trial ids to more metrics."""
    def train(trial):
        if trial.id in failing:
            raise RuntimeError(f"out of memory in trial {trial.id}")
        curve = tuple({"epoch": e, "train_loss": 1.0 / (e + 1), "val_accuracy": 0.1 * (trial.id + 1) * (e + 1) /
                       trial.budget, "alpha": [0.5, 0.5]} for e in range(trial.budget))
        metrics = {"val_accuracy": curve[-1]["val_accuracy"], "parameters": 100 + trial.id,
                   **(extra or {}).get(trial.id, {})}
        return Result(trial.id, metrics, curve, seconds=1.0 + trial.id)
    return train


def run(store, trials, callbacks, failing=(), extra=None, **kwargs):
    return Runner(Count(), objective(failing, extra), store=store, evaluator=InProcessEvaluator(),
                  budget=Budget(trials=trials), progress=False, callbacks=callbacks, **kwargs).run()


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_run_start(self, run):
        self.events.append(("start", dict(run.config or {}), sorted(run.results), run.trials))

    def on_epoch(self, trial, row):
        self.events.append(("epoch", trial.id, row["epoch"]))

    def on_trial_end(self, trial, result):
        self.events.append(("end", trial.id, result.state.value))

    def on_run_end(self, results):
        self.events.append(("stop", sorted(results)))


def test_callbacks_see_the_start_each_epoch_and_result_and_the_end_even_when_the_run_stops():
    store, recorder = MemoryStore(), Recorder()
    store.set_config({"strategy": "count"})
    with pytest.raises(TooManyFailures):
        run(store, 5, [recorder], failing={2, 3}, max_failures=2)
    assert recorder.events == [("start", {"strategy": "count"}, [], 5),
                               ("epoch", 0, 0), ("epoch", 0, 1), ("end", 0, "complete"),
                               ("epoch", 1, 0), ("epoch", 1, 1), ("end", 1, "complete"),
                               ("end", 2, "failed"), ("end", 3, "failed"), ("stop", [0, 1, 2, 3])]


def test_a_resumed_run_tells_its_callbacks_what_was_recorded_and_reports_only_new_trials():
    store = MemoryStore()
    run(store, 2, [])
    recorder = Recorder()
    run(store, 3, [recorder])
    assert recorder.events == [("start", {}, [0, 1], 3), ("epoch", 2, 0), ("epoch", 2, 1), ("end", 2, "complete"),
                               ("stop", [0, 1, 2])]


def test_the_trial_log_has_one_line_per_trial_with_its_count_state_metrics_and_the_best(caplog):
    caplog.set_level(logging.INFO, logger="archgraph.search")
    store = MemoryStore()
    run(store, 3, [TrialLog()], failing={1})
    run(store, 3, [TrialLog()], retry_failed=True)  # resumed: trial 1 trained again
    assert [r.name for r in caplog.records] == ["archgraph.search"] * 4
    assert caplog.messages == [
        "trial 0 complete (1/3) in 1.0 s: val_accuracy 0.1000, parameters 100; best 0.1000 (trial 0)",
        "trial 1 failed (2/3) in 0.0 s: RuntimeError: out of memory in trial 1; best 0.1000 (trial 0)",
        "trial 2 complete (3/3) in 3.0 s: val_accuracy 0.3000, parameters 102; best 0.3000 (trial 2)",
        "trial 1 retried, complete (3/3) in 2.0 s: val_accuracy 0.2000, parameters 101; best 0.3000 (trial 2)",
    ]


def test_the_trial_log_says_at_which_epoch_a_trial_was_pruned(caplog):
    caplog.set_level(logging.INFO, logger="archgraph.search")
    log = TrialLog()
    trial = Trial(id=4, arch=ArchGraph([(0, 1)]), budget=5, seed=0)
    log.on_trial_end(trial, Result(4, {"val_accuracy": 0.25, "epochs": 2}, state=TrialState.PRUNED, seconds=0.5))
    assert caplog.messages == ["trial 4 pruned at epoch 1 (1) in 0.5 s: val_accuracy 0.2500, epochs 2; best -"]


def read_csv(path):
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_the_csv_logger_appends_epochs_and_trials_and_widens_its_header_for_new_metrics(tmp_path):
    store, folder = MemoryStore(), tmp_path / "logs"
    run(store, 2, [CsvLogger(folder)], failing={1})
    run(store, 3, [CsvLogger(folder)], extra={2: {"flops": 5000}})  # resumed, a new metric
    header, epochs = read_csv(folder / "epochs.csv")
    assert header == ["trial", "epoch", "train_loss", "val_accuracy"]  # numbers only: no alpha list
    assert [(row["trial"], row["epoch"], row["train_loss"]) for row in epochs] == [
        ("0", "0", "1.0"), ("0", "1", "0.5"), ("2", "0", "1.0"), ("2", "1", "0.5")]
    header, trials = read_csv(folder / "trials.csv")
    assert header == ["trial", "state", "seconds", "error", "val_accuracy", "parameters", "flops"]
    assert [(row["trial"], row["state"], row["parameters"], row["flops"]) for row in trials] == [
        ("0", "complete", "100", ""), ("1", "failed", "", ""), ("2", "complete", "102", "5000")]
    assert trials[1]["error"] == "RuntimeError: out of memory in trial 1"


def test_the_tensorboard_logger_writes_each_trials_curve_and_the_search(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional (pip install \"archgraph[tensorboard]\")")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(MemoryStore(), 3, [TensorBoardLogger(tmp_path)], failing={1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search", "trial-0", "trial-2"]

    def scalars(folder, tag):
        events = EventAccumulator(str(tmp_path / folder)).Reload()
        return [(e.step, round(e.value, 6)) for e in events.Scalars(tag)]

    assert scalars("trial-2", "val_accuracy") == [(0, 0.15), (1, 0.3)]
    assert scalars("trial-2", "train_loss") == [(0, 1.0), (1, 0.5)]
    assert scalars("search", "trial/val_accuracy") == [(0, 0.1), (2, 0.3)]
    assert scalars("search", "search/best_val_accuracy") == [(0, 0.1), (1, 0.1), (2, 0.3)]


def test_the_tensorboard_logger_without_tensorboard_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ArchGraphError, match=r'needs the tensorboard package; install it with: pip install '
                                             r'"archgraph\[tensorboard\]"'):
        TensorBoardLogger(tmp_path / "tb")
    assert not (tmp_path / "tb").exists()


def test_the_mlflow_logger_logs_the_search_and_a_nested_run_per_trial(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is optional (pip install mlflow)")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a folder as the tracking store, as a test needs
    uri = (tmp_path / "mlruns").as_uri()
    store = MemoryStore()
    store.set_config({"strategy": "count", "space_params": {"channels": 2}})
    run(store, 2, [MlflowLogger(run_name="toy", tracking_uri=uri)], failing={1})
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("archgraph")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["toy", "trial-0", "trial-1"]
    parent = runs["toy"]
    assert parent.data.params == {"strategy": "count", "space_params.channels": "2"}
    assert parent.info.status == "FINISHED" and runs["trial-1"].info.status == "FAILED"
    assert runs["trial-0"].data.tags["mlflow.parentRunId"] == parent.info.run_id
    history = client.get_metric_history(runs["trial-0"].info.run_id, "val_accuracy")
    assert sorted((m.step, round(m.value, 6)) for m in history) == [(0, 0.05), (1, 0.1)]
    assert [(m.step, m.value) for m in client.get_metric_history(runs["trial-0"].info.run_id, "parameters")] == [
        (1, 100)]
    assert [(m.step, round(m.value, 6)) for m in client.get_metric_history(parent.info.run_id,
                                                                           "trial_val_accuracy")] == [(0, 0.1)]


def test_the_mlflow_logger_without_mlflow_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ArchGraphError, match="MLflow logging needs MLflow; install it with: pip install mlflow"):
        MlflowLogger()
