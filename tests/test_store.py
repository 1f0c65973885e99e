import json
import math
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import torch

from archgraph import ArchGraph
from archgraph.errors import ArchGraphError
from archgraph.oneshot.hyper_trial import TrainHyperArchitecture
from archgraph.trial import Result, TrainArchitecture, Trial, TrialState
from archgraph.store import (
    SCHEMA_VERSION,
    STORE_FILE,
    MemoryStore,
    SQLiteStore,
    StoreError,
    Told,
    load_checkpoint,
    save_checkpoint,
)

from store_v1 import write_v1_store


def trial(i, **kwargs):
    return Trial(id=i, arch=(ArchGraph([(0, 1), (1, 2)]), ArchGraph([(0, 1)])), budget=2, seed=10 + i, **kwargs)


def result(i, accuracy=0.5):
    curve = ({"epoch": 0, "train_loss": 1.5, "val_loss": None}, {"epoch": 1, "train_loss": 1.25, "val_loss": 0.75})
    return Result(trial_id=i, metrics={"val_accuracy": accuracy, "epochs": 2}, curve=curve,
                  checkpoint=f"checkpoints/trial-{i}.pt", seconds=1.5)


# ---------------------------------------------------------------- conformance suite, every backend


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    """Each backend, fresh; the conformance tests below run over all of them."""
    backend = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / STORE_FILE)
    yield backend
    backend.close()


def test_a_new_store_is_empty(store):
    assert store.config() is None
    assert store.events() == [] and store.trials() == [] and store.results() == {} and store.pending() == []
    assert store.timeline() == []


def test_config_is_written_once_and_read_back_as_json(store):
    store.set_config({"space": "fade", "budgets": (1, 3), "seed": 0})
    assert store.config() == {"space": "fade", "budgets": [1, 3], "seed": 0}
    store.set_config({"seed": 0, "budgets": [1, 3], "space": "fade"})  # the same config again: a no-op
    with pytest.raises(StoreError, match="different config.*new run directory"):
        store.set_config({"space": "darts", "budgets": [1, 3], "seed": 0})
    assert store.config()["space"] == "fade"


def test_asks_and_tells_are_logged_in_order(store):
    for i in range(3):
        store.record_ask(trial(i))
    store.record_tell(result(1))
    store.record_ask(trial(3, resume_from=1, info={"point": [0.5, 1.0]}))
    store.record_tell(result(0, accuracy=0.75))
    assert store.events() == [("ask", 0), ("ask", 1), ("ask", 2), ("tell", 1), ("ask", 3), ("tell", 0)]
    assert store.trials() == [trial(0), trial(1), trial(2), trial(3, resume_from=1, info={"point": [0.5, 1.0]})]
    assert store.results() == {0: result(0, accuracy=0.75), 1: result(1)}
    assert list(store.results()) == [0, 1]
    assert store.pending() == [trial(2), trial(3, resume_from=1, info={"point": [0.5, 1.0]})]


def test_trials_come_back_by_id_whatever_the_ask_order(store):
    for i in (2, 0, 1):
        store.record_ask(trial(i))
    assert [t.id for t in store.trials()] == [0, 1, 2]
    assert store.events() == [("ask", 2), ("ask", 0), ("ask", 1)]


def test_telling_an_unknown_trial_is_refused(store):
    with pytest.raises(StoreError, match="trial 5 was never asked"):
        store.record_tell(result(5))
    assert store.events() == [] and store.results() == {}


def test_telling_twice_is_refused_and_nothing_is_duplicated(store):
    store.record_ask(trial(0))
    store.record_tell(result(0))
    with pytest.raises(StoreError, match="trial 0 was told before"):
        store.record_tell(result(0, accuracy=0.9))
    assert store.events() == [("ask", 0), ("tell", 0)]
    assert store.results() == {0: result(0)}


def test_asking_an_id_twice_is_refused(store):
    store.record_ask(trial(0))
    with pytest.raises(StoreError, match="trial 0 was asked before"):
        store.record_ask(trial(0))
    assert store.events() == [("ask", 0)]


def test_records_that_are_not_json_are_refused_before_anything_is_written(store):
    with pytest.raises(ValueError, match="trial 0: info must be JSON-serialisable"):
        trial(0, info={"tensor": torch.zeros(2)})  # refused before a store ever sees it
    store.record_ask(trial(0))
    with pytest.raises(StoreError, match="result of trial 0 is not JSON-serialisable"):
        store.record_tell(Result(trial_id=0, metrics={"val_accuracy": torch.tensor(0.5)}))
    with pytest.raises(StoreError, match="the config is not JSON-serialisable"):
        store.set_config({"device": torch.device("cpu")})
    assert store.events() == [("ask", 0)] and store.config() is None


def test_store_errors_are_archgraph_and_value_errors(store):
    with pytest.raises(ArchGraphError):
        store.record_tell(result(0))
    with pytest.raises(ValueError):
        store.record_tell(result(0))


def test_timeline_has_ask_and_tell_times_and_scores_in_tell_order(store):
    before = time.time()
    for i in range(3):
        store.record_ask(trial(i))
    store.record_tell(result(2, accuracy=0.25))
    store.record_tell(Result(trial_id=0, metrics={"test_accuracy": 0.5}))  # no objective: score None
    after = time.time()
    rows = store.timeline()
    assert [(r.trial_id, r.score) for r in rows] == [(2, 0.25), (0, None)]
    assert all(isinstance(r, Told) and before <= r.asked_at <= r.told_at <= after for r in rows)
    assert rows[0].told_at <= rows[1].told_at


def test_nan_metrics_survive(store):
    store.record_ask(trial(0))
    store.record_tell(Result(trial_id=0, metrics={"val_accuracy": float("nan")}))
    assert math.isnan(store.results()[0].score) and math.isnan(store.timeline()[0].score)


def test_repr_counts_trials_and_tells(store):
    store.record_ask(trial(0))
    store.record_ask(trial(1))
    store.record_tell(result(0))
    assert repr(store).startswith(type(store).__name__ + "(")
    assert repr(store).endswith("trials=2, told=1)")


def test_writes_from_several_threads_are_all_kept(store):
    def ask_and_tell(ids):
        for i in ids:
            store.record_ask(trial(i))
            store.record_tell(result(i))

    threads = [threading.Thread(target=ask_and_tell, args=(range(k, 40, 4),)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(store.results()) == list(range(40)) and store.pending() == []
    events = store.events()
    assert len(events) == 80 and all(events.index(("ask", i)) < events.index(("tell", i)) for i in range(40))



def failure(i):
    return Result.failure(i, "ValueError: boom", 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom\n')


def test_a_failed_trial_keeps_its_error_and_traceback_and_is_not_pending(store):
    store.record_ask(trial(0))
    store.record_ask(trial(1))
    store.record_ask(trial(2))
    store.record_tell(failure(0))
    store.record_tell(Result(1, {"val_accuracy": 0.25, "epochs": 1}, state=TrialState.PRUNED))
    assert store.results()[0] == failure(0) and store.results()[0].traceback.endswith("ValueError: boom\n")
    assert store.states() == {0: TrialState.FAILED, 1: TrialState.PRUNED, 2: TrialState.RUNNING}
    assert store.pending() == [trial(2)]  # a resumed run trains again only the running one
    assert [(r.trial_id, r.score) for r in store.timeline()] == [(0, None), (1, None)]  # neither completed


def test_a_failed_trial_is_retried_as_its_next_attempt(store):
    store.record_ask(trial(0))
    store.record_tell(failure(0))
    store.record_retry(failure(0))  # failed again
    store.record_retry(result(0, accuracy=0.75))
    assert store.events() == [("ask", 0), ("tell", 0), ("retry", 0), ("retry", 0)]
    assert store.attempts() == {0: [failure(0), failure(0), result(0, accuracy=0.75)]}
    assert store.results() == {0: result(0, accuracy=0.75)} and store.states() == {0: TrialState.COMPLETE}
    assert [r.score for r in store.timeline()] == [None, None, 0.75]
    assert repr(store).endswith("trials=1, told=1)")


def test_only_a_failed_trial_is_retried(store):
    with pytest.raises(StoreError, match="trial 0 is not asked, not failed"):
        store.record_retry(result(0))
    store.record_ask(trial(0))
    with pytest.raises(StoreError, match="trial 0 is running, not failed; only a failed trial is retried"):
        store.record_retry(result(0))
    store.record_tell(result(0))
    with pytest.raises(StoreError, match="trial 0 is complete, not failed"):
        store.record_retry(result(0, accuracy=0.9))
    with pytest.raises(StoreError, match=r"trial 0 was told before \(complete\).*record_retry"):
        store.record_tell(result(0, accuracy=0.9))
    assert store.events() == [("ask", 0), ("tell", 0)] and store.attempts() == {0: [result(0)]}


def test_records_are_plain_data_with_every_trials_state_and_latest_attempt(store):
    before = time.time()
    for i in range(3):
        store.record_ask(trial(i))
    store.record_tell(result(0, accuracy=0.75))
    store.record_tell(failure(1))
    store.record_retry(result(1, accuracy=0.25))
    after = time.time()
    records = store.records()
    assert json.loads(json.dumps(records)) == records  # JSON values only
    done, retried, running = records
    assert [r["trial"] for r in records] == [0, 1, 2]
    assert (done["state"], done["attempts"], done["metrics"], done["seconds"], done["checkpoint"], done["error"]) == (
        "complete", 1, {"val_accuracy": 0.75, "epochs": 2}, 1.5, "checkpoints/trial-0.pt", None)
    assert done["curve"] == [dict(row) for row in result(0).curve]
    assert (done["budget"], done["seed"], done["kind"], done["cells"]) == (2, 10, "architecture", "3/2 2/1")
    assert [ArchGraph.from_dict(c) for c in done["architecture"]] == list(trial(0).arch)
    assert done["hash"] == retried["hash"] == running["hash"]  # the same architecture
    assert (retried["state"], retried["attempts"], retried["metrics"]["val_accuracy"]) == ("complete", 2, 0.25)
    assert (running["state"], running["attempts"], running["metrics"], running["seconds"], running["told_at"]) == (
        "running", 0, {}, None, None)
    assert before <= done["asked_at"] <= done["told_at"] <= retried["told_at"] <= after


# ---------------------------------------------------------------- SQLite: files, versions, crashes


def test_sqlite_store_persists_across_opens(tmp_path):
    path = tmp_path / "run" / STORE_FILE  # the folder is created
    with SQLiteStore(path) as store:
        store.set_config({"seed": 3})
        store.record_ask(trial(0))
        store.record_ask(trial(1))
        store.record_tell(result(0))
    with SQLiteStore(path) as store:
        assert store.config() == {"seed": 3}
        assert store.events() == [("ask", 0), ("ask", 1), ("tell", 0)]
        assert store.pending() == [trial(1)] and store.results() == {0: result(0)}
        assert repr(store) == f"SQLiteStore({str(path)!r}, trials=2, told=1)"


def test_sqlite_store_refuses_a_newer_schema(tmp_path):
    path = tmp_path / STORE_FILE
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"schema {SCHEMA_VERSION + 1}.*reads schema {SCHEMA_VERSION}; upgrade"):
        SQLiteStore(path)


def test_sqlite_store_refuses_other_files(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not an archgraph store"):
        SQLiteStore(other)
    text = tmp_path / "notes.txt"
    text.write_text("not a database, just some text " * 10)
    with pytest.raises(StoreError, match="not a SQLite file"):
        SQLiteStore(text)



def filled_store(path):
    """A store of a few pages: a config, 40 asked trials and 20 told."""
    with SQLiteStore(path) as store:
        store.set_config({"seed": 3})
        for i in range(40):
            store.record_ask(trial(i))
        for i in range(20):
            store.record_tell(result(i))


@pytest.mark.parametrize("read_only", [False, True])
def test_a_partly_overwritten_store_is_refused_in_one_line(tmp_path, read_only):
    path = tmp_path / STORE_FILE
    filled_store(path)
    with open(path, "r+b") as f:  # a page past the header overwritten, as by a disk or a careless copy
        f.seek(4096)
        f.write(b"\xff" * 3000)
    with pytest.raises(StoreError, match="database disk image is malformed.*restore it from a copy, or start a new"):
        SQLiteStore(path, read_only=read_only).records()


@pytest.mark.parametrize("table, where, text, message", [
    ("config", "id = 0", '{"seed": 3', "the config cannot be read \\(JSONDecodeError"),
    ("config", "id = 0", "[3]", "the config cannot be read \\(TypeError: a list, not a JSON object"),
    ("trials", "id = 1", '{"id": 1, "arch": 3}', "trial 1 cannot be read \\(TypeError"),
    ("results", "trial_id = 1", '{"trial_id": 1}', "the result of trial 1 cannot be read \\(KeyError: 'metrics'"),
])
def test_a_hand_edited_record_names_itself(tmp_path, table, where, text, message):
    path = tmp_path / STORE_FILE
    filled_store(path)
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE {table} SET json = ? WHERE {where}", (text,))
    with SQLiteStore(path, read_only=True) as store, pytest.raises(StoreError, match=message) as err:
        store.config(), store.records(), store.states()
    assert str(err.value).startswith(str(path)) and "edited by hand" in str(err.value)


def test_a_dropped_table_is_named_as_damage(tmp_path):
    path = tmp_path / STORE_FILE
    filled_store(path)
    with sqlite3.connect(path) as db:
        db.execute("DROP VIEW trial_states")
    with SQLiteStore(path) as store, pytest.raises(StoreError, match="no such table: trial_states.*damaged"):
        store.record_tell(result(30))


def test_a_read_only_store_reads_a_run_being_written_and_writes_nothing(tmp_path):
    path = tmp_path / STORE_FILE
    with SQLiteStore(path) as writer, SQLiteStore(path, read_only=True) as reader:
        writer.set_config({"seed": 3})
        writer.record_ask(trial(0))
        assert [(r["trial"], r["state"]) for r in reader.records()] == [(0, "running")]
        writer.record_tell(result(0))
        assert reader.records()[0]["state"] == "complete" and reader.config() == {"seed": 3}
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.record_ask(trial(1))
        writer.record_ask(trial(1))  # the reader holds no lock
    assert [t.id for t in SQLiteStore(path).trials()] == [0, 1]
    with pytest.raises(StoreError, match="does not exist; give the store file of a run folder"):
        SQLiteStore(tmp_path / "nowhere" / STORE_FILE, read_only=True)
    assert not (tmp_path / "nowhere").exists()
    old = tmp_path / "old.sqlite"
    write_v1_store(old, {"seed": 3}, {0: trial(0)}, {}, [("ask", 0)])
    with pytest.raises(StoreError, match="schema 1, read-only access needs schema 2; migrate it by continuing"):
        SQLiteStore(old, read_only=True)
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(StoreError, match="is empty \\(0 bytes\\): the run was stopped before it recorded anything"):
        SQLiteStore(empty, read_only=True)


def test_failures_are_readable_with_plain_sql(tmp_path):
    path = tmp_path / STORE_FILE
    with SQLiteStore(path) as store:
        for i in range(3):
            store.record_ask(trial(i))
        store.record_tell(result(0))
        store.record_tell(failure(1))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT trial_id, state, error FROM results WHERE state = 'failed'").fetchall() == [
            (1, "failed", "ValueError: boom")]
        assert "ValueError: boom" in db.execute("SELECT traceback FROM results WHERE trial_id = 1").fetchone()[0]
        assert db.execute("SELECT * FROM trial_states ORDER BY trial_id").fetchall() == [
            (0, "complete"), (1, "failed"), (2, "running")]
    db.close()


def test_a_store_of_schema_1_is_migrated_when_opened_and_keeps_everything(tmp_path):
    path = tmp_path / STORE_FILE
    events = [("ask", 0), ("ask", 1), ("tell", 1), ("ask", 2), ("tell", 0)]
    write_v1_store(path, {"seed": 3}, {i: trial(i) for i in range(3)}, {0: result(0), 1: result(1, 0.25)}, events)
    with SQLiteStore(path) as store:
        assert store.config() == {"seed": 3} and store.events() == events
        assert store.trials() == [trial(0), trial(1), trial(2)]
        assert store.results() == {0: result(0), 1: result(1, 0.25)}  # complete: schema 1 knew no other state
        assert store.states() == {0: TrialState.COMPLETE, 1: TrialState.COMPLETE, 2: TrialState.RUNNING}
        assert store.pending() == [trial(2)]
        asked = [r.asked_at for r in store.timeline()]
        store.record_tell(failure(2))  # the migrated store takes the new records
        store.record_retry(result(2))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (2,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        assert tables == {"config", "trials", "results", "events", "sqlite_sequence", "trial_states"}
        assert db.execute("SELECT max(seq) FROM events").fetchone() == (7,)  # the log goes on after the old one
    db.close()
    with SQLiteStore(path) as store:  # opened again: nothing to migrate
        assert store.events() == [*events, ("tell", 2), ("retry", 2)]
        assert [r.asked_at for r in store.timeline()][:2] == asked


def test_trials_stored_before_typed_tasks_read_as_the_typed_trials_they_were(tmp_path):
    path = tmp_path / STORE_FILE
    SQLiteStore(path).close()
    cell = {"num_nodes": 2, "edges": [[0, 1]]}
    old = [  # as archgraph wrote them before typed tasks: the task in the info
        {"id": 0, "arch": [cell] * 2, "budget": 2, "seed": 5, "resume_from": None,  # a hyper trial before estimators
         "info": {"kind": "hyper", "step": 0, "anchors": [[0.5]], "rows": 1, "width": 2, "warm_start": None,
                  "shared": False, "cell_dependent": True, "tau": 5.0}},
        {"id": 1, "arch": [cell] * 2, "budget": 2, "seed": 6, "resume_from": None,
         "info": {"kind": "hyper", "step": 1, "anchors": [[0.25]], "rows": 1, "width": 2, "warm_start": 0,
                  "shared": True, "cell_dependent": False, "tau": 10.0, "estimator": "all"}},
        {"id": 2, "arch": [cell], "budget": 1, "seed": 7, "resume_from": None,  # the controller's weight sharing
         "info": {"layers": ["dense(8, relu)"], "init_from": {"head.weight": [0, "head.weight"]}}},
        {"id": 3, "arch": [cell], "budget": 3, "seed": 8, "resume_from": 2, "info": {"point": 4}},
    ]
    with sqlite3.connect(path) as db:
        for record in old:
            db.execute("INSERT INTO trials (id, json) VALUES (?, ?)", (record["id"], json.dumps(record)))
            db.execute("INSERT INTO events (kind, trial_id, at) VALUES ('ask', ?, 1.0)", (record["id"],))
    db.close()
    with SQLiteStore(path, read_only=True) as store:
        trials = store.trials()
    arch, hyper = (ArchGraph([(0, 1)]),), {"rows": 1, "width": 2}
    assert trials == [
        Trial(0, arch * 2, 2, 5, info={"step": 0, "anchors": [[0.5]]}, task=TrainHyperArchitecture(
            **hyper, tau=5.0, shared=False, cell_dependent=True, estimator="sampled")),  # as such runs trained
        Trial(1, arch * 2, 2, 6, info={"step": 1, "anchors": [[0.25]]}, task=TrainHyperArchitecture(
            **hyper, tau=10.0, shared=True, cell_dependent=False, estimator="all", warm_start=0)),
        Trial(2, arch, 1, 7, info={"layers": ["dense(8, relu)"]},
              task=TrainArchitecture(init_from={"head.weight": (0, "head.weight")})),
        Trial(3, arch, 3, 8, resume_from=2, info={"point": 4}),
    ]
    assert [t.sources for t in trials] == [set(), {0}, {0}, {2}]


_WRITER = """
import sys
from archgraph import ArchGraph
from archgraph.trial import Result, Trial
from archgraph.store import SQLiteStore
store = SQLiteStore(sys.argv[1])
arch = ArchGraph([(0, 1)])
for i in range(100000):
    store.record_ask(Trial(id=i, arch=arch, budget=1, seed=i, info={"pad": "x" * 2000}))
    if i % 2:
        store.record_tell(Result(trial_id=i - 1, metrics={"val_accuracy": i / 1e5}))
"""


def test_sigkill_never_leaves_a_half_written_record(tmp_path):
    path = tmp_path / STORE_FILE
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill it mid-run, after some records are written
            if path.exists() and os.path.getsize(path) > 400_000:
                break
            time.sleep(0.05)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with SQLiteStore(path) as store:
        events, trials, results = store.events(), store.trials(), store.results()
        assert len(events) > 10
        assert [i for kind, i in events if kind == "ask"] == [t.id for t in trials] == list(range(len(trials)))
        assert [i for kind, i in events if kind == "tell"] == list(results)
        assert all(r.score == (i + 1) / 1e5 for i, r in results.items())
        store.record_ask(trial(len(trials)))  # the run goes on where it stopped


# ---------------------------------------------------------------- checkpoints


def test_checkpoints_round_trip_and_replace_atomically(tmp_path):
    first = {"model": {"w": torch.arange(3.0)}, "epochs": 1, "curve": [{"epoch": 0, "val_loss": None}]}
    path = save_checkpoint(tmp_path, 7, first)
    assert path == "checkpoints/trial-7.pt" and (tmp_path / path).is_file()
    loaded = load_checkpoint(tmp_path, path)
    assert torch.equal(loaded["model"]["w"], first["model"]["w"]) and loaded["curve"] == first["curve"]
    save_checkpoint(tmp_path, 7, {"epochs": 2})
    assert load_checkpoint(tmp_path, path) == {"epochs": 2}
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["trial-7.pt"]  # no temp files left


class Unpicklable:
    def __reduce__(self):
        raise pickle.PicklingError("this object cannot be saved")


def test_a_failed_checkpoint_write_keeps_the_old_file(tmp_path):
    path = save_checkpoint(tmp_path, 0, {"epochs": 1})
    with pytest.raises(pickle.PicklingError, match="cannot be saved"):
        save_checkpoint(tmp_path, 0, {"epochs": 2, "bad": Unpicklable()})
    assert load_checkpoint(tmp_path, path) == {"epochs": 1}
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["trial-0.pt"]


def test_a_missing_checkpoint_names_its_path(tmp_path):
    with pytest.raises(StoreError, match=r"checkpoints/trial-4\.pt does not exist"):
        load_checkpoint(tmp_path, "checkpoints/trial-4.pt")
