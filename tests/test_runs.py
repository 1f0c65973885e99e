import dataclasses
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys

import pytest

from archgraph import ArchGraph
from archgraph.errors import ArchGraphError
from archgraph.search.session import SearchConfig, search
from archgraph.runs import STATUS_FILE, find_runs, format_table, read_status, run_lock, run_status, summarise
from archgraph.store import STORE_FILE, SQLiteStore
from archgraph.trial import Result, Trial


def make_run(run_dir, scores, *, running=0, strategy="bo", trials=None):
    """A run folder whose store holds trials told ``scores`` (``None``: failed) and ``running`` more asked."""
    with SQLiteStore(run_dir / STORE_FILE) as store:
        store.set_config({"strategy": strategy, "space": "fade", "trials": trials})
        for i, score in enumerate([*scores, *[None] * running]):
            store.record_ask(Trial(id=i, arch=ArchGraph([(0, 1)]), budget=1, seed=i))
            if i < len(scores):
                store.record_tell(Result(i, {"val_accuracy": score}) if score is not None
                                  else Result.failure(i, "RuntimeError: boom"))
    return run_dir


def test_the_status_follows_a_search_from_running_to_how_it_ended(tmp_path):
    with run_status(tmp_path, budget={"trials": 7}):
        status = read_status(tmp_path)
        assert (status["state"], status["pid"], status["host"], status["budget"]) == (
            "running", os.getpid(), socket.gethostname(), {"trials": 7})
    assert read_status(tmp_path)["state"] == "finished"
    with pytest.raises(ValueError), run_status(tmp_path, budget={}):
        raise ValueError("the learning rate is negative\nsecond line")
    assert (read_status(tmp_path)["state"], read_status(tmp_path)["error"]) == (
        "failed", "ValueError: the learning rate is negative")
    with pytest.raises(KeyboardInterrupt), run_status(tmp_path, budget={}):
        raise KeyboardInterrupt
    assert read_status(tmp_path)["state"] == "interrupted"
    assert read_status(tmp_path / "elsewhere") is None


def test_a_summary_counts_trials_finds_the_best_and_reads_the_state(tmp_path):
    run = make_run(tmp_path, [0.5, None, 0.75, 0.75], running=1, trials=6)
    with run_status(run, budget={"trials": 8}):
        summary = summarise(run)
    assert (summary.strategy, summary.space, summary.told, summary.running, summary.budget, summary.best,
            summary.state) == ("bo", "fade", 4, 1, 8, (0.75, 2), "in progress")  # the earliest of ties
    assert summarise(run).state == "finished"


def status_of(run, **status):
    (run / STATUS_FILE).write_text(json.dumps({"state": "running", "pid": 1, "host": socket.gethostname(),
                                               "budget": {}, **status}))
    return summarise(run).state


def test_a_run_whose_process_is_gone_is_killed_and_one_on_another_host_is_in_progress(tmp_path):
    run = make_run(tmp_path, [0.5])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert status_of(run, pid=int(gone.stdout)) == "killed (continue it with archgraph search --resume)"
    assert status_of(run, host="node-17") == "in progress on node-17"
    assert status_of(run, state="failed", error="TooManyFailures: 5 in a row") == "failed: TooManyFailures: 5 in a row"
    (run / STATUS_FILE).unlink()
    assert summarise(run).state == "unknown (no status.json: run by an older archgraph)"


def test_the_table_has_a_line_per_run_folder_under_a_folder(tmp_path):
    make_run(tmp_path / "bo", [0.5, 0.25], trials=2)
    make_run(tmp_path / "deep" / "evo", [None], strategy="evolution")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    with sqlite3.connect(tmp_path / "broken" / STORE_FILE) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    runs = find_runs(tmp_path)
    assert runs == [tmp_path / "bo", tmp_path / "broken", tmp_path / "deep" / "evo"]
    lines = format_table(runs, tmp_path)
    assert [line.split()[:5] for line in lines] == [
        ["run", "strategy", "space", "trials", "best"],
        ["bo", "bo", "fade", "2/2", "0.5000"],
        ["broken", "-", "-", "-", "-"],
        ["deep/evo", "evolution", "fade", "1", "-"]]
    assert lines[1].endswith("0.5000 (trial 0)  unknown (no status.json: run by an older archgraph)")
    assert "unreadable: " in lines[2] and "not an archgraph store" in lines[2]
    assert lines[0].index("best") == lines[1].index("0.5000")  # aligned columns
    assert find_runs(tmp_path / "bo") == [tmp_path / "bo"]
    with pytest.raises(ArchGraphError, match="is not a folder; give a folder holding run folders"):
        find_runs(tmp_path / "nowhere")


def test_a_search_records_its_status_and_a_refused_resume_leaves_it(tiny_run, tmp_path):
    status = read_status(tiny_run)
    assert status["state"] == "finished" and status["budget"] == {"trials": 3, "epochs": None, "seconds": None}
    assert summarise(tiny_run).state == "finished" and summarise(tiny_run).told == 3
    run = shutil.copytree(tiny_run, tmp_path / "run")
    with SQLiteStore(run / STORE_FILE) as store:
        config = SearchConfig.from_dict(store.config())
    with pytest.raises(ArchGraphError, match="started with other settings"):
        search(dataclasses.replace(config, seed=1), run, resume=True, progress=False)
    assert read_status(run) == status


HOLD_LOCK = """
import sys, time
from archgraph.runs import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_run_folder_is_driven_by_one_process_at_a_time(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with SQLiteStore(run / STORE_FILE) as store:
            config = SearchConfig.from_dict(store.config())
        with pytest.raises(ArchGraphError, match=f"{run} is in use by PID {holder.pid}; wait for that search to end"):
            search(config, run, resume=True, progress=False)
        assert read_status(run)["state"] == "finished"  # the refused call left the run as it was
    finally:
        holder.kill()  # a SIGKILLed holder leaves no stale lock
        holder.wait()
    with run_lock(run):
        pass
