import os
import signal
import sqlite3
import subprocess
import sys
import time

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from archgraph import spaces
from archgraph.errors import ArchGraphError
from archgraph.evaluate import TrialEvaluator
from archgraph.oneshot.hyper_trial import TrainHyperArchitecture
from archgraph.search.runner import TooManyFailures
from archgraph.runs import read_status
from archgraph.search.session import Execution, SearchConfig, resume, search
from archgraph.store import STORE_FILE, SQLiteStore
from archgraph.trial import TrainArchitecture, TrialState
from store_v1 import write_v1_store
from untimed import measured, untimed

TINY = dict(space_params={"channels": 2, "kernel_size": 3}, training={"batch_size": 256}, epochs=1)
CLI_TINY = ["--param", "channels=2", "--param", "kernel_size=3", "--batch-size", "256", "--epochs", "1"]


def test_a_search_leaves_store_best_architecture_and_figure(tmp_path):
    config = SearchConfig(strategy="random", trials=4, strategy_params={"draws": 2}, **TINY)
    outcome = search(config, tmp_path / "run", progress=False)
    trial, result = outcome.best
    assert result.score == max(r.score for r in outcome.results)
    cells, space = spaces.load_architecture(tmp_path / "run" / "best_arch.json")
    assert space == "fade" and all(a.is_identical(b) for a, b in zip(cells, trial.arch))
    assert (tmp_path / "run" / "progress.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [f"trial-{i}.pt" for i in range(4)]
    with SQLiteStore(tmp_path / "run" / STORE_FILE) as store:
        recorded = store.config()
    assert {k: v for k, v in recorded.items() if k != "resolved_space"} == config.to_dict()
    assert recorded["resolved_space"]["params"] == {"channels": 2, "kernel_size": 3, "pool": "max",
                                                    "weights_per_cell": None}


def test_a_run_directory_is_never_mixed_with_another_run(tmp_path):
    config = SearchConfig(strategy="evolution", trials=1, strategy_params={"population_size": 2, "sample_size": 1}, **TINY)
    search(config, tmp_path, progress=False)
    with pytest.raises(ArchGraphError, match="already holds a run; continue it with `archgraph search --resume"):
        search(config, tmp_path, progress=False)
    other = SearchConfig(strategy="evolution", trials=1, seed=1, strategy_params={"population_size": 2, "sample_size": 1}, **TINY)
    with pytest.raises(ArchGraphError, match="started with other settings \\(seed\\)"):
        search(other, tmp_path, resume=True, progress=False)
    assert len(resume(tmp_path, trials=2, progress=False).results) == 2  # a new budget is allowed
    with pytest.raises(ArchGraphError, match="holds no search run"):
        resume(tmp_path / "empty", progress=False)


def test_a_run_whose_store_lacks_or_garbles_its_config_is_refused_in_one_line(tmp_path):
    SQLiteStore(tmp_path / "begun" / STORE_FILE).close()  # killed after the store, before the config
    with pytest.raises(ArchGraphError, match="holds no config: the run was stopped before it began; delete"):
        resume(tmp_path / "begun", progress=False)
    with SQLiteStore(tmp_path / "edited" / STORE_FILE) as store:
        store.set_config({**SearchConfig().to_dict(), "epochs": "three", "colour": "red"})
    with pytest.raises(ArchGraphError, match="the run's config cannot be read \\(.*'colour'\\); restore the store"):
        resume(tmp_path / "edited", progress=False)


def test_a_run_refuses_to_resume_when_its_space_file_changed(tmp_path):
    toml = tmp_path / "mine.toml"
    toml.write_text('embodiment = "fade"\ncells = ["a", "b"]\nmax_vertices = 4\n[params]\nchannels = 2\n'
                    'kernel_size = 3\n')
    config = SearchConfig(space=str(toml), strategy="random", trials=1, epochs=1, training={"batch_size": 256})
    search(config, tmp_path / "run", progress=False)
    toml.write_text(toml.read_text().replace("kernel_size = 3", "kernel_size = 5").replace("= 4", "= 5"))
    with pytest.raises(ArchGraphError, match="was run with its space file as it was then, which now differs "
                                             "\\(max_vertices: 4 → 5; params.kernel_size: 3 → 5\\); restore"):
        resume(tmp_path / "run", progress=False)
    toml.write_text(toml.read_text().replace("kernel_size = 5", "kernel_size = 3").replace("= 5", "= 4"))
    assert len(resume(tmp_path / "run", progress=False).results) == 1


def test_an_evaluator_that_cannot_start_leaves_a_run_that_resumes(tmp_path, monkeypatch):
    import archgraph.search.session as session

    def unreachable(config):
        raise ArchGraphError("cannot reach the Ray cluster at 10.0.0.1:6379")

    config = SearchConfig(strategy="random", trials=1, **TINY)
    monkeypatch.setattr(session, "_evaluator", unreachable)
    with pytest.raises(ArchGraphError, match="cannot reach the Ray cluster"):
        search(config, tmp_path, progress=False)
    with SQLiteStore(tmp_path / STORE_FILE) as store:
        assert SearchConfig.from_dict(store.config()) == config  # recorded before the evaluator started
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "failed"
    monkeypatch.undo()
    assert len(resume(tmp_path, progress=False).results) == 1


def told(path) -> int:
    """Tells recorded so far; 0 while the run has created the file but not yet its tables."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        try:
            return db.execute("SELECT count(*) FROM events WHERE kind = 'tell'").fetchone()[0]
        except sqlite3.OperationalError as err:
            if "no such table" not in str(err):
                raise
            return 0


def search_killed(args, run, *, after: int) -> dict:
    """Run ``archgraph search ARGS --out RUN`` and SIGKILL it once ``after`` trials are told; the
    results recorded by then, as dicts by trial id."""
    proc = subprocess.Popen([sys.executable, "-m", "archgraph.cli", "search", *args, "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ((run / STORE_FILE).exists() and told(run / STORE_FILE) >= after):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with SQLiteStore(run / STORE_FILE) as store:
        return {i: r.to_dict() for i, r in store.results().items()}


def test_kill_and_resume_reaches_the_uninterrupted_state(tmp_path):
    """A search killed with SIGKILL mid-run and resumed ends exactly as an uninterrupted one:
    the same trials, bit-identical metrics, nothing recorded before the kill lost or duplicated."""
    args = ["--strategy", "bo", "--trials", "8", "--strategy-param", "draws=2", "--no-progress", *CLI_TINY]
    cli = [sys.executable, "-m", "archgraph.cli", "search"]
    subprocess.run([*cli, *args, "--out", str(tmp_path / "whole")], check=True, capture_output=True)

    killed = tmp_path / "killed"
    before = search_killed(args, killed, after=3)
    assert 3 <= len(before) < 8

    subprocess.run([*cli, "--resume", str(killed), "--no-progress"], check=True, capture_output=True)
    with SQLiteStore(tmp_path / "whole" / STORE_FILE) as whole, SQLiteStore(killed / STORE_FILE) as resumed:
        assert [t.to_dict() for t in resumed.trials()] == [t.to_dict() for t in whole.trials()]
        final = resumed.results()
        assert {i: measured(r.metrics) for i, r in final.items()} == {i: measured(r.metrics)
                                                                      for i, r in whole.results().items()}
        assert {i: untimed(r.curve) for i, r in final.items()} == {i: untimed(r.curve) for i, r in whole.results().items()}
        assert all(final[i].to_dict() == r for i, r in before.items())  # recorded before the kill: untouched
        kinds = [k for k, _ in resumed.events()]
        assert kinds.count("ask") == kinds.count("tell") == 8


# ---------------------------------------------------------------- where a run executes


CLI_RANDOM = ["--strategy", "random", "--trials", "6", "--strategy-param", "draws=2", "--no-progress", *CLI_TINY]
#: the config the CLI makes of CLI_RANDOM: its --lr default too, and the pooling the fade space fits
#: to 8×8 digits (none; Space.fitted)
RANDOM = SearchConfig(strategy="random", trials=6, strategy_params={"draws": 2}, epochs=1,
                      space_params={**TINY["space_params"], "pool": None}, training={"batch_size": 256, "lr": 1e-3})


def evaluators_made(monkeypatch) -> list:
    """Record the evaluators the search makes (their repr says which and how many workers)."""
    from archgraph.search import session

    made, make = [], session._evaluator

    def recorded(execution):
        made.append(make(execution))
        return made[-1]

    monkeypatch.setattr(session, "_evaluator", recorded)
    return made


def same_run(run, whole, rel: float = 0.0) -> None:
    """``run`` holds ``whole``'s trials, their states, metrics and curves (all but the seconds they
    took), each number equal to within ``rel`` (0: bit for bit)."""
    with SQLiteStore(whole / STORE_FILE) as expected, SQLiteStore(run / STORE_FILE) as store:
        assert [t.to_dict() for t in store.trials()] == [t.to_dict() for t in expected.trials()]
        results, wanted = store.results(), expected.results()
        assert results.keys() == wanted.keys()
        for i, r in results.items():
            assert r.state == wanted[i].state
            assert measured(r.metrics) == pytest.approx(measured(wanted[i].metrics), rel=rel, abs=0)
            assert len(r.curve) == len(wanted[i].curve)
            for row, want in zip(untimed(r.curve), untimed(wanted[i].curve)):
                assert row == pytest.approx(want, rel=rel, abs=0)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its modification time and size."""
    return {str(f): (f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["terminated", "killed"])
def test_pool_workers_die_with_a_terminated_or_killed_search_and_write_nothing_after_it(tmp_path, how):
    psutil = pytest.importorskip("psutil")
    run = tmp_path / "run"
    args = ["--strategy", "random", "--trials", "40", "--strategy-param", "draws=2", "--no-progress", *CLI_TINY,
            "--evaluator", "process", "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "archgraph.cli", "search", *args, "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ((run / STORE_FILE).exists() and told(run / STORE_FILE) >= 1):  # the workers are training
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be stopped"
        time.sleep(0.02)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 2  # the pool's workers (and multiprocessing's resource tracker)
    os.kill(proc.pid, how)
    proc.wait()
    files = snapshot(run)

    def running(child) -> bool:  # an exited child nobody reaps stays a zombie here
        try:
            return child.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 60
    while any(map(running, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [child for child in children if running(child)]
    for child in alive:  # clean up after a failure
        child.kill()
    assert not alive, f"{len(alive)} of the search's {len(children)} child processes outlived it"
    assert snapshot(run) == files and any("checkpoints" in f for f in files)  # they wrote nothing after it


def test_a_run_killed_in_process_and_finished_on_the_process_pool_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    """Where a run executes is not what it is: killed while it trained in this process, it goes on
    in a pool of two workers (``--resume RUN --evaluator process``) and ends as if never moved."""
    from archgraph.cli import main

    search(RANDOM, tmp_path / "whole", progress=False)  # in-process, uninterrupted
    killed = tmp_path / "killed"
    before = search_killed(CLI_RANDOM, killed, after=2)
    assert 2 <= len(before) < 6 and json.loads((killed / "status.json").read_text())["execution"]["evaluator"] == \
        "inprocess"

    made = evaluators_made(monkeypatch)
    assert main(["search", "--resume", str(killed), "--evaluator", "process", "--workers", "2", "--no-progress"]) == 0
    assert [repr(e) for e in made] == ["ProcessPoolEvaluator(max_workers=2, threads_per_worker=1)"]
    # a pool worker sums with one torch thread where this process may use several: the last bits differ
    same_run(killed, tmp_path / "whole", rel=1e-6)
    with SQLiteStore(killed / STORE_FILE) as store, SQLiteStore(tmp_path / "whole" / STORE_FILE) as whole:
        assert store.config() == whole.config()  # the CLI's run is the API's: what it is, not where it ran
        assert all(store.results()[i].to_dict() == r for i, r in before.items())  # recorded before the kill: untouched
    assert json.loads((killed / "status.json").read_text())["execution"] == {
        "evaluator": "process", "workers": 2, "ray_address": None, "device": "cpu"}  # the device it had, kept


@pytest.mark.parametrize("device", [None, pytest.param("cuda", marks=pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA device here"))])
def test_a_run_started_on_the_cpu_goes_on_with_another_device(tmp_path, monkeypatch, device):
    """A run started with device "cpu" and resumed with another device setting keeps what it is
    (its recorded config) and its trials; on the CPU (``None``: torch's default) its results too."""
    whole = search(RANDOM, tmp_path / "whole", execution=Execution(device="cpu"), progress=False)
    search(dataclasses.replace(RANDOM, trials=3), tmp_path / "run", execution=Execution(device="cpu"), progress=False)
    with SQLiteStore(tmp_path / "run" / STORE_FILE) as store:
        recorded, before = store.config(), store.results()
    used = []

    def train_on(self, trial, report=None):
        used.append(self.device)
        return TRAIN(self, trial, report=report)

    monkeypatch.setattr(TrialEvaluator, "__call__", train_on)
    resumed = resume(tmp_path / "run", trials=6, execution={"device": device}, progress=False)
    assert used == [device] * 3 and read_status(tmp_path / "run")["execution"]["device"] == device
    with SQLiteStore(tmp_path / "run" / STORE_FILE) as store:
        assert store.config() == recorded and all(store.results()[i] == r for i, r in before.items())
    assert [t.to_dict() for t in resumed.trials] == [t.to_dict() for t in whole.trials]
    if device is None:
        same_run(tmp_path / "run", tmp_path / "whole")
    else:  # another device computes in another order: the same trials, near the same accuracies
        assert all(r.state is TrialState.COMPLETE for r in resumed.results)
        assert [r.metrics["val_accuracy"] for r in resumed.results] == pytest.approx(
            [r.metrics["val_accuracy"] for r in whole.results], abs=0.05)


def test_a_run_folder_whose_config_holds_its_execution_resumes_where_it_ran(tmp_path, monkeypatch):
    """A run recorded before executions were kept apart (its config held evaluator, workers,
    ray_address and device; its status no execution) resumes as the same run, on that execution."""
    search(RANDOM, tmp_path / "whole", progress=False)
    old = tmp_path / "old"
    search(dataclasses.replace(RANDOM, trials=3), old, progress=False)
    with SQLiteStore(old / STORE_FILE) as store:
        written = {**store.config(), "evaluator": "inprocess", "workers": 3, "ray_address": None, "device": "cpu"}
    with sqlite3.connect(old / STORE_FILE) as db:  # the config as that code wrote it
        db.execute("UPDATE config SET json = ? WHERE id = 0", (json.dumps(written),))
    db.close()
    status = json.loads((old / "status.json").read_text())
    del status["execution"]
    (old / "status.json").write_text(json.dumps(status))

    with SQLiteStore(old / STORE_FILE) as store:
        assert SearchConfig.from_dict(store.config()) == dataclasses.replace(RANDOM, trials=3)
    made = evaluators_made(monkeypatch)
    resume(old, trials=6, progress=False)
    assert [repr(e) for e in made] == ["InProcessEvaluator()"]
    assert read_status(old)["execution"] == {"evaluator": "inprocess", "workers": 3, "ray_address": None,
                                             "device": "cpu"}
    with SQLiteStore(old / STORE_FILE) as store, SQLiteStore(tmp_path / "whole" / STORE_FILE) as whole:
        assert store.config() == written  # kept as it was; its identity is what it always was
        assert [t.to_dict() for t in store.trials()] == [t.to_dict() for t in whole.trials()]
        assert {i: measured(r.metrics) for i, r in store.results().items()} == {
            i: measured(r.metrics) for i, r in whole.results().items()}


def test_an_execution_is_checked_when_it_is_made(tmp_path):
    with pytest.raises(ArchGraphError, match="unknown evaluator 'pool'; known: inprocess, process, ray"):
        Execution(evaluator="pool")
    with pytest.raises(ArchGraphError, match="workers must be at least 1, got 0"):
        Execution(evaluator="process", workers=0)
    search(dataclasses.replace(RANDOM, trials=1), tmp_path, progress=False)
    with pytest.raises(ArchGraphError, match=r"an execution takes the settings evaluator, workers, ray_address, "
                                             r"device \(.*'gpus'"):
        resume(tmp_path, execution={"gpus": 2}, progress=False)
    assert read_status(tmp_path)["state"] == "finished"  # refused before the run was touched


# ---------------------------------------------------------------- failed and pruned trials


TRAIN = TrialEvaluator.__call__


def train_counting(monkeypatch, calls, failing=lambda trial: False):
    """Patch the trials' training to record the ids it trains and fail those ``failing`` picks."""

    def counted(self, trial, report=None):
        calls.append(trial.id)
        if failing(trial):
            raise RuntimeError(f"CUDA out of memory while training trial {trial.id}")
        return TRAIN(self, trial, report=report)

    monkeypatch.setattr(TrialEvaluator, "__call__", counted)


def test_a_search_with_failing_trials_completes_and_resumes_without_them_unless_retried(tmp_path, monkeypatch):
    config = SearchConfig(strategy="random", trials=6, strategy_params={"draws": 2}, **TINY)
    clean = search(config, tmp_path / "clean", progress=False)  # random asks do not depend on what is told
    calls = []
    train_counting(monkeypatch, calls, failing=lambda trial: trial.id % 3 == 1)
    outcome = search(config, tmp_path / "run", progress=False)
    assert [r.state.value for r in outcome.results] == ["complete", "failed", "complete"] * 2
    with SQLiteStore(tmp_path / "run" / STORE_FILE) as store:
        for i in (1, 4):
            failed = store.results()[i]
            assert failed.error == f"RuntimeError: CUDA out of memory while training trial {i}"
            assert failed.traceback.startswith("Traceback") and "in counted" in failed.traceback
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["trial"] == outcome.best[0].id and best["trial"] not in (1, 4)

    calls.clear()
    resume(tmp_path / "run", trials=7, progress=False)
    assert calls == [6]  # the new trial only: failed trials are not trained again
    calls.clear()
    train_counting(monkeypatch, calls)  # the cause is fixed
    resumed = resume(tmp_path / "run", trials=7, progress=False, retry_failed=True)
    assert calls == [1, 4] and all(r.state is TrialState.COMPLETE for r in resumed.results)
    retried = {r.trial_id: measured(r.metrics) for r in resumed.results if r.trial_id in (1, 4)}
    assert retried == {r.trial_id: measured(r.metrics) for r in clean.results if r.trial_id in (1, 4)}  # as if never failed


def test_best_json_is_strict_json_with_null_for_a_nan_metric(tmp_path, monkeypatch):
    def nan_metric(self, trial, report=None):  # e.g. the accuracy of an empty test set; a NaN loss fails the trial
        result = TRAIN(self, trial, report=report)
        return dataclasses.replace(result, metrics={**result.metrics, "test_accuracy": float("nan")})

    monkeypatch.setattr(TrialEvaluator, "__call__", nan_metric)
    search(SearchConfig(strategy="random", trials=1, **TINY), tmp_path, progress=False)
    text = (tmp_path / "best.json").read_text()
    best = json.loads(text, parse_constant=lambda word: pytest.fail(f"best.json holds {word}"))
    assert best["test_accuracy"] is None and 0 <= best["val_accuracy"] <= 1


def test_too_many_failures_in_a_row_stop_the_search_after_writing_what_finished(tmp_path, monkeypatch):
    calls = []
    train_counting(monkeypatch, calls, failing=lambda trial: trial.id >= 2)
    config = SearchConfig(strategy="random", trials=10, strategy_params={"draws": 2}, **TINY)
    with pytest.raises(TooManyFailures, match=(
            r"^the search stopped after 3 trials failed in a row, the last \(trial 4\) with RuntimeError: CUDA out of "
            r"memory while training trial 4; their errors and tracebacks are in .*store\.sqlite; fix the cause, then "
            r"continue with `archgraph search --resume .* --retry-failed`, or allow more with --max-failures$")):
        search(config, tmp_path, progress=False, max_failures=3)
    assert calls == [0, 1, 2, 3, 4] and (tmp_path / "best.json").exists()  # what finished is written out
    calls.clear()
    train_counting(monkeypatch, calls)
    assert len(resume(tmp_path, progress=False, retry_failed=True).results) == 10 and calls == [2, 3, 4, 5, 6, 7, 8, 9]


def test_a_pruned_search_records_pruned_trials_stopped_below_the_median(tmp_path):
    config = SearchConfig(strategy="random", trials=8, strategy_params={"draws": 2}, pruner="median",
                          pruner_params={"warmup_epochs": 0, "min_trials": 2}, **{**TINY, "epochs": 3})
    outcome = search(config, tmp_path, progress=False)
    states = [r.state for r in outcome.results]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    done: list = []  # the complete curves, in the order told (one trial at a time in-process)
    for r in outcome.results:
        epoch = len(r.curve) - 1
        earlier = [c[epoch]["val_accuracy"] for c in done]
        if r.state is TrialState.PRUNED:
            assert len(r.curve) < 3 and r.checkpoint is None and r.metrics["epochs"] == len(r.curve)
            assert len(earlier) >= 2 and max(row["val_accuracy"] for row in r.curve) < _median(earlier)
        else:
            done.append(r.curve)
    with pytest.raises(ArchGraphError, match="unknown pruner 'mean'; known: median"):
        SearchConfig(pruner="mean")
    with pytest.raises(ArchGraphError, match="pruner 'median' takes no such setting"):
        search(SearchConfig(pruner="median", pruner_params={"patience": 3}), tmp_path / "bad", progress=False)
    with pytest.raises(ArchGraphError, match="pruner 'median': MedianPruner needs warmup_epochs >= 0"):
        search(SearchConfig(pruner="median", pruner_params={"warmup_epochs": -1}), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()  # refused before a run folder was made


def _median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def test_a_run_folder_stored_before_trial_states_resumes(tmp_path):
    """A run made by the schema-1 code (no trial states) opens, migrates and continues as an
    uninterrupted run of today's code."""
    config = SearchConfig(strategy="evolution", trials=5, strategy_params={"population_size": 3, "sample_size": 2},
                          **TINY)
    whole = search(config, tmp_path / "whole", progress=False)
    search(dataclasses.replace(config, trials=3), tmp_path / "new", progress=False)
    old = tmp_path / "old"
    old.mkdir()
    with SQLiteStore(tmp_path / "new" / STORE_FILE) as store:  # the same records, as schema 1 wrote them
        recorded = {k: v for k, v in store.config().items() if k not in ("pruner", "pruner_params")}
        write_v1_store(old / STORE_FILE, recorded, {t.id: t for t in store.trials()}, store.results(), store.events())
    shutil.copytree(tmp_path / "new" / "checkpoints", old / "checkpoints")
    resumed = resume(old, trials=5, progress=False)
    assert [t.to_dict() for t in resumed.trials] == [t.to_dict() for t in whole.trials]
    assert [(r.state, measured(r.metrics)) for r in resumed.results] == [(r.state, measured(r.metrics))
                                                                          for r in whole.results]
    with SQLiteStore(old / STORE_FILE) as store:
        assert [k for k, _ in store.events()].count("tell") == 5 and store.config() == recorded


#: a FaDE run of two trials (a hyper trial, one architecture drawn from its anchors) as archgraph wrote
#: it at cfb244e, before typed tasks: the hyper trial's task rode in its info ("kind": "hyper" and its
#: settings); made by SearchConfig(strategy="fade", trials=2, epochs=1, space_params={"channels": 2,
#: "kernel_size": 3}, strategy_params={"hyper_epochs": 1, "draws": 1, "warm_start": False},
#: training={"batch_size": 64}), so that continuing it needs no checkpoint
RUN_BEFORE_TASKS = Path(__file__).parent / "data" / "fade_run_before_tasks.sqlite"


def test_a_fade_run_stored_before_typed_tasks_resumes_with_typed_trials(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(RUN_BEFORE_TASKS, run / STORE_FILE)
    with SQLiteStore(run / STORE_FILE, read_only=True) as store:  # read as typed trials, the file left as it is
        hyper, drawn = store.trials()
    assert hyper.task == TrainHyperArchitecture(rows=4, width=7, tau=10.0, shared=True, cell_dependent=False,
                                                estimator="all", warm_start=None)
    assert hyper.info.keys() == {"step", "anchors"} and drawn.info.keys() == {"point", "coordinates"}
    assert drawn.task == TrainArchitecture() and len(hyper.arch) == 28 and len(drawn.arch) == 4
    outcome = resume(run, trials=4, progress=False)  # the replayed asks equal the recorded ones
    assert [t.task.tag for t in outcome.trials] == ["hyper", "architecture", "hyper", "architecture"]
    assert outcome.trials[2].info["step"] == 1 and outcome.trials[2].task == hyper.task
    assert [r.state for r in outcome.results] == [TrialState.COMPLETE] * 4
    assert outcome.notes[0].startswith("2 hyper-architectures trained; ")  # the strategy's summary, as before
    assert (run / "trajectory.png").stat().st_size > 0 and (run / "anchors.png").stat().st_size > 0
    with sqlite3.connect(run / STORE_FILE) as db:
        stored = [json.loads(text) for (text,) in db.execute("SELECT json FROM trials ORDER BY id")]
    db.close()
    assert ["task" in t for t in stored] == [False, False, True, True]  # the old records stay; new ones are typed
