import dataclasses
import pickle
import subprocess
import sys

import pytest
import torch

import archgraph.evaluate as evaluate_module
from archgraph import ArchGraph, spaces
from archgraph.cost import count_flops
from archgraph.embody import mlp_graph
from archgraph.errors import ArchGraphError, SpaceError
from archgraph.evaluate import (
    Evaluator,
    InProcessEvaluator,
    ProcessPoolEvaluator,
    RayEvaluator,
    TrialError,
    TrialEvaluator,
)
from archgraph.report import DivergedError, Reported, Reporter
from archgraph.trial import Result, Task, TaskError, TrainArchitecture, Trial, TrialState, register_objective
from archgraph.store import load_checkpoint

TINY = {"channels": 2, "kernel_size": 3}
CHAIN = ArchGraph([(0, 1)])
DIAMOND = ArchGraph([(0, 1), (0, 2), (1, 3), (2, 3)])
TRIALS = (
    Trial(id=0, arch=[CHAIN] * 4, budget=1, seed=0),
    Trial(id=1, arch=[DIAMOND, CHAIN, DIAMOND, CHAIN], budget=1, seed=1),
)
RESUMED = Trial(id=2, arch=[CHAIN] * 4, budget=2, seed=0, resume_from=0)
TOO_BIG = Trial(id=4, arch=[ArchGraph([(i, i + 1) for i in range(6)])] * 4, budget=1, seed=0)


def tiny_evaluator(run_dir, **kwargs):
    """Digits on a 2-channel, 3x3 FaDE net, one small epoch: about 0.2 s a trial."""
    return TrialEvaluator("fade", "digits", run_dir, space_params=TINY, batch_size=64, **kwargs)


def without_time(result):
    """A result but its timings (the seconds of each epoch, the latency): what a rerun repeats."""
    curve = [{k: v for k, v in row.items() if k != "seconds"} for row in result.curve]
    metrics = {k: v for k, v in result.metrics.items() if k != "latency"}
    return result.trial_id, metrics, curve, result.checkpoint


def run_all(evaluator, fn):
    """TRIALS side by side, then RESUMED, which continues trial 0 from its checkpoint."""
    futures = [evaluator.submit(fn, trial) for trial in TRIALS]
    results = [future.result(timeout=300) for future in futures]
    results.append(evaluator.submit(fn, RESUMED).result(timeout=300))
    return [without_time(r) for r in results]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-process results every other evaluator must reproduce."""
    with InProcessEvaluator() as evaluator:
        return run_all(evaluator, tiny_evaluator(tmp_path_factory.mktemp("reference")))


# ---------------------------------------------------------------- TrialEvaluator


def test_a_trial_is_trained_measured_and_checkpointed(tmp_path):
    fn = tiny_evaluator(tmp_path)
    rng = torch.get_rng_state()
    result = fn(TRIALS[1])
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is left alone
    assert isinstance(result, Result) and result.trial_id == 1 and result.seconds > 0
    assert set(result.metrics) == {"val_accuracy", "val_loss", "test_accuracy", "test_loss", "parameters", "flops",
                                   "latency", "epochs"}
    assert result.metrics["latency"] > 0
    assert result.metrics["epochs"] == 1 and len(result.curve) == 1
    assert result.metrics["val_accuracy"] == result.curve[-1]["val_accuracy"]
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
    net = spaces.load("fade").compile(TRIALS[1].arch, input_shape=(1, 8, 8), num_classes=10, **TINY)
    assert result.metrics["parameters"] == sum(p.numel() for p in net.parameters())
    assert result.metrics["flops"] == count_flops(net, (1, 8, 8))  # counted as tests/test_cost.py checks
    state = load_checkpoint(tmp_path, result.checkpoint)
    assert result.checkpoint == "checkpoints/trial-1.pt"
    assert state["epochs"] == 1 and state["curve"] == list(result.curve)
    assert state["model"].keys() == net.state_dict().keys()


def test_the_seed_decides_the_result(tmp_path):
    fn = tiny_evaluator(tmp_path)
    again = dataclasses.replace(TRIALS[0], id=5)
    other_seed = dataclasses.replace(TRIALS[0], id=6, seed=3)
    first, same, other = (without_time(fn(t))[1:3] for t in (TRIALS[0], again, other_seed))
    assert first == same and first != other


def test_the_split_is_fixed_by_the_run_not_the_trial(tmp_path):
    a = tiny_evaluator(tmp_path)(TRIALS[0])
    b = tiny_evaluator(tmp_path, split_seed=1)(TRIALS[0])
    assert a.metrics["val_loss"] != b.metrics["val_loss"]


def test_resume_trains_only_the_remaining_epochs_from_the_checkpoint(tmp_path, monkeypatch):
    fn = tiny_evaluator(tmp_path)
    first = fn(TRIALS[0])
    calls, train = [], evaluate_module.train

    def spy(model, *args, **kwargs):
        calls.append((kwargs["epochs"], {k: v.clone() for k, v in model.state_dict().items()}))
        return train(model, *args, **kwargs)

    monkeypatch.setattr(evaluate_module, "train", spy)
    resumed = fn(dataclasses.replace(RESUMED, budget=3))
    (epochs, start), = calls
    saved = load_checkpoint(tmp_path, first.checkpoint)["model"]
    assert epochs == 2 and all(torch.equal(start[k], saved[k]) for k in saved)
    assert [row["epoch"] for row in resumed.curve] == [0, 1, 2] and resumed.curve[0] == first.curve[0]
    assert resumed.metrics["epochs"] == 3 and load_checkpoint(tmp_path, resumed.checkpoint)["epochs"] == 3


def test_init_from_starts_named_parameters_from_earlier_checkpoints(tmp_path, monkeypatch):
    fn = TrialEvaluator("mlp", "digits", tmp_path, batch_size=64)
    source = fn(Trial(id=0, arch=mlp_graph([(16, "relu"), (8, "tanh")]), budget=1, seed=0))
    starts, train = [], evaluate_module.train

    def spy(model, *args, **kwargs):
        starts.append({k: v.clone() for k, v in model.state_dict().items()})
        return train(model, *args, **kwargs)

    monkeypatch.setattr(evaluate_module, "train", spy)
    shared = {"layers.1.0.weight": [0, "layers.1.0.weight"], "head.bias": [0, "head.bias"]}
    fn(Trial(id=1, arch=mlp_graph([(16, "relu"), (32, "elu"), (8, "tanh")]), budget=1, seed=0,
             task=TrainArchitecture(init_from=shared)))
    saved, (start,) = load_checkpoint(tmp_path, source.checkpoint)["model"], starts
    assert all(torch.equal(start[name], saved[name]) for name in shared)
    assert not torch.equal(start["layers.1.0.bias"], saved["layers.1.0.bias"])  # not named: fresh
    wrong = Trial(id=2, arch=mlp_graph([(32, "relu")]), budget=1, seed=0,
                  task=TrainArchitecture(init_from={"layers.1.0.weight": [0, "layers.1.0.weight"]}))
    with pytest.raises(ValueError, match=r"'layers.1.0.weight' has shape \(32, 64\).*\(16, 64\)"):
        fn(wrong)


@dataclasses.dataclass(frozen=True)
class Constant(Task, tag="test-constant"):
    """A task type of this test module: its objective answers ``accuracy`` without training."""

    accuracy: float


@dataclasses.dataclass(frozen=True)
class Unregistered(Task, tag="test-unregistered"):
    """A task type whose module registers no objective."""


register_objective(Constant, lambda evaluator, trial, report: Result(trial.id, {"val_accuracy": trial.task.accuracy,
                                                                               "epochs": evaluator.split_seed}))


def test_the_evaluator_trains_each_task_with_the_objective_its_module_registered(tmp_path):
    fn = tiny_evaluator(tmp_path, split_seed=7)
    result = fn(Trial(id=0, arch=[CHAIN] * 4, budget=1, seed=0, task=Constant(0.25)))
    assert result.metrics == {"val_accuracy": 0.25, "epochs": 7}  # the objective was given the evaluator
    assert not (tmp_path / "checkpoints").exists()  # no architecture was trained
    with pytest.raises(TaskError, match="no objective is registered for Unregistered \\(task type "
                                        f"'test-unregistered'\\); import {__name__}, which registers it"):
        fn(Trial(id=1, arch=[CHAIN] * 4, budget=1, seed=0, task=Unregistered()))


def test_the_evaluator_module_imports_no_strategy_nor_oneshot_code():
    code = ("import sys, archgraph.evaluate; "
            "print(sorted(m for m in sys.modules if m.startswith(('archgraph.oneshot', 'archgraph.search'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"



def test_report_takes_every_epoch_as_it_ends_counted_over_the_whole_training(tmp_path):
    fn, rows = tiny_evaluator(tmp_path), []
    fn(TRIALS[0])
    resumed = fn(dataclasses.replace(RESUMED, budget=3), report=rows.append)
    assert [row["epoch"] for row in rows] == [1, 2] and rows == list(resumed.curve[1:])


def test_a_diverging_trial_fails_in_its_first_non_finite_epoch_without_a_checkpoint(tmp_path):
    fn = TrialEvaluator("mlp", "digits", tmp_path, batch_size=64, optimizer="sgd", lr=1e10, grad_clip=None)
    report = Reporter(trial_id=0, budget=5)
    with pytest.raises(DivergedError, match="^the train_loss became nan in epoch 0; lower the learning rate$"):
        fn(Trial(id=0, arch=mlp_graph([(16, "relu")]), budget=5, seed=0), report=report)
    assert len(report.rows) == 1  # stopped at once, not trained to its budget of 5
    assert not (tmp_path / "checkpoints").exists()


class PruneFrom:
    """Prunes every trial from ``epoch`` on."""

    metric = "val_accuracy"

    def __init__(self, epoch):
        self.epoch = epoch

    def prune(self, epoch, best, reference):
        return epoch >= self.epoch


def test_a_pruned_trial_stops_training_and_keeps_the_epochs_it_reported(tmp_path):
    fn = TrialEvaluator("mlp", "digits", tmp_path, batch_size=64)
    trial = Trial(id=0, arch=mlp_graph([(16, "relu")]), budget=4, seed=0)
    result = Reported(fn, Reporter(0, 4, PruneFrom(1)))(trial)
    assert result.state is TrialState.PRUNED and [row["epoch"] for row in result.curve] == [0, 1]
    assert result.metrics == {"val_accuracy": result.curve[1]["val_accuracy"], "val_loss": result.curve[1]["val_loss"],
                              "epochs": 2}
    assert result.checkpoint is None and not (tmp_path / "checkpoints").exists() and result.seconds > 0
    last_epoch_only = Reported(fn, Reporter(0, 2, PruneFrom(1)))(dataclasses.replace(trial, budget=2))
    assert last_epoch_only.state is TrialState.COMPLETE  # the last epoch is never pruned: training is done


def test_data_is_loaded_once_per_process(tmp_path, monkeypatch):
    loads = []

    def counting_load(name, *, root=None):
        loads.append(name)
        return load(name, root=root)

    load = evaluate_module.load
    monkeypatch.setattr(evaluate_module, "load", counting_load)
    fn = tiny_evaluator(tmp_path, val_fraction=0.25)  # a split no other test caches
    fn(TRIALS[0])
    fn(TRIALS[1])
    assert loads == ["digits"]


def test_the_evaluator_pickles_with_plain_fields(tmp_path):
    fn = tiny_evaluator(tmp_path, data_root=tmp_path)
    assert isinstance(fn.run_dir, str) and isinstance(fn.data_root, str)
    assert pickle.loads(pickle.dumps(fn)) == fn


def test_an_unknown_space_fails_at_construction(tmp_path):
    with pytest.raises(SpaceError, match="no space named 'fadee'"):
        TrialEvaluator("fadee", "digits", tmp_path)


# ---------------------------------------------------------------- evaluators


def test_in_process_failures_come_back_in_the_future_naming_the_trial(tmp_path):
    with InProcessEvaluator() as evaluator:
        future = evaluator.submit(tiny_evaluator(tmp_path), TOO_BIG)
    assert future.done()
    error = future.exception()
    assert isinstance(error, TrialError) and isinstance(error, ArchGraphError) and error.trial_id == 4
    assert str(error).startswith("trial 4 failed: SpaceError: space 'fade': cell 'cell1' has 7 vertices")
    assert error.error.startswith("SpaceError: space 'fade': cell 'cell1' has 7 vertices")
    assert error.traceback.startswith("Traceback (most recent call last):") and "in validate" in error.traceback
    assert isinstance(error.__cause__, SpaceError)


@pytest.mark.parametrize(
    ("trial", "message"),
    [
        (RESUMED, r"trial 2 failed: StoreError: checkpoint .*trial-0\.pt does not exist"),
        (dataclasses.replace(RESUMED, budget=1), "trial 2 resumes trial 0, trained 1 epochs, with a budget of 1"),
    ],
)
def test_resume_errors_name_the_trials(tmp_path, trial, message):
    fn = tiny_evaluator(tmp_path)
    if trial.budget == 1:
        fn(TRIALS[0])
    with pytest.raises(TrialError, match=message):
        InProcessEvaluator().submit(fn, trial).result()


def test_in_process_does_not_swallow_interrupts():
    def interrupted(trial):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        InProcessEvaluator().submit(interrupted, TRIALS[0])


def test_evaluators_share_one_interface():
    assert issubclass(InProcessEvaluator, Evaluator) and issubclass(RayEvaluator, Evaluator)
    assert InProcessEvaluator().max_workers == 1
    with ProcessPoolEvaluator(max_workers=3) as pool:
        assert pool.max_workers == 3 and repr(pool) == "ProcessPoolEvaluator(max_workers=3, threads_per_worker=1)"
    with pytest.raises(ValueError, match="max_workers and threads_per_worker must be at least 1"):
        ProcessPoolEvaluator(max_workers=0)


def test_in_process_gives_the_reference_results_again(reference, tmp_path):
    assert run_all(InProcessEvaluator(), tiny_evaluator(tmp_path)) == reference


def test_process_pool_gives_identical_results_and_named_failures(reference, tmp_path):
    fn = tiny_evaluator(tmp_path)
    with ProcessPoolEvaluator(max_workers=2) as pool:
        assert run_all(pool, fn) == reference
        with pytest.raises(TrialError, match="trial 4 failed: SpaceError") as error:
            pool.submit(fn, TOO_BIG).result(timeout=300)
    assert error.value.trial_id == 4 and error.value.error.startswith("SpaceError: space 'fade'")
    assert "in validate" in error.value.traceback  # the worker's traceback came back with the error


def test_ray_gives_identical_results_and_named_failures(reference, tmp_path):
    pytest.importorskip("ray")
    fn = tiny_evaluator(tmp_path)
    with RayEvaluator(num_cpus=2, include_dashboard=False, log_to_driver=False) as evaluator:
        assert evaluator.max_workers == 2
        assert run_all(evaluator, fn) == reference
        with pytest.raises(TrialError, match="trial 4 failed: SpaceError") as error:
            evaluator.submit(fn, TOO_BIG).result(timeout=300)
    assert error.value.trial_id == 4 and error.value.error.startswith("SpaceError: space 'fade'")
    assert "in validate" in error.value.traceback
    import ray

    assert not ray.is_initialized()


def test_ray_missing_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ImportError, match=r'pip install "archgraph\[ray\]"'):
        RayEvaluator()
