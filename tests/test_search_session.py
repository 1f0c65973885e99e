import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from archgraph import spaces
from archgraph.errors import ArchGraphError
from archgraph.search.session import SearchConfig, resume, search
from archgraph.store import STORE_FILE, SQLiteStore

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
        assert store.config() == config.to_dict()


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


def told(path) -> int:
    """Tells recorded so far; 0 while the run has created the file but not yet its tables."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        try:
            return db.execute("SELECT count(*) FROM events WHERE kind = 'tell'").fetchone()[0]
        except sqlite3.OperationalError as err:
            if "no such table" not in str(err):
                raise
            return 0


def untimed(curve):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in curve]


def test_kill_and_resume_reaches_the_uninterrupted_state(tmp_path):
    """A search killed with SIGKILL mid-run and resumed ends exactly as an uninterrupted one:
    the same trials, bit-identical metrics, nothing recorded before the kill lost or duplicated."""
    args = ["--strategy", "bo", "--trials", "8", "--strategy-param", "draws=2", "--no-progress", *CLI_TINY]
    cli = [sys.executable, "-m", "archgraph.cli", "search"]
    subprocess.run([*cli, *args, "--out", str(tmp_path / "whole")], check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cli, *args, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ((killed / STORE_FILE).exists() and told(killed / STORE_FILE) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with SQLiteStore(killed / STORE_FILE) as store:
        before = {i: r.to_dict() for i, r in store.results().items()}
        assert 3 <= len(before) < 8

    subprocess.run([*cli, "--resume", str(killed), "--no-progress"], check=True, capture_output=True)
    with SQLiteStore(tmp_path / "whole" / STORE_FILE) as whole, SQLiteStore(killed / STORE_FILE) as resumed:
        assert [t.to_dict() for t in resumed.trials()] == [t.to_dict() for t in whole.trials()]
        final = resumed.results()
        assert {i: r.metrics for i, r in final.items()} == {i: r.metrics for i, r in whole.results().items()}
        assert {i: untimed(r.curve) for i, r in final.items()} == {i: untimed(r.curve) for i, r in whole.results().items()}
        assert all(final[i].to_dict() == r for i, r in before.items())  # recorded before the kill: untouched
        kinds = [k for k, _ in resumed.events()]
        assert kinds.count("ask") == kinds.count("tell") == 8
